//! The durable queue: one file per message, written with write-to-temp + fsync + rename + fsync
//! of the directory.
//!
//! Why one file per message rather than an append-only log: the operations a queue needs —
//! enqueue, bump a delivery count, complete, dead-letter, resubmit — are each a single atomic
//! file-system step on one message (create by rename, replace by rename, delete, rename between
//! folders). Crash recovery is then just "read the folders": there is no log to replay, compact or
//! truncate, and a torn write can only exist in `tmp/`, which is discarded. The price is an fsync
//! per step, which bounds throughput to the disk's fsync rate; for a local development queue that
//! is hundreds to thousands of messages per second, far above what a dev loop produces.
//!
//! Delivery guarantees: the delivery count is persisted *before* a message is handed to the
//! handler, so a message that was locked when the process died is redelivered after restart with
//! its count incremented (at-least-once, like Service Bus). Locks live in memory only: a lock is
//! by definition lost when its holder dies. A message leaves `active/` only by an atomic rename
//! (dead-letter) or by deletion after successful completion, so it can be neither lost nor
//! duplicated by a crash.
//!
//! Memory: the index keeps every message (body included) in memory, which is fine for a
//! development queue of thousands of messages and keeps receives free of disk reads.
//!
//! Concurrency: the in-memory index is behind a mutex held only for bookkeeping; the fsyncs run
//! outside it, so the 16 concurrent deliveries of `maxConcurrentCalls` fsync in parallel and the
//! file system's journal commits them together.
//!
//! Layout: `<dir>/active/<seq>.msg`, `<dir>/deadletter/<seq>.msg`, `<dir>/tmp/`, `<dir>/sequence`
//! (high-water mark of reserved sequence numbers, advanced in blocks so that numbers never go
//! backwards after a restart even when every message was completed and deleted).

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Service Bus' default `MaxDeliveryCount`.
pub const MAX_DELIVERY_COUNT: u32 = 10;
const SEQUENCE_BLOCK: u64 = 1024;

/// A message as stored on disk.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StoredMessage {
    pub sequence_number: u64,
    pub message_id: String,
    /// Raw body bytes, base64 (bodies are bytes in Service Bus).
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default)]
    pub application_properties: Map<String, Value>,
    /// RFC 3339, UTC.
    pub enqueued_time: String,
    pub delivery_count: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_error_description: Option<String>,
}

impl StoredMessage {
    pub fn body_bytes(&self) -> Vec<u8> {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.decode(&self.body).unwrap_or_default()
    }

