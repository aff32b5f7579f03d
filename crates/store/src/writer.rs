//! The one evidence writer: a thread that owns the write connection, and the cheap handle
//! that talks to it over a channel.
//!
//! Group commit: the thread takes every command already queued (up to [`MAX_GROUP`]) and
//! commits them in one transaction, each inside its own savepoint so one bad command fails
//! alone. With `synchronous=FULL` a commit costs an fsync; sharing it between everyone who
//! was waiting is what lets concurrent appenders go faster than one fsync per event.
//!
//! The same thread also applies knowledge-index changes, so a process has one write
//! connection and never contends with itself for SQLite's write lock. They touch no
//! evidence, so they run in a transaction of their own, in queue order, and work even when
//! the log is damaged (re-indexing must not depend on the chain).

use std::path::PathBuf;
use std::sync::mpsc;

use countersign_core::model::Pause;
use countersign_core::team::SignedEntry;
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::chain::Hash;
use crate::error::StoreError;
use crate::evidence::{Appended, Head, NewEvent, canonical_body, read_head};
use crate::kb::{KbApplied, KbChanges};
use crate::pause::{PAUSE_CHANGED, clear_payload, set_payload};
use crate::steps::{NewStep, Transition};

/// Most commands committed in one transaction, to bound how long the first waits.
const MAX_GROUP: usize = 1024;

struct NewBlob {
    media_type: String,
    data: Vec<u8>,
    at: Timestamp,
}

type Reply = mpsc::SyncSender<Result<Vec<Appended>, StoreError>>;

enum Op {
    Append(Vec<NewEvent>),
    SetPause { pause: Box<Pause>, signed: Option<Box<SignedEntry>> },
    ClearPause { id: String, cleared_by: String, reason: String, at: Timestamp, signed: Option<Box<SignedEntry>> },
    Record { events: Vec<NewEvent>, steps: Vec<NewStep> },
    Transition(Box<Transition>),
    ReceiveCase(Box<crate::cases::NewCaseRevision>),
    SetCursor { source: String, cursor: String, at: Timestamp },
}

enum Msg {
    Op(Op, Reply),
    Knowledge(Box<KbChanges>, mpsc::SyncSender<Result<KbApplied, StoreError>>),
    Blob(Box<NewBlob>, mpsc::SyncSender<Result<String, StoreError>>),
    Shutdown,
}

/// A handle to the single evidence writer. Cheap to clone and to send to other threads;
/// every clone feeds the same writer thread, so the chain is extended strictly in order.
///
/// Every method returns only after the transaction is durable on disk.
#[derive(Debug, Clone)]
pub struct EvidenceWriter {
    tx: mpsc::Sender<Msg>,
    /// Writes answered so far (see [`EvidenceWriter::writes`]).
    writes: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Msg::Op(..) => "Op",
            Msg::Knowledge(..) => "Knowledge",
            Msg::Blob(..) => "Blob",
            Msg::Shutdown => "Shutdown",
        })
    }
}

impl EvidenceWriter {
    /// Append one event. Returns its seq and hash once committed durably.
    pub fn append(&self, event: NewEvent) -> Result<Appended, StoreError> {
        single(self.call(Op::Append(vec![event]))?)
    }

