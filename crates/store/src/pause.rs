//! Pause switches: stored rows plus the `pause_changed` evidence event of every change.
//! Changes go through the [`crate::EvidenceWriter`]; this module holds the reads and the
//! payload shapes.

use countersign_core::evidence::{Event, PauseChange};
use countersign_core::model::{Pause, PauseScope};
use countersign_core::team::SignedEntry;
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// The evidence kind recorded for every set and clear.
pub const PAUSE_CHANGED: &str = "pause_changed";

/// A pause as kept in history: when it was set, and whether and how it was cleared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PauseRecord {
    pub pause: Pause,
    /// Seq of the `pause_changed` event that set it.
    pub set_seq: u64,
    pub cleared: Option<PauseCleared>,
}

/// How a pause was cleared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PauseCleared {
    pub by: String,
    pub at: Timestamp,
    pub reason: String,
    /// Seq of the `pause_changed` event that cleared it.
    pub seq: u64,
}

pub(crate) fn validate(p: &Pause) -> Result<(), StoreError> {
    for (name, v) in [("id", &p.id), ("value", &p.value), ("reason", &p.reason), ("set_by", &p.set_by)] {
        if v.trim().is_empty() {
            return Err(StoreError::InvalidEvent { reason: format!("pause {name} must not be empty") });
        }
    }
    Ok(())
}

/// The payload of core's `Event::PauseChanged { change: set, pause }`.
pub(crate) fn set_payload(p: &Pause, signed: Option<SignedEntry>) -> serde_json::Value {
    Event::PauseChanged { change: PauseChange::Set, pause: p.clone(), reason: None, signed }.payload()
}

/// core's `Event::PauseChanged { change: cleared, pause, reason }` (the pause as it was set and
/// the clearing reason); who cleared it and when are the event's actor and time.
pub(crate) fn clear_payload(p: &Pause, reason: &str, signed: Option<SignedEntry>) -> serde_json::Value {
    Event::PauseChanged { change: PauseChange::Cleared, pause: p.clone(), reason: Some(reason.to_owned()), signed }
        .payload()
}

const COLUMNS: &str =
    "id, scope, value, reason, set_by, set_at, set_seq, cleared_by, cleared_at, cleared_reason, cleared_seq, team";

fn bad(id: &str, what: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, format!("pause {id}: bad {what}").into())
}

fn row_record(r: &Row<'_>) -> rusqlite::Result<PauseRecord> {
    let id: String = r.get(0)?;
    let scope: String = r.get(1)?;
    let scope = PauseScope::parse(&scope).ok_or_else(|| bad(&id, "scope"))?;
    let ts = |s: String| s.parse::<Timestamp>().map_err(|_| bad(&id, "timestamp"));
    let set_at = ts(r.get(5)?)?;
    let cleared = match r.get::<_, Option<String>>(7)? {
        None => None,
        Some(by) => {
            Some(PauseCleared { by, at: ts(r.get(8)?)?, reason: r.get(9)?, seq: r.get::<_, i64>(10)?.unsigned_abs() })
        }
    };
    Ok(PauseRecord {
        pause: Pause {
            id: id.clone(),
            scope,
            value: r.get(2)?,
            reason: r.get(3)?,
            set_by: r.get(4)?,
            set_at,
            team: r.get(11)?,
        },
        set_seq: r.get::<_, i64>(6)?.unsigned_abs(),
        cleared,
    })
}

pub(crate) fn get(conn: &Connection, id: &str) -> Result<Option<PauseRecord>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM pauses WHERE id = ?"))?
        .query_row([id], row_record)
        .optional()?)
}

pub(crate) fn active(conn: &Connection) -> Result<Vec<Pause>, StoreError> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM pauses WHERE cleared_seq IS NULL ORDER BY set_seq"))?;
    let rows = stmt.query_map([], row_record)?;
    Ok(rows.map(|r| r.map(|rec| rec.pause)).collect::<Result<_, _>>()?)
}

pub(crate) fn history(conn: &Connection) -> Result<Vec<PauseRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM pauses ORDER BY set_seq"))?;
    let rows = stmt.query_map([], row_record)?;
    Ok(rows.collect::<Result<_, _>>()?)
}
