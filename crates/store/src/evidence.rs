//! Evidence events: what callers append, what they read back, and how a body is built.

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row, params_from_iter, types::Value as SqlValue};
use serde::{Deserialize, Serialize};

use crate::chain::Hash;
use crate::error::StoreError;

/// Largest canonical body the log accepts. Big artefacts (screenshots, page snapshots) are
/// stored as content-addressed blobs and referenced by hash, not inlined.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// The largest integer JSON can carry exactly (2^53). Canonical JSON writes numbers as
/// IEEE doubles, so a bigger integer would be silently rounded: the store refuses it.
const MAX_EXACT_INT: u64 = 1 << 53;

/// An event to append. The store assigns `seq` and the hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    pub case_id: Option<String>,
    /// Event kind, `snake_case` (`case_opened`, `step_finished`, `pause_changed`...).
    pub kind: String,
    /// Who caused it: an operator id, `system`, a planner name.
    pub actor: String,
    /// When it happened, as the caller's clock says (the store never reads the clock).
    pub at: Timestamp,
    /// Kind-specific data. Must already be redacted: the log is forever.
    pub payload: serde_json::Value,
}

impl NewEvent {
    /// An event from core's typed [`countersign_core::evidence::Event`]: its kind and payload.
    pub fn from_event(
        case_id: Option<String>,
        actor: impl Into<String>,
        at: Timestamp,
        event: &countersign_core::evidence::Event,
    ) -> NewEvent {
        NewEvent { case_id, kind: event.kind().into(), actor: actor.into(), at, payload: event.payload() }
    }
}

/// What an append committed: the event's place and hash. Returned only once durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Appended {
    pub seq: u64,
    pub hash: Hash,
}

/// The chain head: how many events the log holds and the hash of the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub count: u64,
    pub hash: Hash,
}

/// An event as stored. The fields are read from `body`, the exact bytes that were hashed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub seq: u64,
    pub at: Timestamp,
    pub case_id: Option<String>,
    pub kind: String,
    pub actor: String,
    pub payload: serde_json::Value,
    pub hash: Hash,
    /// The canonical JSON that was hashed.
    pub body: String,
}

impl StoredEvent {
    /// The event read back into core's typed [`countersign_core::evidence::Event`]: the
    /// one way out of the store for a payload, so nobody reads one by JSON path. An event
    /// this build does not know (another version wrote it, or someone edited the row) is
    /// [`StoreError::BadBody`], naming its seq.
    pub fn event(&self) -> Result<countersign_core::evidence::Event, StoreError> {
        countersign_core::evidence::Event::from_parts(&self.kind, &self.payload).map_err(|e| StoreError::BadBody {
            seq: self.seq,
            detail: format!("a {} event this build cannot read: {e}", self.kind),
        })
    }
}

/// Which events to list. All fields narrow the result; the default lists everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventFilter {
    pub case_id: Option<String>,
    pub kind: Option<String>,
    /// Only events with `seq > since_seq` (pass the last seq you saw to page forward).
    pub since_seq: Option<u64>,
    /// At most this many events, oldest first.
    pub limit: Option<usize>,
    /// Substring of the stored body (ASCII case-insensitive), e.g. an order id.
    pub text: Option<String>,
}

/// The hashed body, as written (borrowed; keys already in canonical order).
#[derive(Serialize)]
struct BodyOut<'a> {
    actor: &'a str,
    at: Timestamp,
    case_id: Option<&'a str>,
    kind: &'a str,
    payload: &'a serde_json::Value,
    seq: u64,
}

/// The hashed body, as read back.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BodyIn {
    actor: String,
    at: Timestamp,
    case_id: Option<String>,
    kind: String,
    payload: serde_json::Value,
    seq: u64,
}

/// Check an event can be stored faithfully and build its canonical body (what its hash
/// covers: see [`crate::chain`]).
pub fn canonical_body(seq: u64, ev: &NewEvent) -> Result<String, StoreError> {
    let invalid = |reason: String| Err(StoreError::InvalidEvent { reason });
    if ev.kind.is_empty()
        || ev.kind.len() > 64
        || !ev.kind.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return invalid(format!("kind {:?} must be 1-64 chars of [a-z0-9_]", ev.kind));
    }
    if ev.actor.trim().is_empty() {
        return invalid("actor must not be empty".into());
    }
    if let Some(path) = inexact_number(&ev.payload, &mut String::from("payload")) {
        return invalid(format!(
            "{path} is an integer beyond ±2^53, which canonical JSON cannot hold exactly; store it as a string"
        ));
    }
    let body = BodyOut {
        actor: &ev.actor,
        at: ev.at,
        case_id: ev.case_id.as_deref(),
        kind: &ev.kind,
        payload: &ev.payload,
        seq,
    };
    let text = serde_json_canonicalizer::to_string(&body)
        .map_err(|e| StoreError::InvalidEvent { reason: format!("cannot canonicalise: {e}") })?;
    if text.len() > MAX_BODY_BYTES {
        return invalid(format!("body is {} bytes, over the {MAX_BODY_BYTES} limit", text.len()));
    }
    Ok(text)
}

