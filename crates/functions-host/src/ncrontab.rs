//! Six-field NCRONTAB schedules (`{second} {minute} {hour} {day} {month} {day-of-week}`), as the
//! Functions timer trigger reads them.
//!
//! Why not a crate: the `cron` crate (the maintained one) uses Quartz conventions: day-of-week
//! 1-7 with Sunday = 1, an optional seventh year field and `?`/`L`/`#`. NCRONTAB numbers days of
//! the week 0-6 from Sunday, so `0 0 9 * * 1` means Monday here and Sunday there — a silent
//! off-by-one day. The grammar is small (`*`, lists, ranges, steps, month/day names), so it is
//! parsed here and tested against the examples of the timer-trigger documentation.
//!
//! Day matching follows NCrontab: the day-of-month and day-of-week fields must both match (not
//! Vixie cron's "either"). Times are UTC (the host's default; `WEBSITE_TIME_ZONE` is not read).

use time::{Date, Duration, Month, OffsetDateTime, Time};

const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// A parsed schedule; each field is a bit set of the allowed values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    seconds: u64,
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
}

struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    /// Value of the first name (JAN = 1, SUN = 0).
    names_base: u32,
}

const FIELDS: [FieldSpec; 6] = [
    FieldSpec { name: "second", min: 0, max: 59, names: &[], names_base: 0 },
    FieldSpec { name: "minute", min: 0, max: 59, names: &[], names_base: 0 },
    FieldSpec { name: "hour", min: 0, max: 23, names: &[], names_base: 0 },
    FieldSpec { name: "day", min: 1, max: 31, names: &[], names_base: 0 },
    FieldSpec { name: "month", min: 1, max: 12, names: &MONTHS, names_base: 1 },
    FieldSpec { name: "day-of-week", min: 0, max: 6, names: &DAYS, names_base: 0 },
];

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        if parts.len() != 6 {
            return Err(format!(
                "expected 6 fields ({{second}} {{minute}} {{hour}} {{day}} {{month}} {{day-of-week}}), found {}",
                parts.len()
            ));
        }
        let mut sets = [0u64; 6];
        for (i, (part, spec)) in parts.iter().zip(FIELDS.iter()).enumerate() {
            sets[i] = parse_field(part, spec).map_err(|e| format!("{} field {part:?}: {e}", spec.name))?;
        }
        Ok(Schedule {
            seconds: sets[0],
            minutes: sets[1],
            hours: sets[2],
            days: sets[3],
            months: sets[4],
            weekdays: sets[5],
        })
    }

    fn day_matches(&self, d: Date) -> bool {
        has(self.days, d.day() as u32)
            && has(self.months, d.month() as u32)
            && has(self.weekdays, d.weekday().number_days_from_sunday() as u32)
    }

    /// The first occurrence strictly after `after` (UTC, whole seconds), or `None` if there is
    /// none within eight years (e.g. `0 0 0 31 2 *`).
    pub fn next_after(&self, after: OffsetDateTime) -> Option<OffsetDateTime> {
        let after = after.to_offset(time::UtcOffset::UTC);
        let start = after.replace_nanosecond(0).ok()? + Duration::seconds(1);
        let mut date = start.date();
        let mut first_day = true;
        let limit = date.year() + 8;
        while date.year() <= limit {
            if self.day_matches(date) {
                let from = if first_day { start.time() } else { Time::MIDNIGHT };
                if let Some(t) = self.first_time_from(from) {
                    return Some(date.with_time(t).assume_utc());
                }
            }
            first_day = false;
            date = if has(self.months, date.month() as u32) {
                date.next_day()?
            } else {
                // Skip the whole month.
                let (y, m) = if date.month() == Month::December {
                    (date.year() + 1, Month::January)
                } else {
                    (date.year(), date.month().next())
                };
                Date::from_calendar_date(y, m, 1).ok()?
            };
        }
        None
    }

    fn first_time_from(&self, from: Time) -> Option<Time> {
        for h in from.hour() as u32..24 {
            if !has(self.hours, h) {
                continue;
            }
            let m0 = if h == from.hour() as u32 { from.minute() as u32 } else { 0 };
            for m in m0..60 {
                if !has(self.minutes, m) {
                    continue;
                }
                let s0 = if h == from.hour() as u32 && m == from.minute() as u32 { from.second() as u32 } else { 0 };
                if let Some(s) = (s0..60).find(|&s| has(self.seconds, s)) {
                    return Time::from_hms(h as u8, m as u8, s as u8).ok();
                }
            }
        }
        None
    }

    /// Smallest gap between consecutive occurrences (sampled over the next few), used for the
    /// `useMonitor` default (off for schedules more frequent than once a minute).
    pub fn min_interval(&self, from: OffsetDateTime) -> Option<std::time::Duration> {
        let mut prev = self.next_after(from)?;
        let mut best: Option<Duration> = None;
        for _ in 0..5 {
            let next = self.next_after(prev)?;
            let gap = next - prev;
            best = Some(best.map_or(gap, |b| b.min(gap)));
            prev = next;
        }
        best.and_then(|d| std::time::Duration::try_from(d).ok())
    }
}

fn has(set: u64, v: u32) -> bool {
    set & (1u64 << v) != 0
}

