//! Where the handler's log lines go: stdout, which the Functions host collects, written in
//! batches by tokio's worker threads.
//!
//! Why: the handler logs one line per invocation (the host protocol's summary line), and one
//! `write(2)` per line, each under stdout's lock that both cores take, was about 3 % of
//! negotiate's CPU (`bash bench/profile.sh negotiate`). So a worker thread appends its lines to
//! a buffer of its own and writes the buffer out:
//!
//! - when it runs out of work (tokio's park hook calls [`worker_parked`]): on a quiet server a
//!   line is written as soon as its request is done;
//! - when the buffer passes [`FLUSH_AT`]: under load, lines leave in batches a few
//!   milliseconds late at most (a worker parks whenever it runs out of tasks, and nothing here
//!   holds a worker for long: blocking work runs on the blocking pool, which writes directly);
//! - at once for warnings and errors, with the lines before them, so what explains a failure
//!   is never waiting in a buffer;
//! - when the thread stops ([`worker_stopping`], and the buffer's destructor as a last resort).
//!
//! Threads that never park through tokio's hook (the blocking pool, `main`) write each line
//! directly, as before. What is lost is only what a killed process (SIGKILL, OOM) had not yet
//! written: info lines of the last few milliseconds of a busy worker. Each write ends at a line
//! boundary, so lines are never torn; lines of different workers may leave out of time order,
//! and each carries its timestamp.

use std::cell::RefCell;
use std::io::{self, Write};

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// A worker's buffer is written out when it holds this much (about a hundred lines).
pub const FLUSH_AT: usize = 16 * 1024;

thread_local! {
    /// `None` on threads that do not buffer: every thread until its first park.
    static PENDING: RefCell<Option<Pending>> = const { RefCell::new(None) };
}

/// One worker's unwritten lines.
struct Pending(Vec<u8>);

impl Pending {
    /// Adds a line; whether the buffer must now be written out.
    fn push(&mut self, line: &[u8], urgent: bool) -> bool {
        self.0.extend_from_slice(line);
        urgent || self.0.len() >= FLUSH_AT
    }

    fn write_out(&mut self) {
        if !self.0.is_empty() {
            // As with tracing's own stdout writer, a failed write (the host has gone) is dropped.
            let _ = io::stdout().lock().write_all(&self.0);
            self.0.clear();
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.write_out();
    }
}

/// For tokio's `on_thread_park`: writes out this worker's lines, and lets it buffer from now on.
pub fn worker_parked() {
    let _ = PENDING.try_with(|pending| {
        if let Ok(mut pending) = pending.try_borrow_mut() {
            pending.get_or_insert_with(|| Pending(Vec::with_capacity(FLUSH_AT))).write_out();
        }
    });
}

/// For tokio's `on_thread_stop`: writes out this thread's lines; anything it logs later is
/// written directly.
pub fn worker_stopping() {
    let _ = PENDING.try_with(|pending| {
        if let Ok(mut pending) = pending.try_borrow_mut() {
            drop(pending.take());
        }
    });
}

/// The `tracing_subscriber` writer: stdout, batched on worker threads.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stdout;

/// One event's writer; `urgent` for warnings and errors.
pub struct Line {
    urgent: bool,
}

impl<'a> MakeWriter<'a> for Stdout {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line { urgent: false }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Line {
        // tracing orders levels by verbosity: ERROR < WARN < INFO.
        Line { urgent: *meta.level() <= Level::WARN }
    }
}

impl Write for Line {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let buffered = PENDING
            .try_with(|pending| {
                let Ok(mut pending) = pending.try_borrow_mut() else { return false };
                let Some(pending) = pending.as_mut() else { return false };
                if pending.push(bytes, self.urgent) {
                    pending.write_out();
                }
                true
            })
            .unwrap_or(false);
        if !buffered {
            io::stdout().write_all(bytes)?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_a_buffer_is_written_out_when_full_or_urgent() {
        let mut pending = Pending(Vec::new());
        let line = [b'x'; 100];
        assert!(!pending.push(&line, false));
        assert!(pending.push(b"WARN something\n", true), "a warning goes out at once, after the lines before it");
        pending.0.clear();
        while !pending.push(&line, false) {}
        assert!(pending.0.len() >= FLUSH_AT && pending.0.len() < FLUSH_AT + line.len());
        pending.0.clear();
    }

    #[test]
    fn test_only_a_thread_that_parked_buffers() {
        let buffered = || PENDING.with(|p| p.borrow().as_ref().map(|p| p.0.clone()));
        std::thread::spawn(move || {
            assert_eq!(buffered(), None, "a thread that never parked writes directly");
            worker_parked();
            Stdout.make_writer().write_all(b"a line\n").unwrap();
            assert_eq!(buffered().as_deref(), Some(&b"a line\n"[..]));
            PENDING.with(|p| p.borrow_mut().as_mut().map(|p| p.0.clear()));
            worker_stopping();
            assert_eq!(buffered(), None, "a stopping thread writes directly again");
        })
        .join()
        .unwrap();
    }
}
