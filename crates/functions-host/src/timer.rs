//! Timer triggers: fire on the NCRONTAB schedule with the host's `TimerInfo` object.
//!
//! With schedule monitoring (`useMonitor`, default on for schedules of a minute or longer) the
//! host keeps `ScheduleStatus` {Last, Next, LastUpdated} in storage and reports a run that was
//! missed while the host was down as `IsPastDue: true`; here the status is a small JSON file per
//! function in the data folder, written atomically after each run. At invocation time the status
//! is the one written before the run (so `Next` is the occurrence being fired and `Last` the one
//! before, `0001-01-01T00:00:00+00:00` the first time), as in the host's `TimerListener`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::watch;

use crate::config::{Function, Trigger};
use crate::envelope::{datetime_offset, sys};
use crate::invoke::Invoker;
use crate::ncrontab::Schedule;
use crate::queue::Queues;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ScheduleStatus {
    /// `None` = never ran (the host's `DateTime.MinValue`).
    pub last: Option<String>,
    pub next: String,
    pub last_updated: String,
}

fn ts(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).expect("formattable")
}

fn parse(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// `Data.<binding>` for one firing.
pub fn timer_info(status: Option<&ScheduleStatus>, is_past_due: bool) -> Value {
    let status = status.map(|s| {
        let fmt = |v: &str| parse(v).map(datetime_offset).unwrap_or_default();
        json!({
            "Last": s.last.as_deref().map(fmt).unwrap_or_else(|| "0001-01-01T00:00:00+00:00".into()),
            "Next": fmt(&s.next),
            "LastUpdated": fmt(&s.last_updated),
        })
    });
    json!({ "Schedule": { "AdjustForDST": true }, "ScheduleStatus": status, "IsPastDue": is_past_due })
}

/// The whole invocation body: a timer's metadata is only `sys`.
pub fn invocation_body(function: &str, binding: &str, info: Value, now: OffsetDateTime) -> Value {
    json!({ "Data": { binding: info }, "Metadata": { "sys": sys(function, now) } })
}

fn status_path(data_dir: &Path, function: &str) -> PathBuf {
    data_dir.join("timers").join(format!("{function}.json"))
}

fn save_status(path: &Path, s: &ScheduleStatus) {
    let tmp = path.with_extension("json.tmp");
    let res = std::fs::create_dir_all(path.parent().expect("parent"))
        .and_then(|_| std::fs::write(&tmp, serde_json::to_vec(s).expect("serialisable")))
        .and_then(|_| std::fs::rename(&tmp, path));
    if let Err(e) = res {
        tracing::warn!(path = %path.display(), "cannot save the timer schedule status: {e}");
    }
}

/// Whether schedule monitoring is on: explicit `useMonitor`, else on for intervals of a minute or more.
pub fn monitor_enabled(schedule: &Schedule, explicit: Option<bool>) -> bool {
    explicit.unwrap_or_else(|| {
        schedule.min_interval(OffsetDateTime::now_utc()).is_some_and(|d| d >= Duration::from_secs(60))
    })
}

/// Runs one timer function until `shutdown` flips.
pub async fn run(
    function: Arc<Function>,
    invoker: Invoker,
    queues: Arc<Queues>,
    data_dir: PathBuf,
    mut shutdown: watch::Receiver<bool>,
) {
    let Trigger::Timer { binding, schedule, run_on_startup, use_monitor, .. } = &function.trigger else {
        return;
    };
    let monitor = monitor_enabled(schedule, *use_monitor);
    let path = status_path(&data_dir, &function.name);
    let now = OffsetDateTime::now_utc();
    let mut status = if monitor {
        std::fs::read(&path).ok().and_then(|b| serde_json::from_slice::<ScheduleStatus>(&b).ok())
    } else {
        None
    };
    let fresh = |now: OffsetDateTime, last: Option<String>| -> Option<ScheduleStatus> {
        Some(ScheduleStatus { last, next: ts(schedule.next_after(now)?), last_updated: ts(now) })
    };
    let mut past_due = false;
    match &status {
        Some(s) if parse(&s.next).is_some_and(|n| n < now) => past_due = true,
        Some(_) => {}
        None if monitor => {
            status = fresh(now, None);
            if let Some(s) = &status {
                save_status(&path, s);
            }
        }
        None => {}
    }
    let fire = |is_past_due: bool, status: Option<ScheduleStatus>| {
        let (function, invoker, queues, binding) = (function.clone(), invoker.clone(), queues.clone(), binding.clone());
        async move {
            let info = timer_info(status.as_ref(), is_past_due);
            let body = invocation_body(&function.name, &binding, info, OffsetDateTime::now_utc());
            match invoker.invoke(&function.name, &body).await {
                Ok(result) => {
                    if let Err(e) = crate::outputs::apply(&function, &result, &queues).await {
                        tracing::error!(function = %function.name, "timer outputs failed: {e}");
                    }
                }
                Err(e) => tracing::error!(function = %function.name, "timer invocation failed: {e}"),
            }
        }
    };
    if *run_on_startup || past_due {
        fire(past_due, status.clone()).await;
        if monitor {
            status = fresh(OffsetDateTime::now_utc(), status.as_ref().map(|s| s.next.clone()));
            if let Some(s) = &status {
                save_status(&path, s);
            }
        }
    }
    let mut last_fired: Option<OffsetDateTime> = None;
    loop {
        let now = OffsetDateTime::now_utc();
        let next = match (&status, last_fired) {
            (Some(s), _) => parse(&s.next).unwrap_or(now),
            (None, Some(t)) => match schedule.next_after(t.max(now)) {
                Some(n) => n,
                None => return,
            },
            (None, None) => match schedule.next_after(now) {
                Some(n) => n,
                None => return,
            },
        };
        let wait = (next - OffsetDateTime::now_utc()).max(time::Duration::ZERO);
        tokio::select! {
            _ = tokio::time::sleep(Duration::try_from(wait).unwrap_or_default()) => {}
            _ = shutdown.changed() => return,
        }
        fire(false, status.clone()).await;
        last_fired = Some(next);
        if monitor {
            let after = next.max(OffsetDateTime::now_utc());
            status = schedule.next_after(after).map(|n| ScheduleStatus {
                last: Some(ts(next)),
                next: ts(n),
                last_updated: ts(OffsetDateTime::now_utc()),
            });
            match &status {
                Some(s) => save_status(&path, s),
                None => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const FIXTURE: &str = include_str!("../../../tests/fixtures/host/timer-fixture-azfunc.json");

    #[test]
    fn test_timer_info_shape_matches_reference() {
        let fixture: Value = serde_json::from_str(FIXTURE).unwrap();
        let s = ScheduleStatus {
            last: Some(ts(datetime!(2023-10-12 20:13:49.640002 UTC))),
            next: ts(datetime!(2023-10-12 20:13:49.640002 UTC)),
            last_updated: ts(datetime!(2023-10-12 20:13:49.640002 UTC)),
        };
        let body = invocation_body(
            "helloTimer",
            "timer",
            timer_info(Some(&s), false),
            datetime!(2023-10-12 20:13:49.640002 UTC),
        );
        let ours = &body["Data"]["timer"];
        let theirs = &fixture["Data"]["timer"];
        assert_eq!(ours["Schedule"], theirs["Schedule"]);
        assert_eq!(ours["IsPastDue"], theirs["IsPastDue"]);
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&ours["ScheduleStatus"]), keys(&theirs["ScheduleStatus"]));
        assert_eq!(keys(&body["Metadata"]), vec!["sys"]);
        assert_eq!(body["Metadata"]["sys"]["MethodName"], "helloTimer");
        assert_eq!(ours["ScheduleStatus"]["Last"], "2023-10-12T20:13:49.640002+00:00");
    }

    #[test]
    fn test_unmonitored_status_is_null_and_first_last_is_min() {
        assert_eq!(timer_info(None, false)["ScheduleStatus"], Value::Null);
        let s = ScheduleStatus {
            last: None,
            next: ts(datetime!(2026-01-01 00:00 UTC)),
            last_updated: ts(datetime!(2025-12-31 23:59 UTC)),
        };
        assert_eq!(timer_info(Some(&s), true)["ScheduleStatus"]["Last"], "0001-01-01T00:00:00+00:00");
        assert_eq!(timer_info(Some(&s), true)["IsPastDue"], true);
    }

    #[test]
    fn test_monitor_default_depends_on_interval() {
        assert!(!monitor_enabled(&Schedule::parse("*/5 * * * * *").unwrap(), None));
        assert!(monitor_enabled(&Schedule::parse("0 */5 * * * *").unwrap(), None));
        assert!(monitor_enabled(&Schedule::parse("*/5 * * * * *").unwrap(), Some(true)));
    }
}