fn parse_value(s: &str, spec: &FieldSpec) -> Result<u32, String> {
    if let Ok(v) = s.parse::<u32>() {
        if v < spec.min || v > spec.max {
            return Err(format!("{v} is outside {}-{}", spec.min, spec.max));
        }
        return Ok(v);
    }
    spec.names
        .iter()
        .position(|n| n.eq_ignore_ascii_case(s))
        .map(|i| i as u32 + spec.names_base)
        .ok_or_else(|| format!("{s:?} is not a number or name"))
}

fn parse_field(text: &str, spec: &FieldSpec) -> Result<u64, String> {
    let mut set = 0u64;
    for item in text.split(',') {
        if item.is_empty() {
            return Err("empty list item".into());
        }
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s.parse().map_err(|_| format!("step {s:?} is not a number"))?;
                if step == 0 {
                    return Err("step must be at least 1".into());
                }
                (r, step)
            }
            None => (item, 1),
        };
        let (lo, hi) = if range == "*" {
            (spec.min, spec.max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (parse_value(a, spec)?, parse_value(b, spec)?);
            if a > b {
                return Err(format!("range {a}-{b} is backwards"));
            }
            (a, b)
        } else {
            let v = parse_value(range, spec)?;
            // `5/15` means "from 5 to the end, every 15" (NCrontab, like Vixie cron).
            if item.contains('/') { (v, spec.max) } else { (v, v) }
        };
        let mut v = lo;
        while v <= hi {
            set |= 1u64 << v;
            v += step;
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn next(expr: &str, after: OffsetDateTime) -> OffsetDateTime {
        Schedule::parse(expr).unwrap().next_after(after).unwrap()
    }

    #[test]
    fn test_documented_examples() {
        let t = datetime!(2026-11-23 19:26:13 UTC); // a Monday
        // "Once every five minutes"
        assert_eq!(next("0 */5 * * * *", t), datetime!(2026-11-23 19:30:00 UTC));
        // "Once at the top of every hour"
        assert_eq!(next("0 0 * * * *", t), datetime!(2026-11-23 20:00:00 UTC));
        // "Once every two hours"
        assert_eq!(next("0 0 */2 * * *", t), datetime!(2026-11-23 20:00:00 UTC));
        // "Once every hour from 9 AM to 5 PM"
        assert_eq!(next("0 0 9-17 * * *", t), datetime!(2026-11-24 09:00:00 UTC));
        // "At 9:30 AM every day"
        assert_eq!(next("0 30 9 * * *", t), datetime!(2026-11-24 09:30:00 UTC));
        // "At 9:30 AM every weekday"
        assert_eq!(next("0 30 9 * * 1-5", datetime!(2026-11-27 10:00 UTC)), datetime!(2026-11-30 09:30:00 UTC));
        assert_eq!(next("0 30 9 * * Mon-Fri", datetime!(2026-11-27 10:00 UTC)), datetime!(2026-11-30 09:30:00 UTC));
        // "At 9:30 AM every Monday in January"
        assert_eq!(next("0 30 9 * Jan Mon", t), datetime!(2027-01-04 09:30:00 UTC));
        // every 5 seconds
        assert_eq!(next("*/5 * * * * *", t), datetime!(2026-11-23 19:26:15 UTC));
    }

    #[test]
    fn test_sunday_is_zero() {
        // 2026-11-29 is a Sunday; the Quartz reading (1 = Sunday) would give Monday 30th.
        assert_eq!(next("0 0 9 * * 0", datetime!(2026-11-23 00:00 UTC)), datetime!(2026-11-29 09:00:00 UTC));
        assert_eq!(next("0 0 9 * * 1", datetime!(2026-11-24 00:00 UTC)), datetime!(2026-11-30 09:00:00 UTC));
    }

    #[test]
    fn test_lists_steps_and_strictly_after() {
        let s = Schedule::parse("5,10 0/20 * * * *").unwrap();
        let t = datetime!(2026-01-01 00:00:05 UTC);
        assert_eq!(s.next_after(t).unwrap(), datetime!(2026-01-01 00:00:10 UTC));
        assert_eq!(s.next_after(datetime!(2026-01-01 00:00:10 UTC)).unwrap(), datetime!(2026-01-01 00:20:05 UTC));
        assert_eq!(next("0 0 0 1 * *", datetime!(2026-12-15 00:00 UTC)), datetime!(2027-01-01 00:00:00 UTC));
        assert_eq!(next("0 0 12 29 2 *", datetime!(2026-03-01 00:00 UTC)), datetime!(2028-02-29 12:00:00 UTC));
    }

    #[test]
    fn test_impossible_schedule_has_no_occurrence() {
        assert!(Schedule::parse("0 0 0 31 2 *").unwrap().next_after(datetime!(2026-01-01 00:00 UTC)).is_none());
    }

    #[test]
    fn test_rejects_bad_expressions() {
        for bad in [
            "* * * * *",
            "60 * * * * *",
            "* * 24 * * *",
            "* * * 0 * *",
            "* * * * 13 *",
            "* * * * * 7",
            "*/0 * * * * *",
            "5-1 * * * * *",
            "a * * * * *",
            "1,,2 * * * * *",
            "* * * * * * *",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn test_min_interval() {
        let t = datetime!(2026-01-01 00:00 UTC);
        assert_eq!(
            Schedule::parse("*/10 * * * * *").unwrap().min_interval(t),
            Some(std::time::Duration::from_secs(10))
        );
        assert_eq!(Schedule::parse("0 */1 * * * *").unwrap().min_interval(t), Some(std::time::Duration::from_secs(60)));
    }
}