    /// Append events in one transaction: all are committed, in order, or none is.
    pub fn append_batch(&self, events: Vec<NewEvent>) -> Result<Vec<Appended>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        self.call(Op::Append(events))
    }

    /// Set a pause switch. The pause row and its `pause_changed` event commit together.
    /// Ids are never reused: an id that was ever set gives [`StoreError::PauseExists`].
    pub fn set_pause(&self, pause: Pause) -> Result<Appended, StoreError> {
        single(self.call(Op::SetPause { pause: Box::new(pause), signed: None })?)
    }

    /// [`EvidenceWriter::set_pause`] for a pause that came from a team's plane: its
    /// signed entry goes into the evidence event.
    pub fn set_team_pause(&self, pause: Pause, signed: SignedEntry) -> Result<Appended, StoreError> {
        single(self.call(Op::SetPause { pause: Box::new(pause), signed: Some(Box::new(signed)) })?)
    }

    /// [`EvidenceWriter::clear_pause`] for a team pause cleared on the team's plane.
    pub fn clear_team_pause(
        &self,
        id: &str,
        cleared_by: &str,
        reason: &str,
        at: Timestamp,
        signed: SignedEntry,
    ) -> Result<Appended, StoreError> {
        single(self.call(Op::ClearPause {
            id: id.to_owned(),
            cleared_by: cleared_by.to_owned(),
            reason: reason.to_owned(),
            at,
            signed: Some(Box::new(signed)),
        })?)
    }

    /// Clear an active pause, with its `pause_changed` event, atomically. Unknown ids give
    /// [`StoreError::PauseNotFound`], cleared ones [`StoreError::PauseAlreadyCleared`].
    pub fn clear_pause(&self, id: &str, cleared_by: &str, reason: &str, at: Timestamp) -> Result<Appended, StoreError> {
        single(self.call(Op::ClearPause {
            id: id.to_owned(),
            cleared_by: cleared_by.to_owned(),
            reason: reason.to_owned(),
            at,
            signed: None,
        })?)
    }

    /// Append events and enter steps into the queue, in one transaction. Each step row
    /// points at the last event of the batch (the decision that queued it).
    pub fn record(&self, events: Vec<NewEvent>, steps: Vec<NewStep>) -> Result<Vec<Appended>, StoreError> {
        if events.is_empty() {
            return Err(StoreError::InvalidEvent {
                reason: "steps are recorded with the events that decided them".into(),
            });
        }
        self.call(Op::Record { events, steps })
    }

    /// Move a step to another state if it is in one of `from`, recording `event` in the
    /// same transaction. Otherwise [`StoreError::StepConflict`] and nothing is written.
    pub fn transition(&self, t: Transition) -> Result<Appended, StoreError> {
        single(self.call(Op::Transition(Box::new(t)))?)
    }

    /// Record a case revision received from a source with its `case_received` event, in
    /// one transaction; a revision that is not the case's next gives
    /// [`StoreError::CaseRevisionConflict`] and nothing is written.
    pub fn receive_case(&self, revision: crate::cases::NewCaseRevision) -> Result<Appended, StoreError> {
        single(self.call(Op::ReceiveCase(Box::new(revision)))?)
    }

    /// Where a source's change listing stands, once the cases of a page are recorded.
    pub fn set_source_cursor(&self, source: &str, cursor: &str, at: Timestamp) -> Result<(), StoreError> {
        self.call(Op::SetCursor { source: source.to_owned(), cursor: cursor.to_owned(), at }).map(drop)
    }

    /// Apply knowledge-index changes in one transaction of their own (see [`crate::kb`]).
    pub(crate) fn knowledge(&self, changes: KbChanges) -> Result<KbApplied, StoreError> {
        let (reply, rx) = mpsc::sync_channel(1);
        self.tx.send(Msg::Knowledge(Box::new(changes), reply)).map_err(|_| StoreError::Closed)?;
        self.answered(rx.recv().map_err(|_| StoreError::Closed)?)
    }

    /// Store a content-addressed blob (a screenshot, a page snapshot) durably, before the
    /// event that names it is appended. Returns its hash (hex SHA-256 of `data`); storing
    /// the same bytes again stores nothing new.
    pub fn put_blob(&self, media_type: &str, data: &[u8], at: Timestamp) -> Result<String, StoreError> {
        crate::blobs::check(media_type, data)?;
        let (reply, rx) = mpsc::sync_channel(1);
        let blob = NewBlob { media_type: media_type.to_owned(), data: data.to_vec(), at };
        self.tx.send(Msg::Blob(Box::new(blob), reply)).map_err(|_| StoreError::Closed)?;
        self.answered(rx.recv().map_err(|_| StoreError::Closed)?)
    }

    fn call(&self, op: Op) -> Result<Vec<Appended>, StoreError> {
        let (reply, rx) = mpsc::sync_channel(1);
        self.tx.send(Msg::Op(op, reply)).map_err(|_| StoreError::Closed)?;
        self.answered(rx.recv().map_err(|_| StoreError::Closed)?)
    }

    /// Count a write once the writer answered it (committed, or refused).
    fn answered<T>(&self, result: T) -> T {
        self.writes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        result
    }

    /// How many writes this store's writer has answered since it opened: unchanged, this
    /// process has changed nothing in the log since (another process on the same file
    /// is not counted).
    pub fn writes(&self) -> u64 {
        self.writes.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub(crate) fn shutdown(&self) {
        // If the thread is already gone there is nothing to stop.
        let _ = self.tx.send(Msg::Shutdown);
    }
}

fn single(mut v: Vec<Appended>) -> Result<Appended, StoreError> {
    v.pop().ok_or(StoreError::Closed)
}

/// Start the writer thread on `conn` (already opened and migrated).
pub(crate) fn spawn(
    conn: Connection,
    path: PathBuf,
) -> Result<(EvidenceWriter, std::thread::JoinHandle<()>), StoreError> {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .name("countersign-evidence-writer".into())
        .spawn(move || Writer { conn, path }.run(&rx))
        .map_err(|source| StoreError::Io { path: PathBuf::from("<writer thread>"), source })?;
    Ok((EvidenceWriter { tx, writes: std::sync::Arc::default() }, handle))
}

struct Writer {
    conn: Connection,
    path: PathBuf,
}

