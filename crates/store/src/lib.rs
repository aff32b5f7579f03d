//! countersign-store: everything Countersign keeps on disk, in one SQLite file.
//!
//! # Architecture invariants
//!
//! - **Only this crate opens SQLite.** Other crates get typed values and [`StoreError`]s,
//!   never a connection or SQL.
//! - **The evidence log has exactly one writer.** [`Store::open`] starts one thread that owns
//!   the write connection; [`EvidenceWriter`] is a cheap handle that sends it commands over a
//!   channel. Appends, pause changes and `export_made` all pass through it, so the hash chain
//!   is extended strictly in order, and a pause row commits with its evidence event.
//! - **Every write is durable before it is acknowledged**: WAL with `synchronous=FULL`. The
//!   writer commits everything queued in one transaction (group commit), so many appenders
//!   share an fsync.
//! - **The store has no clock.** Every time is passed in.
//!
//! # The evidence chain
//!
//! Each event's body is the canonical JSON (RFC 8785) of
//! `{"actor","at","case_id","kind","payload","seq"}`; its hash is
//! `SHA-256(0x00 || previous hash || body)`, and the first event chains from the genesis
//! value `SHA-256("countersign/evidence/v1/genesis")`
//! (`0477f3b2c19228728287b426817d2c0ad98e1d9e781409706f389836bfdf753d`). A `chain_head` row
//! (count, last hash) is updated in the same transaction as every append, so cutting the
//! tail is detected. [`verify()`] names the first broken event; [`Store::export`] writes a
//! bundle that [`verify_bundle`] or its own `verify.py` re-checks.
//!
//! What the chain cannot prove on its own: someone with write access who rewrites the
//! events from some point on *and* the head row leaves a log that verifies. That is caught
//! only by a copy of the head kept elsewhere: signed `checkpoint` events (device key, a
//! later issue) or an exported bundle.
//!
//! # The knowledge index
//!
//! Articles and their passages (one per `## ` section) live in `kb_articles` and
//! `kb_passages`, with an external-content FTS5 index (`kb_fts`, bm25, snippets, English
//! stemming) kept in step by triggers. It is derived data: the engine parses the Markdown
//! and calls [`Store::kb_plan`] (which files changed, by content hash) and
//! [`Store::kb_apply`] (one transaction, on the writer thread). Search text is split into
//! words by [`query_terms`] and each word is quoted; it never goes straight into `MATCH`.
//!
//! # Extending
//!
//! - New tables or columns: add `migrations/NNNN_name.sql` and list it in `db.rs`. Never edit a
//!   shipped migration. Existing stores are backed up to `<db>.bak-<version>` first.
//! - New evidence kinds need no schema change: the payload is free JSON. Pick a `snake_case`
//!   kind and document its payload with the type that produces it.
//! - New writes that must be atomic with an event: add an `Op` to `writer.rs`.

mod blobs;
mod cases;
mod chain;
mod db;
mod error;
mod evidence;
mod export;
mod kb;
mod pause;
mod steps;
mod store;
mod verify;
mod writer;

pub use blobs::{Blob, MAX_BLOB_BYTES, blob_hash};
pub use cases::{CaseRevision, NewCaseRevision, content_hash};
pub use chain::{GENESIS_LABEL, Hash, check_event, check_link};
pub use db::{APPLICATION_ID, OpenInfo, SCHEMA_VERSION};
pub use error::StoreError;
pub use evidence::{Appended, EventFilter, Head, MAX_BODY_BYTES, NewEvent, StoredEvent, canonical_body};
pub use export::{BUNDLE_FORMAT, BundleManifest, EXPORT_MADE, ExportSummary, verify_bundle};
pub use kb::{
    COMMON_WORD_MIN_PASSAGES, KbApplied, KbArticle, KbChanges, KbFile, KbHit, KbIndexed, KbPassage, KbPlan,
    MAX_SEARCH_LIMIT, QueryTerm, SNIPPET_CLOSE, SNIPPET_OPEN, fts_query, query_terms,
};
pub use pause::{PAUSE_CHANGED, PauseCleared, PauseRecord};
pub use steps::{NewStep, PauseGuard, StepFilter, StepRecord, StepState, StepUpdate, Touching, Transition};
pub use store::Store;
pub use verify::{Broken, Problem, VerifyReport, verify};
pub use writer::EvidenceWriter;
