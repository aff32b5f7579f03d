//! [`Store`]: one open database file, its writer thread and a small pool of read connections.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread::JoinHandle;

use countersign_core::evidence::Event;
use countersign_core::model::Pause;
use jiff::Timestamp;
use rusqlite::Connection;

use crate::db::{self, OpenInfo};
use crate::error::StoreError;
use crate::evidence::{self, EventFilter, Head, NewEvent, StoredEvent};
use crate::export::{EXPORT_MADE, ExportSummary, write_bundle};
use crate::kb::{self, KbApplied, KbArticle, KbChanges, KbFile, KbHit, KbIndexed, KbPlan};
use crate::pause::{self, PauseRecord};
use crate::steps::{StepFilter, StepRecord};
use crate::verify::{VerifyReport, verify_conn};
use crate::writer::{self, EvidenceWriter};

/// Idle read connections kept for reuse; more are opened on demand when threads overlap.
const MAX_IDLE_READERS: usize = 4;

/// An open Countersign store. `Send + Sync`: share it behind an `Arc`.
///
/// Writes go through [`Store::writer`] (one thread, one connection); reads use their own
/// connections and may run on any thread, concurrently with writes (WAL). Dropping the
/// store stops the writer thread after the commands already queued; writer handles still
/// held elsewhere then get [`StoreError::Closed`].
pub struct Store {
    path: PathBuf,
    info: OpenInfo,
    writer: EvidenceWriter,
    thread: Option<JoinHandle<()>>,
    readers: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).field("info", &self.info).finish_non_exhaustive()
    }
}

impl Store {
    /// Open the store at `path`, creating it if missing. An existing store that needs
    /// migrations is first copied to `<path>.bak-<version>` (SQLite online backup).
    ///
    /// Errors, never panics, on a file that is not SQLite ([`StoreError::NotADatabase`]),
    /// another application's database ([`StoreError::NotAStore`]), a newer schema
    /// ([`StoreError::SchemaTooNew`]) or a place that cannot be written
    /// ([`StoreError::CannotOpen`], [`StoreError::ReadOnly`]).
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        let (conn, info) = db::open_write(&path)?;
        let (writer, thread) = writer::spawn(conn, path.clone())?;
        Ok(Store { path, info, writer, thread: Some(thread), readers: Mutex::new(Vec::new()) })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What opening did: created, migrated, backed up.
    pub fn open_info(&self) -> &OpenInfo {
        &self.info
    }

    /// A handle to the single evidence writer (cheap; clone it freely).
    pub fn writer(&self) -> EvidenceWriter {
        self.writer.clone()
    }

    /// Shorthand for `self.writer().append(event)`.
    pub fn append(&self, event: NewEvent) -> Result<crate::Appended, StoreError> {
        self.writer.append(event)
    }

    /// The chain head: event count and last hash.
    pub fn head(&self) -> Result<Head, StoreError> {
        self.read(evidence::read_head)
    }

    /// Events matching `filter`, oldest first.
    pub fn list_events(&self, filter: &EventFilter) -> Result<Vec<StoredEvent>, StoreError> {
        self.read(|c| evidence::list_events(c, filter))
    }

    /// `(seq, body)` of the events matching `filter`, oldest first, the bodies unparsed.
    pub fn event_bodies(&self, filter: &EventFilter) -> Result<Vec<(u64, String)>, StoreError> {
        self.read(|c| evidence::list_bodies(c, filter))
    }

    /// Every event of one case, oldest first.
    pub fn events_for_case(&self, case_id: &str) -> Result<Vec<StoredEvent>, StoreError> {
        self.list_events(&EventFilter { case_id: Some(case_id.to_owned()), ..EventFilter::default() })
    }

    /// One event by seq.
    pub fn event(&self, seq: u64) -> Result<Option<StoredEvent>, StoreError> {
        self.read(|c| evidence::get_event(c, seq))
    }

    /// One queued or executed step.
    pub fn step(&self, plan_id: &str, step_id: &str) -> Result<Option<StepRecord>, StoreError> {
        self.read(|c| crate::steps::get(c, plan_id, step_id))
    }

    /// Steps matching the filter, oldest decision first.
    pub fn steps(&self, filter: &StepFilter) -> Result<Vec<StepRecord>, StoreError> {
        self.read(|c| crate::steps::list(c, filter))
    }

    /// The latest revision of every case received from a source, oldest case first.
    pub fn received_cases(&self) -> Result<Vec<crate::CaseRevision>, StoreError> {
        self.read(crate::cases::latest)
    }

    /// The latest revision of one received case.
    pub fn received_case(&self, case_id: &str) -> Result<Option<crate::CaseRevision>, StoreError> {
        self.read(|c| crate::cases::latest_of(c, case_id))
    }

    /// Where a source's change listing stands (`None`: never listed).
    pub fn source_cursor(&self, source: &str) -> Result<Option<String>, StoreError> {
        self.read(|c| crate::cases::cursor(c, source))
    }

    /// Pauses in force, oldest first.
    pub fn active_pauses(&self) -> Result<Vec<Pause>, StoreError> {
        self.read(pause::active)
    }