impl Writer {
    fn run(mut self, rx: &mpsc::Receiver<Msg>) {
        // Ends when every handle is dropped or on Shutdown.
        while let Ok(first) = rx.recv() {
            let mut group = Vec::new();
            let mut stop = false;
            let mut knowledge = None;
            let mut blob = None;
            let mut next = Some(first);
            while let Some(msg) = next {
                match msg {
                    Msg::Op(op, reply) => group.push((op, reply)),
                    // Ends the group: everything queued before it commits first.
                    Msg::Knowledge(changes, reply) => {
                        knowledge = Some((changes, reply));
                        break;
                    }
                    Msg::Blob(new, reply) => {
                        blob = Some((new, reply));
                        break;
                    }
                    Msg::Shutdown => {
                        stop = true;
                        break;
                    }
                }
                next = if group.len() < MAX_GROUP { rx.try_recv().ok() } else { None };
            }
            if !group.is_empty() {
                self.commit_group(group);
            }
            if let Some((changes, reply)) = knowledge {
                // A caller that gave up waiting is no reason to stop.
                let _ = reply.send(self.apply_knowledge(&changes));
            }
            if let Some((new, reply)) = blob {
                let path = &self.path;
                let stored = crate::blobs::put(&self.conn, &new.media_type, &new.data, &new.at.to_string())
                    .map_err(|e| StoreError::from_sqlite(path, e));
                let _ = reply.send(stored);
            }
            if stop {
                return;
            }
        }
    }

    fn apply_knowledge(&mut self, changes: &KbChanges) -> Result<KbApplied, StoreError> {
        let path = &self.path;
        let sql_err = |e| StoreError::from_sqlite(path, e);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_err)?;
        // On error `tx` is dropped, which rolls everything back.
        let applied = crate::kb::apply(&tx, changes).map_err(|e| match e {
            StoreError::Sqlite(e) => StoreError::from_sqlite(path, e),
            other => other,
        })?;
        tx.commit().map_err(sql_err)?;
        Ok(applied)
    }

    fn commit_group(&mut self, group: Vec<(Op, Reply)>) {
        let (ops, replies): (Vec<Op>, Vec<Reply>) = group.into_iter().unzip();
        let mut results = Vec::with_capacity(ops.len());
        if let Err(e) = self.run_group(ops, &mut results) {
            // Nothing of this group is durable: every caller that thought it succeeded, or
            // was not reached, gets the error.
            for r in results.iter_mut().filter(|r| r.is_ok()) {
                *r = Err(e.duplicate());
            }
            results.resize_with(replies.len(), || Err(e.duplicate()));
            // Make sure no half-open transaction survives into the next group.
            if !self.conn.is_autocommit() {
                let _ = self.conn.execute_batch("ROLLBACK");
            }
        }
        for (reply, r) in replies.into_iter().zip(results) {
            // A caller that gave up waiting is no reason to stop.
            let _ = reply.send(r);
        }
    }

    /// Apply each op in its own savepoint, then commit once. `results` gets one entry per
    /// op reached; an `Err` return means the transaction as a whole failed.
    fn run_group(
        &mut self,
        ops: Vec<Op>,
        results: &mut Vec<Result<Vec<Appended>, StoreError>>,
    ) -> Result<(), StoreError> {
        let path = &self.path;
        let sql_err = |e| StoreError::from_sqlite(path, e);
        let mut tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sql_err)?;
        // Re-read the head each time: cheap, and a damaged tail is noticed before it is extended.
        let mut head = read_head(&tx)?;
        check_tail(&tx, &head)?;
        for op in ops {
            let before = head;
            let sp = tx.savepoint().map_err(sql_err)?;
            match apply(&sp, &mut head, op) {
                Ok(appended) => {
                    write_head(&sp, &head)?;
                    sp.commit().map_err(sql_err)?;
                    results.push(Ok(appended));
                }
                Err(e) => {
                    drop(sp); // rolls back this op only
                    head = before;
                    results.push(Err(match e {
                        StoreError::Sqlite(e) => StoreError::from_sqlite(path, e),
                        other => other,
                    }));
                }
            }
        }
        tx.commit().map_err(sql_err)
    }
}

