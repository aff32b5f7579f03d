//! The one error type of the store. Callers branch on the variant; the message is for people.

use std::path::PathBuf;

use jiff::Timestamp;

/// Everything that can go wrong in the store.
///
/// Bad input (a file that is not SQLite, a directory that cannot be written, an event that
/// cannot be stored faithfully) is reported here, never by a panic, and never after a
/// partial write: every write is one transaction.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The file exists but is not an SQLite database (or is encrypted).
    #[error("{path} is not an SQLite database")]
    NotADatabase { path: PathBuf },

    /// The file is an SQLite database, but not a Countersign store (it has other tables, or
    /// another application's id).
    #[error("{path} is an SQLite database but not a Countersign store: {reason}")]
    NotAStore { path: PathBuf, reason: String },

    /// SQLite reports the database file as damaged.
    #[error("{path} is corrupt: {detail}")]
    Corrupt { path: PathBuf, detail: String },

    /// The database (or its directory) could not be opened or created.
    #[error("cannot open {path}: {detail}")]
    CannotOpen { path: PathBuf, detail: String },

    /// The database or its directory is read-only, so nothing can be written.
    #[error("{path} is read-only")]
    ReadOnly { path: PathBuf },

    /// The disk is full; the transaction was rolled back.
    #[error("disk full while writing {path}")]
    DiskFull { path: PathBuf },

    /// The database was written by a newer Countersign: it has migrations this build does not know.
    #[error("{path} has schema version {found}, newer than this build's {supported}")]
    SchemaTooNew { path: PathBuf, found: usize, supported: usize },

    /// A migration failed; the database was left at its previous version (the backup, if
    /// one was made, is at `backup`).
    #[error("migrating {path} failed: {detail}")]
    Migration { path: PathBuf, detail: String, backup: Option<PathBuf> },

    /// A file system operation outside SQLite failed (backups, exports, bundles).
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Any other SQLite error.
    #[error("SQLite error: {0}")]
    Sqlite(#[from] rusqlite::Error),

    /// The evidence writer thread has stopped (the store was closed or dropped).
    #[error("the evidence writer is closed")]
    Closed,

    /// The event cannot be stored faithfully (empty kind, a number JSON cannot hold exactly...).
    #[error("invalid event: {reason}")]
    InvalidEvent { reason: String },

    /// A blob that cannot be stored (too large, no media type).
    #[error("invalid blob: {reason}")]
    InvalidBlob { reason: String },

    /// The log's tail does not match its chain head, so the writer refuses to extend a
    /// chain that no longer verifies. Run `verify` to find the first broken event.
    #[error("the evidence log is damaged ({detail}); refusing to append. Run verify.")]
    LogDamaged { detail: String },

    /// A stored event body could not be read back.
    #[error("event {seq} has an unreadable body: {detail}")]
    BadBody { seq: u64, detail: String },

    /// A pause with this id already exists (active or in history). Ids are never reused.
    #[error("pause {id} already exists")]
    PauseExists { id: String },

    /// No pause with this id was ever set.
    #[error("no pause {id}")]
    PauseNotFound { id: String },

    /// The pause was already cleared.
    #[error("pause {id} was already cleared at {cleared_at}")]
    PauseAlreadyCleared { id: String, cleared_at: Timestamp },

    /// A step with this plan and step id is already queued.
    #[error("step {step_id} of plan {plan_id} is already recorded")]
    StepExists { plan_id: String, step_id: String },

    /// No step with this plan and step id.
    #[error("no step {step_id} in plan {plan_id}")]
    StepNotFound { plan_id: String, step_id: String },

    /// The step is not in a state the change can start from (someone else got there first,
    /// or it already ran).
    #[error("step {step_id} of plan {plan_id} is {state}; it cannot become {wanted}")]
    StepConflict { plan_id: String, step_id: String, state: String, wanted: String },

    /// A case revision that is not the case's next one (another intake recorded it first).
    #[error("case {case_id} is at revision {current}; revision {revision} is not its next")]
    CaseRevisionConflict { case_id: String, revision: u32, current: u32 },

    /// The export directory already holds a bundle.
    #[error("{path} already contains an evidence bundle")]
    ExportTargetNotEmpty { path: PathBuf },

    /// Two knowledge article files declare the same id; the index keeps the first.
    #[error("{path}: article id {id} is already used by {other_path}")]
    KnowledgeIdTaken { id: String, path: String, other_path: String },

    /// An exported bundle is unusable as a whole (missing or malformed manifest). Damage to
    /// individual events is not an error: it is reported by `VerifyReport`.
    #[error("bundle {path} is invalid: {reason}")]
    BadBundle { path: PathBuf, reason: String },
}

impl StoreError {
    /// Classify an SQLite error for a database at `path`: the variants a caller can act on
    /// (not a database, corrupt, read-only, disk full, cannot open) are pulled out.
    pub(crate) fn from_sqlite(path: &std::path::Path, err: rusqlite::Error) -> StoreError {
        use rusqlite::ErrorCode;
        let path = path.to_path_buf();
        match err.sqlite_error_code() {
            Some(ErrorCode::NotADatabase) => StoreError::NotADatabase { path },
            Some(ErrorCode::DatabaseCorrupt) => StoreError::Corrupt { path, detail: err.to_string() },
            Some(ErrorCode::ReadOnly) => StoreError::ReadOnly { path },
            Some(ErrorCode::DiskFull) => StoreError::DiskFull { path },
            Some(ErrorCode::CannotOpen) | Some(ErrorCode::PermissionDenied) => {
                StoreError::CannotOpen { path, detail: err.to_string() }
            }
            _ => StoreError::Sqlite(err),
        }
    }

    /// A copy for each caller in a failed group commit (rusqlite errors are not `Clone`).
    pub(crate) fn duplicate(&self) -> StoreError {
        use StoreError as E;
        match self {
            E::NotADatabase { path } => E::NotADatabase { path: path.clone() },
            E::Corrupt { path, detail } => E::Corrupt { path: path.clone(), detail: detail.clone() },
            E::ReadOnly { path } => E::ReadOnly { path: path.clone() },
            E::DiskFull { path } => E::DiskFull { path: path.clone() },
            E::CannotOpen { path, detail } => E::CannotOpen { path: path.clone(), detail: detail.clone() },
            E::Sqlite(rusqlite::Error::SqliteFailure(code, msg)) => {
                E::Sqlite(rusqlite::Error::SqliteFailure(*code, msg.clone()))
            }
            E::Closed => E::Closed,
            E::LogDamaged { detail } => E::LogDamaged { detail: detail.clone() },
            other => E::Sqlite(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
                Some(other.to_string()),
            )),
        }
    }
}