    /// One pause, set or cleared, by its id.
    pub fn pause(&self, id: &str) -> Result<Option<PauseRecord>, StoreError> {
        self.read(|c| pause::get(c, id))
    }

    /// Every pause ever set, with how it was cleared, oldest first.
    pub fn pause_history(&self) -> Result<Vec<PauseRecord>, StoreError> {
        self.read(pause::history)
    }

    /// Knowledge index: compare the files on disk (path, content hash) with what is
    /// indexed — which to parse, which to remove, how many are unchanged.
    pub fn kb_plan(&self, files: &[KbFile]) -> Result<KbPlan, StoreError> {
        self.read(|c| kb::plan(c, files))
    }

    /// Knowledge index: add, replace and remove articles in one transaction (through the
    /// writer thread). See [`KbChanges`].
    pub fn kb_apply(&self, changes: KbChanges) -> Result<KbApplied, StoreError> {
        if changes.upsert.is_empty() && changes.remove.is_empty() && !changes.rebuild {
            return Ok(KbApplied::default());
        }
        self.writer.knowledge(changes)
    }

    /// Every indexed article file, by path.
    pub fn kb_indexed(&self) -> Result<Vec<KbIndexed>, StoreError> {
        self.read(kb::indexed)
    }

    /// Indexed article id → current version (as text).
    pub fn kb_versions(&self) -> Result<std::collections::BTreeMap<String, String>, StoreError> {
        self.read(kb::versions)
    }

    /// One indexed article with its passages, in order.
    pub fn kb_article(&self, id: &str) -> Result<Option<KbArticle>, StoreError> {
        self.read(|c| kb::article(c, id))
    }

    /// Full-text search over passages, best first (bm25 over the words of `query`, see
    /// [`crate::query_terms`]; very common words are handled specially to keep latency
    /// bounded on big knowledge bases). At most `limit` (capped at
    /// [`crate::MAX_SEARCH_LIMIT`]) hits.
    pub fn kb_search(&self, query: &str, limit: usize) -> Result<Vec<KbHit>, StoreError> {
        self.read(|c| kb::search(c, query, limit))
    }

    /// A blob stored with [`EvidenceWriter::put_blob`], by its hash.
    pub fn blob(&self, hash: &str) -> Result<Option<crate::Blob>, StoreError> {
        self.read(|c| crate::blobs::get(c, hash))
    }

    /// Up to `limit` blobs stored after row `after` (`0`: from the first), oldest first:
    /// (row, hash). For copying blobs elsewhere in the order they came.
    pub fn blobs_after(&self, after: i64, limit: usize) -> Result<Vec<(i64, String)>, StoreError> {
        self.read(|c| crate::blobs::after(c, after, limit))
    }

    /// Verify the log (see [`crate::verify()`]), on one of this store's read connections.
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        self.read(|c| verify_conn(c, &self.path))
    }

    /// Export a self-verifying bundle into `out_dir` (created if missing; refused if it
    /// already holds a bundle), then record an `export_made` event by `actor` at `at`.
    /// A damaged log is exported as it is; `report` says where it breaks.
    pub fn export(&self, out_dir: &Path, actor: &str, at: Timestamp) -> Result<ExportSummary, StoreError> {
        let (manifest, report) = self.read(|c| write_bundle(c, &self.path, out_dir, at))?;
        let event = self.writer.append(NewEvent {
            case_id: None,
            kind: EXPORT_MADE.into(),
            actor: actor.into(),
            at,
            payload: export_payload(out_dir, &manifest, report.ok),
        })?;
        Ok(ExportSummary { dir: out_dir.to_path_buf(), manifest, report, event })
    }

    /// Stop the writer after the commands already queued and wait for it.
    pub fn close(mut self) -> Result<(), StoreError> {
        self.stop_writer()
    }

    fn stop_writer(&mut self) -> Result<(), StoreError> {
        self.writer.shutdown();
        match self.thread.take().map(JoinHandle::join) {
            Some(Err(_)) => Err(StoreError::Closed),
            _ => Ok(()),
        }
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let pooled = self.readers.lock().map(|mut v| v.pop()).unwrap_or(None);
        let conn = match pooled {
            Some(c) => c,
            None => db::open_read(&self.path)?,
        };
        let out = f(&conn);
        if let Ok(mut idle) = self.readers.lock()
            && idle.len() < MAX_IDLE_READERS
        {
            idle.push(conn);
        }
        out
    }
}

/// core's `Event::ExportMade { path, count, head }`, plus whether the log verified as it
/// was exported.
fn export_payload(out_dir: &Path, manifest: &crate::BundleManifest, verified_ok: bool) -> serde_json::Value {
    let mut payload =
        Event::ExportMade { path: out_dir.display().to_string(), count: manifest.count, head: manifest.head.to_hex() }
            .payload();
    if let Some(map) = payload.as_object_mut() {
        map.insert("verified_ok".into(), verified_ok.into());
    }
    payload
}

impl Drop for Store {
    fn drop(&mut self) {
        // Nothing to report from a destructor; `close` is there for callers who care.
        let _ = self.stop_writer();
    }
}