    pub fn enqueued_at(&self) -> OffsetDateTime {
        OffsetDateTime::parse(&self.enqueued_time, &Rfc3339).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

/// What a producer supplies.
#[derive(Debug, Clone, Default)]
pub struct NewMessage {
    pub body: Vec<u8>,
    pub message_id: Option<String>,
    pub content_type: Option<String>,
    pub correlation_id: Option<String>,
    pub subject: Option<String>,
    pub application_properties: Map<String, Value>,
}

/// A message handed out under a peek-lock.
#[derive(Debug, Clone)]
pub struct Locked {
    pub message: StoredMessage,
    pub lock_token: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("queue storage I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("the lock was lost or the message was already settled")]
    LockLost,
    #[error("no such message")]
    NotFound,
}

struct LockedEntry {
    message: StoredMessage,
    token: String,
    until: Instant,
}

/// In-memory index of the queue. Only ever held for short, I/O-free critical sections (the
/// sequence-reservation write every 1024 messages aside).
struct State {
    available: BTreeMap<u64, StoredMessage>,
    locked: HashMap<u64, LockedEntry>,
    dead: BTreeMap<u64, StoredMessage>,
    next_seq: u64,
    reserved_until: u64,
}

/// One queue. Thread-safe: the index sits behind a mutex, and the file-system work (the fsyncs)
/// runs *outside* it, so concurrent operations fsync in parallel and the file system's journal
/// commits them together instead of one after the other.
pub struct QueueStore {
    dir: PathBuf,
    lock_duration: Duration,
    state: Mutex<State>,
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

fn file_name(seq: u64) -> String {
    format!("{seq:020}.msg")
}

impl QueueStore {
    /// Opens (creating if needed) and recovers the queue in `dir`.
    pub fn open(dir: &Path, lock_duration: Duration) -> Result<QueueStore, StoreError> {
        for sub in ["active", "deadletter", "tmp"] {
            fs::create_dir_all(dir.join(sub))?;
        }
        // Anything in tmp/ is a write that never committed.
        for e in fs::read_dir(dir.join("tmp"))? {
            let _ = fs::remove_file(e?.path());
        }
        let mut available = BTreeMap::new();
        let mut dead = BTreeMap::new();
        let mut max_seq = 0;
        for (sub, map) in [("active", &mut available), ("deadletter", &mut dead)] {
            for e in fs::read_dir(dir.join(sub))? {
                let path = e?.path();
                if path.extension().and_then(|x| x.to_str()) != Some("msg") {
                    continue;
                }
                let parsed =
                    fs::read(&path).ok().and_then(|b| serde_json::from_slice::<StoredMessage>(&b).ok()).filter(|m| {
                        path.file_name().and_then(|n| n.to_str()) == Some(file_name(m.sequence_number).as_str())
                    });
                match parsed {
                    Some(m) => {
                        max_seq = max_seq.max(m.sequence_number);
                        map.insert(m.sequence_number, m);
                    }
                    None => {
                        // Only reachable by editing the folder by hand; keep the file for inspection.
                        tracing::error!(path = %path.display(), "unreadable queue message; renamed to .corrupt");
                        let _ = fs::rename(&path, path.with_extension("corrupt"));
                    }
                }
            }
        }
        let reserved: u64 =
            fs::read_to_string(dir.join("sequence")).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
        let next_seq = reserved.max(max_seq + 1).max(1);
        Ok(QueueStore {
            dir: dir.to_path_buf(),
            lock_duration,
            state: Mutex::new(State { available, locked: HashMap::new(), dead, next_seq, reserved_until: next_seq }),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn write_atomic(&self, dest: &Path, bytes: &[u8], sync_parent: bool) -> std::io::Result<()> {
        let tmp = self.dir.join("tmp").join(format!("{}.tmp", crate::envelope::guid()));
        {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
        }
        fs::rename(&tmp, dest)?;
        if sync_parent {
            sync_dir(dest.parent().expect("has parent"))?;
        }
        Ok(())
    }

    fn write_message(&self, sub: &str, m: &StoredMessage, sync_parent: bool) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(m).expect("serialisable");
        self.write_atomic(&self.dir.join(sub).join(file_name(m.sequence_number)), &bytes, sync_parent)
    }

    fn allocate_seq(&self, st: &mut State) -> std::io::Result<u64> {
        if st.next_seq >= st.reserved_until {
            let until = st.next_seq + SEQUENCE_BLOCK;
            self.write_atomic(&self.dir.join("sequence"), until.to_string().as_bytes(), true)?;
            st.reserved_until = until;
        }
        let s = st.next_seq;
        st.next_seq += 1;
        Ok(s)
    }

    /// Durably appends messages; returns them as stored (visible to receivers only once durable).
    pub fn enqueue(&self, msgs: Vec<NewMessage>, now: OffsetDateTime) -> Result<Vec<StoredMessage>, StoreError> {
        use base64::Engine;
        let mut out = Vec::with_capacity(msgs.len());
        for m in msgs {
            let seq = {
                let mut st = self.state();
                self.allocate_seq(&mut st)?
            };
            let stored = StoredMessage {
                sequence_number: seq,
                message_id: m.message_id.unwrap_or_else(|| crate::envelope::guid().replace('-', "")),
                body: base64::engine::general_purpose::STANDARD.encode(&m.body),
                content_type: m.content_type,
                correlation_id: m.correlation_id,
                subject: m.subject,
                application_properties: m.application_properties,
                enqueued_time: now.format(&Rfc3339).expect("formattable"),
                delivery_count: 0,
                dead_letter_reason: None,
                dead_letter_error_description: None,
            };
            self.write_message("active", &stored, false)?;
            out.push(stored);
        }
        sync_dir(&self.dir.join("active"))?;
        let mut st = self.state();
        for m in &out {
            st.available.insert(m.sequence_number, m.clone());
        }
        Ok(out)
    }

    fn expire_locks(st: &mut State, now: Instant) {
        let expired: Vec<u64> = st.locked.iter().filter(|(_, l)| l.until <= now).map(|(s, _)| *s).collect();
        for seq in expired {
            if let Some(l) = st.locked.remove(&seq) {
                st.available.insert(seq, l.message);
            }
        }
    }

    /// Peek-lock the oldest available message, persisting its incremented delivery count first.
    /// Messages that already used up their deliveries are dead-lettered on the way.
    pub fn receive(&self, now: Instant) -> Result<Option<Locked>, StoreError> {
        match self.reserve(now)? {
            Some(l) => self.persist_delivery(&l).map(|_| Some(l)),
            None => Ok(None),
        }
    }

    /// The in-memory half of [`receive`](Self::receive): locks the oldest message with its
    /// delivery count incremented. It must not reach the handler before
    /// [`persist_delivery`](Self::persist_delivery) succeeded.
    pub fn reserve(&self, now: Instant) -> Result<Option<Locked>, StoreError> {
        loop {
            let mut st = self.state();
            Self::expire_locks(&mut st, now);
            let Some((&seq, _)) = st.available.iter().next() else { return Ok(None) };
            let mut m = st.available.remove(&seq).expect("present");
            if m.delivery_count >= MAX_DELIVERY_COUNT {
                drop(st);
                self.move_to_dead(
                    m,
                    "MaxDeliveryCountExceeded",
                    "Message could not be consumed after 10 delivery attempts.",
                )?;
                continue;
            }
            m.delivery_count += 1;
            let token = crate::envelope::guid();
            st.locked
                .insert(seq, LockedEntry { message: m.clone(), token: token.clone(), until: now + self.lock_duration });
            return Ok(Some(Locked { message: m, lock_token: token }));
        }
    }

    /// The durable half of [`receive`](Self::receive): writes the incremented delivery count.
    /// On failure the reservation is undone.
    pub fn persist_delivery(&self, l: &Locked) -> Result<(), StoreError> {
        let seq = l.message.sequence_number;
        if let Err(e) = self.write_message("active", &l.message, true) {
            let mut st = self.state();
            if let Some(mut entry) = st.locked.remove(&seq) {
                entry.message.delivery_count -= 1;
                st.available.insert(seq, entry.message);
            }
            return Err(e.into());
        }
        Ok(())
    }

    fn take_lock(&self, seq: u64, token: &str) -> Result<StoredMessage, StoreError> {
        let mut st = self.state();
        match st.locked.get(&seq) {
            Some(l) if l.token == token => Ok(st.locked.remove(&seq).expect("present").message),
            _ => Err(StoreError::LockLost),
        }
    }

    /// Success: the message is gone for good.
    pub fn complete(&self, seq: u64, token: &str) -> Result<(), StoreError> {
        let m = self.take_lock(seq, token)?;
        let path = self.dir.join("active").join(file_name(seq));
        if let Err(e) = fs::remove_file(&path).and_then(|_| sync_dir(&self.dir.join("active"))) {
            self.state().available.insert(seq, m);
            return Err(e.into());
        }
        Ok(())
    }

    /// Failure: back to the queue, or to the dead-letter queue once deliveries are used up.
    pub fn abandon(&self, seq: u64, token: &str, error: &str) -> Result<(), StoreError> {
        let m = self.take_lock(seq, token)?;
        if m.delivery_count >= MAX_DELIVERY_COUNT {
            let desc = format!(
                "Message could not be consumed after {MAX_DELIVERY_COUNT} delivery attempts. Last error: {error}"
            );
            return self.move_to_dead(m, "MaxDeliveryCountExceeded", &desc);
        }
        self.state().available.insert(seq, m);
        Ok(())
    }

    /// `m` must already be out of the index (nobody else touches its file meanwhile).
    fn move_to_dead(&self, mut m: StoredMessage, reason: &str, desc: &str) -> Result<(), StoreError> {
        let seq = m.sequence_number;
        m.dead_letter_reason = Some(reason.to_string());
        m.dead_letter_error_description = Some(desc.to_string());
        // Rewrite in place (atomic), then move between folders (atomic): at every instant the
        // message exists in exactly one folder.
        let res = self.write_message("active", &m, false).and_then(|_| {
            fs::rename(self.dir.join("active").join(file_name(seq)), self.dir.join("deadletter").join(file_name(seq)))?;
            sync_dir(&self.dir.join("deadletter"))?;
            sync_dir(&self.dir.join("active"))
        });
        let mut st = self.state();
        match res {
            Ok(()) => {
                st.dead.insert(seq, m);
                Ok(())
            }
            Err(e) => {
                m.dead_letter_reason = None;
                m.dead_letter_error_description = None;
                st.available.insert(seq, m);
                Err(e.into())
            }
        }
    }

    /// Moves a dead-lettered message back to the queue with a fresh sequence number and count.
    pub fn resubmit(&self, seq: u64) -> Result<StoredMessage, StoreError> {
        let (old, new_seq) = {
            let mut st = self.state();
            let m = st.dead.remove(&seq).ok_or(StoreError::NotFound)?;
            match self.allocate_seq(&mut st) {
                Ok(n) => (m, n),
                Err(e) => {
                    st.dead.insert(seq, m);
                    return Err(e.into());
                }
            }
        };
        let mut m = old.clone();
        m.sequence_number = new_seq;
        m.delivery_count = 0;
        m.dead_letter_reason = None;
        m.dead_letter_error_description = None;
        // Write the new version under its new name in deadletter/, drop the old name, then move
        // the new one into active/. A crash in between leaves exactly one copy in deadletter/.
        let res = self.write_message("deadletter", &m, false).and_then(|_| {
            fs::remove_file(self.dir.join("deadletter").join(file_name(seq)))?;
            sync_dir(&self.dir.join("deadletter"))?;
            fs::rename(
                self.dir.join("deadletter").join(file_name(new_seq)),
                self.dir.join("active").join(file_name(new_seq)),
            )?;
            sync_dir(&self.dir.join("active"))?;
            sync_dir(&self.dir.join("deadletter"))
        });
        if let Err(e) = res {
            // Whatever is on disk is recovered correctly on restart; keep the index conservative.
            self.state().dead.insert(seq, old);
            return Err(e.into());
        }
        self.state().available.insert(new_seq, m.clone());
        Ok(m)
    }

    /// Active messages (available and locked), by sequence number.
    pub fn active(&self) -> Vec<(StoredMessage, bool)> {
        let st = self.state();
        let mut v: Vec<(StoredMessage, bool)> = st.available.values().map(|m| (m.clone(), false)).collect();
        v.extend(st.locked.values().map(|l| (l.message.clone(), true)));
        v.sort_by_key(|(m, _)| m.sequence_number);
        v
    }

    pub fn dead_letters(&self) -> Vec<StoredMessage> {
        self.state().dead.values().cloned().collect()
    }

    pub fn find_dead(&self, id: &str) -> Option<u64> {
        let st = self.state();
        if let Ok(seq) = id.parse::<u64>()
            && st.dead.contains_key(&seq)
        {
            return Some(seq);
        }
        st.dead.values().find(|m| m.message_id == id).map(|m| m.sequence_number)
    }

    pub fn counts(&self) -> (usize, usize, usize) {
        let st = self.state();
        (st.available.len(), st.locked.len(), st.dead.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("fh-store-{tag}-{}-{}", std::process::id(), rand::random::<u32>()));
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn msg(body: &str) -> NewMessage {
        NewMessage { body: body.as_bytes().to_vec(), ..Default::default() }
    }

    const LOCK: Duration = Duration::from_secs(60);

    #[test]
    fn test_fifo_complete_and_sequence_numbers() {
        let d = dir("fifo");
        let q = QueueStore::open(&d, LOCK).unwrap();
        let now = OffsetDateTime::now_utc();
        let stored = q.enqueue(vec![msg("a"), msg("b")], now).unwrap();
        assert_eq!(stored[0].sequence_number + 1, stored[1].sequence_number);
        let l = q.receive(Instant::now()).unwrap().unwrap();
        assert_eq!(l.message.body_bytes(), b"a");
        assert_eq!(l.message.delivery_count, 1);
        q.complete(l.message.sequence_number, &l.lock_token).unwrap();
        assert!(matches!(q.complete(l.message.sequence_number, &l.lock_token), Err(StoreError::LockLost)));
        let l2 = q.receive(Instant::now()).unwrap().unwrap();
        assert_eq!(l2.message.body_bytes(), b"b");
        assert!(q.receive(Instant::now()).unwrap().is_none());
    }

    #[test]
    fn test_dead_letter_after_ten_deliveries_and_resubmit() {
        let d = dir("dlq");
        let q = QueueStore::open(&d, LOCK).unwrap();
        q.enqueue(vec![msg("x")], OffsetDateTime::now_utc()).unwrap();
        for i in 1..=10 {
            let l = q.receive(Instant::now()).unwrap().unwrap();
            assert_eq!(l.message.delivery_count, i);
            q.abandon(l.message.sequence_number, &l.lock_token, "boom").unwrap();
        }
        assert!(q.receive(Instant::now()).unwrap().is_none());
        let dead = q.dead_letters();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].dead_letter_reason.as_deref(), Some("MaxDeliveryCountExceeded"));
        // Survives a reopen.
        drop(q);
        let q = QueueStore::open(&d, LOCK).unwrap();
        assert_eq!(q.dead_letters().len(), 1);
        let id = dead[0].message_id.clone();
        let seq = q.find_dead(&id).unwrap();
        let m = q.resubmit(seq).unwrap();
        assert!(m.sequence_number > seq);
        assert_eq!(m.message_id, id);
        let l = q.receive(Instant::now()).unwrap().unwrap();
        assert_eq!(l.message.delivery_count, 1);
        assert!(q.dead_letters().is_empty());
    }

    #[test]
    fn test_locked_message_is_redelivered_after_crash_with_higher_count() {
        let d = dir("crash");
        let q = QueueStore::open(&d, LOCK).unwrap();
        q.enqueue(vec![msg("a")], OffsetDateTime::now_utc()).unwrap();
        let l = q.receive(Instant::now()).unwrap().unwrap();
        assert_eq!(l.message.delivery_count, 1);
        // "Crash": drop without settling, plus a torn temp write.
        fs::write(d.join("tmp").join("torn.tmp"), b"{\"seq").unwrap();
        drop(q);
        let q = QueueStore::open(&d, LOCK).unwrap();
        let l2 = q.receive(Instant::now()).unwrap().unwrap();
        assert_eq!(l2.message.message_id, l.message.message_id);
        assert_eq!(l2.message.delivery_count, 2);
        assert!(fs::read_dir(d.join("tmp")).unwrap().next().is_none());
    }

    #[test]
    fn test_crashes_during_the_tenth_delivery_still_dead_letter() {
        let d = dir("crash10");
        let q = QueueStore::open(&d, LOCK).unwrap();
        q.enqueue(vec![msg("a")], OffsetDateTime::now_utc()).unwrap();
        drop(q);
        // Ten deliveries, each "crashing" before the message is settled.
        for i in 1..=10 {
            let q = QueueStore::open(&d, LOCK).unwrap();
            assert_eq!(q.receive(Instant::now()).unwrap().unwrap().message.delivery_count, i);
        }
        let q = QueueStore::open(&d, LOCK).unwrap();
        assert!(q.receive(Instant::now()).unwrap().is_none(), "no eleventh delivery");
        assert_eq!(q.dead_letters().len(), 1);
    }

    #[test]
    fn test_sequence_numbers_never_go_back_after_restart() {
        let d = dir("seq");
        let q = QueueStore::open(&d, LOCK).unwrap();
        let a = q.enqueue(vec![msg("a")], OffsetDateTime::now_utc()).unwrap()[0].sequence_number;
        let l = q.receive(Instant::now()).unwrap().unwrap();
        q.complete(l.message.sequence_number, &l.lock_token).unwrap();
        drop(q);
        let q = QueueStore::open(&d, LOCK).unwrap();
        let b = q.enqueue(vec![msg("b")], OffsetDateTime::now_utc()).unwrap()[0].sequence_number;
        assert!(b > a);
    }

    #[test]
    fn test_expired_lock_returns_message() {
        let d = dir("expire");
        let q = QueueStore::open(&d, Duration::from_millis(10)).unwrap();
        q.enqueue(vec![msg("a")], OffsetDateTime::now_utc()).unwrap();
        let l = q.receive(Instant::now()).unwrap().unwrap();
        let later = Instant::now() + Duration::from_millis(20);
        let l2 = q.receive(later).unwrap().unwrap();
        assert_eq!(l2.message.delivery_count, 2);
        assert!(matches!(q.complete(l.message.sequence_number, &l.lock_token), Err(StoreError::LockLost)));
        q.complete(l2.message.sequence_number, &l2.lock_token).unwrap();
    }
}
