//! Cases received from sources: their revisions (each committed with its `case_received`
//! event) and where each source's change listing stands.

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::evidence::NewEvent;

/// A revision to record: `revision` must be the case's next one (1 for a new case), or the
/// write is refused with [`StoreError::CaseRevisionConflict`].
#[derive(Debug, Clone)]
pub struct NewCaseRevision {
    pub case_id: String,
    pub revision: u32,
    pub source: String,
    pub conversation_id: String,
    /// `open`, `waiting` or `resolved`.
    pub state: String,
    /// The case as JSON (core's `Case`).
    pub case_json: String,
    /// The `case_received` event recorded with it.
    pub event: NewEvent,
}

/// A case revision as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseRevision {
    pub case_id: String,
    pub revision: u32,
    pub source: String,
    pub conversation_id: String,
    pub state: String,
    pub content_hash: String,
    pub case_json: String,
    pub received_at: Timestamp,
    pub seq: u64,
}

/// SHA-256 (hex) of a case's JSON: what decides whether a read makes a new revision.
pub fn content_hash(case_json: &str) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(case_json.as_bytes()))
}

const COLUMNS: &str = "case_id, revision, source, conversation_id, state, content_hash, case_json, received_at, seq";

fn row(r: &Row<'_>) -> rusqlite::Result<CaseRevision> {
    let at: String = r.get(7)?;
    Ok(CaseRevision {
        case_id: r.get(0)?,
        revision: r.get(1)?,
        source: r.get(2)?,
        conversation_id: r.get(3)?,
        state: r.get(4)?,
        content_hash: r.get(5)?,
        case_json: r.get(6)?,
        received_at: at.parse().map_err(|_| {
            rusqlite::Error::FromSqlConversionFailure(7, rusqlite::types::Type::Text, "bad timestamp".into())
        })?,
        seq: r.get::<_, i64>(8)?.unsigned_abs(),
    })
}

/// The latest revision of every received case, oldest case first.
pub(crate) fn latest(conn: &Connection) -> Result<Vec<CaseRevision>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM case_revisions r
         WHERE revision = (SELECT MAX(revision) FROM case_revisions WHERE case_id = r.case_id)
         ORDER BY (SELECT MIN(seq) FROM case_revisions WHERE case_id = r.case_id)"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([], row)?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// The latest revision of one case.
pub(crate) fn latest_of(conn: &Connection, case_id: &str) -> Result<Option<CaseRevision>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM case_revisions WHERE case_id = ? ORDER BY revision DESC LIMIT 1");
    Ok(conn.prepare_cached(&sql)?.query_row([case_id], row).optional()?)
}

pub(crate) fn cursor(conn: &Connection, source: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT cursor FROM source_cursors WHERE source = ?")?
        .query_row([source], |r| r.get(0))
        .optional()?)
}

/// Check that `new` is the case's next revision (inside the writer's transaction).
pub(crate) fn check_next(conn: &Connection, new: &NewCaseRevision) -> Result<(), StoreError> {
    let current: u32 = conn
        .prepare_cached("SELECT COALESCE(MAX(revision), 0) FROM case_revisions WHERE case_id = ?")?
        .query_row([&new.case_id], |r| r.get(0))?;
    if new.revision != current + 1 {
        return Err(StoreError::CaseRevisionConflict { case_id: new.case_id.clone(), revision: new.revision, current });
    }
    Ok(())
}

pub(crate) fn insert(conn: &Connection, new: &NewCaseRevision, seq: u64) -> Result<(), StoreError> {
    conn.prepare_cached(&format!("INSERT INTO case_revisions ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"))?
        .execute(params![
            new.case_id,
            new.revision,
            new.source,
            new.conversation_id,
            new.state,
            content_hash(&new.case_json),
            new.case_json,
            new.event.at.to_string(),
            crate::writer::seq_sql(seq),
        ])?;
    Ok(())
}

pub(crate) fn set_cursor(conn: &Connection, source: &str, cursor: &str, at: Timestamp) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO source_cursors (source, cursor, updated_at) VALUES (?, ?, ?)
         ON CONFLICT (source) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
    )?
    .execute(params![source, cursor, at.to_string()])?;
    Ok(())
}