/// The last stored event must be the one the head names; otherwise refuse to extend.
fn check_tail(conn: &Connection, head: &Head) -> Result<(), StoreError> {
    let last: Option<(i64, Vec<u8>)> = conn
        .prepare_cached("SELECT seq, hash FROM evidence ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let damaged = |detail: String| Err(StoreError::LogDamaged { detail });
    match last {
        None if head.count == 0 => Ok(()),
        None => damaged(format!("the head says {} events but the log is empty", head.count)),
        Some((seq, hash)) => {
            if seq.unsigned_abs() != head.count || seq < 0 {
                damaged(format!("the head says {} events but the last is seq {seq}", head.count))
            } else if Hash::from_slice(&hash) != Some(head.hash) {
                damaged(format!("the last event's hash differs from the head's (seq {seq})"))
            } else {
                Ok(())
            }
        }
    }
}

fn apply(conn: &Connection, head: &mut Head, op: Op) -> Result<Vec<Appended>, StoreError> {
    match op {
        Op::Record { events, steps } => {
            let appended = events.iter().map(|ev| append_one(conn, head, ev)).collect::<Result<Vec<_>, _>>()?;
            let seq = appended.last().map_or(head.count, |a| a.seq);
            for s in &steps {
                crate::steps::insert(conn, s, seq)?;
            }
            Ok(appended)
        }
        Op::Transition(t) => {
            crate::steps::check(conn, &t)?;
            let appended = append_one(conn, head, &t.event)?;
            crate::steps::apply(conn, &t, appended.seq)?;
            Ok(vec![appended])
        }
        Op::Append(events) => events.iter().map(|ev| append_one(conn, head, ev)).collect(),
        Op::ReceiveCase(new) => {
            crate::cases::check_next(conn, &new)?;
            let appended = append_one(conn, head, &new.event)?;
            crate::cases::insert(conn, &new, appended.seq)?;
            Ok(vec![appended])
        }
        Op::SetCursor { source, cursor, at } => {
            crate::cases::set_cursor(conn, &source, &cursor, at)?;
            Ok(Vec::new())
        }
        Op::SetPause { pause, signed } => {
            crate::pause::validate(&pause)?;
            let exists: Option<String> = conn
                .prepare_cached("SELECT id FROM pauses WHERE id = ?")?
                .query_row([&pause.id], |r| r.get(0))
                .optional()?;
            if exists.is_some() {
                return Err(StoreError::PauseExists { id: pause.id });
            }
            let ev = NewEvent {
                case_id: None,
                kind: PAUSE_CHANGED.into(),
                actor: pause.set_by.clone(),
                at: pause.set_at,
                payload: set_payload(&pause, signed.map(|s| *s)),
            };
            let appended = append_one(conn, head, &ev)?;
            conn.prepare_cached(
                "INSERT INTO pauses (id, scope, value, reason, set_by, set_at, set_seq, team)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )?
            .execute(params![
                pause.id,
                pause.scope.as_str(),
                pause.value,
                pause.reason,
                pause.set_by,
                pause.set_at.to_string(),
                seq_sql(appended.seq),
                pause.team,
            ])?;
            Ok(vec![appended])
        }
        Op::ClearPause { id, cleared_by, reason, at, signed } => {
            let Some(record) = crate::pause::get(conn, &id)? else {
                return Err(StoreError::PauseNotFound { id });
            };
            if let Some(c) = record.cleared {
                return Err(StoreError::PauseAlreadyCleared { id, cleared_at: c.at });
            }
            if cleared_by.trim().is_empty() {
                return Err(StoreError::InvalidEvent { reason: "cleared_by must not be empty".into() });
            }
            let ev = NewEvent {
                case_id: None,
                kind: PAUSE_CHANGED.into(),
                actor: cleared_by.clone(),
                at,
                payload: clear_payload(&record.pause, &reason, signed.map(|s| *s)),
            };
            let appended = append_one(conn, head, &ev)?;
            conn.prepare_cached(
                "UPDATE pauses SET cleared_by = ?, cleared_at = ?, cleared_reason = ?, cleared_seq = ?
                 WHERE id = ? AND cleared_seq IS NULL",
            )?
            .execute(params![cleared_by, at.to_string(), reason, seq_sql(appended.seq), id])?;
            Ok(vec![appended])
        }
    }
}

fn append_one(conn: &Connection, head: &mut Head, ev: &NewEvent) -> Result<Appended, StoreError> {
    let seq = head.count + 1;
    let body = canonical_body(seq, ev)?;
    let hash = Hash::link(&head.hash, body.as_bytes());
    conn.prepare_cached("INSERT INTO evidence (seq, body, hash) VALUES (?, ?, ?)")?.execute(params![
        seq_sql(seq),
        body,
        &hash.0[..]
    ])?;
    *head = Head { count: seq, hash };
    Ok(Appended { seq, hash })
}

/// Record the head in the same transaction (and savepoint) as the events it counts.
fn write_head(conn: &Connection, head: &Head) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE chain_head SET count = ?, head = ? WHERE id = 1")?
        .execute(params![seq_sql(head.count), &head.hash.0[..]])?;
    Ok(())
}

/// Seqs are far below `i64::MAX`; saturate rather than wrap if that ever stops being true.
pub(crate) fn seq_sql(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}