/// The path of the first integer JSON cannot represent exactly, if any.
fn inexact_number(v: &serde_json::Value, path: &mut String) -> Option<String> {
    match v {
        serde_json::Value::Number(n) => {
            let exact = n
                .as_u64()
                .map(|u| u <= MAX_EXACT_INT)
                .or_else(|| n.as_i64().map(|i| i.unsigned_abs() <= MAX_EXACT_INT));
            (exact == Some(false)).then(|| path.clone())
        }
        serde_json::Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            let found = inexact_number(item, path);
            path.truncate(len);
            found
        }),
        serde_json::Value::Object(map) => map.iter().find_map(|(k, item)| {
            let len = path.len();
            path.push('.');
            path.push_str(k);
            let found = inexact_number(item, path);
            path.truncate(len);
            found
        }),
        _ => None,
    }
}

pub(crate) fn parse_stored(seq: u64, body: String, hash: &[u8]) -> Result<StoredEvent, StoreError> {
    let bad = |detail: String| StoreError::BadBody { seq, detail };
    let hash = Hash::from_slice(hash).ok_or_else(|| bad("stored hash is not 32 bytes".into()))?;
    let b: BodyIn = serde_json::from_str(&body).map_err(|e| bad(e.to_string()))?;
    if b.seq != seq {
        return Err(bad(format!("body says seq {}", b.seq)));
    }
    Ok(StoredEvent { seq, at: b.at, case_id: b.case_id, kind: b.kind, actor: b.actor, payload: b.payload, hash, body })
}

fn row_event(row: &Row<'_>) -> rusqlite::Result<(u64, String, Vec<u8>)> {
    Ok((row.get::<_, i64>(0)?.unsigned_abs(), row.get(1)?, row.get(2)?))
}

pub(crate) fn list_events(conn: &Connection, f: &EventFilter) -> Result<Vec<StoredEvent>, StoreError> {
    let (sql, args) = select(f);
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), row_event)?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, body, hash) = row?;
        out.push(parse_stored(seq, body, &hash)?);
    }
    Ok(out)
}

/// The bodies of the events matching `f` as stored (the canonical JSON their hashes
/// cover), oldest first, unparsed: for a reader that types them itself in one pass.
pub(crate) fn list_bodies(conn: &Connection, f: &EventFilter) -> Result<Vec<(u64, String)>, StoreError> {
    let (sql, args) = select(f);
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), |r| Ok((r.get::<_, i64>(0)?.unsigned_abs(), r.get(1)?)))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// The query for the events matching `f`: `seq, body, hash`, oldest first.
fn select(f: &EventFilter) -> (String, Vec<SqlValue>) {
    let mut sql = String::from("SELECT seq, body, hash FROM evidence WHERE 1=1");
    let mut args: Vec<SqlValue> = Vec::new();
    if let Some(c) = &f.case_id {
        sql.push_str(" AND case_id = ?");
        args.push(SqlValue::Text(c.clone()));
    }
    if let Some(k) = &f.kind {
        sql.push_str(" AND kind = ?");
        args.push(SqlValue::Text(k.clone()));
    }
    if let Some(s) = f.since_seq {
        sql.push_str(" AND seq > ?");
        args.push(SqlValue::Integer(i64::try_from(s).unwrap_or(i64::MAX)));
    }
    if let Some(t) = &f.text {
        sql.push_str(r" AND body LIKE ? ESCAPE '\'");
        let escaped = t.replace('\\', r"\\").replace('%', r"\%").replace('_', r"\_");
        args.push(SqlValue::Text(format!("%{escaped}%")));
    }
    sql.push_str(" ORDER BY seq");
    if let Some(l) = f.limit {
        sql.push_str(" LIMIT ?");
        args.push(SqlValue::Integer(i64::try_from(l).unwrap_or(i64::MAX)));
    }
    (sql, args)
}

pub(crate) fn get_event(conn: &Connection, seq: u64) -> Result<Option<StoredEvent>, StoreError> {
    let Ok(seq_i) = i64::try_from(seq) else {
        return Ok(None);
    };
    let row = conn
        .prepare_cached("SELECT seq, body, hash FROM evidence WHERE seq = ?")?
        .query_row([seq_i], row_event)
        .optional()?;
    row.map(|(seq, body, hash)| parse_stored(seq, body, &hash)).transpose()
}

pub(crate) fn read_head(conn: &Connection) -> Result<Head, StoreError> {
    let (count, hash): (i64, Vec<u8>) = conn
        .prepare_cached("SELECT count, head FROM chain_head WHERE id = 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let hash = Hash::from_slice(&hash)
        .ok_or_else(|| StoreError::LogDamaged { detail: "the chain head hash is not 32 bytes".into() })?;
    Ok(Head { count: count.unsigned_abs(), hash })
}
