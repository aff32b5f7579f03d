//! `verify`: walk the log in seq order and name the first broken event.
//!
//! The check hashes the stored body bytes directly (no JSON parsing), reading the body's own
//! seq from its tail. What it catches, and what it cannot:
//!
//! - an edited body or hash → [`Problem::HashMismatch`] at that event;
//! - a deleted event → [`Problem::Gap`] at the missing seq (or [`Problem::Truncated`] at the
//!   end, because the chain head still counts it);
//! - events moved or swapped → [`Problem::Reordered`] where the wrong event sits;
//! - a chain head that disagrees with the events → [`Problem::HeadMismatch`].
//!
//! Someone with write access who rewrites the chain from some event onward *and* the head
//! row produces a log that verifies. Only a copy kept elsewhere catches that: a signed
//! checkpoint (a `checkpoint` event signed by the device key, planned) or an exported
//! bundle whose head was recorded outside this machine.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::chain::{ChainCheck, Hash};
use crate::error::StoreError;

/// The outcome of verifying a log or a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Events present.
    pub count: u64,
    /// The head the log claims (its chain-head row, or the bundle's manifest).
    pub head: Hash,
    /// Every event chains from genesis and the chain ends at `head` after `count` events.
    pub ok: bool,
    /// The first event that does not verify, if any.
    pub first_broken: Option<Broken>,
}

/// Where the log first breaks, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Broken {
    /// The seq of the first event that is not as it was written (or is missing).
    pub seq: u64,
    pub problem: Problem,
}

/// What was found at the first broken event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    /// The stored hash is not `SHA-256(0x00 || previous hash || body)`: the body or the
    /// hash was edited.
    HashMismatch,
    /// The event at this place says it is `found_seq`: events were moved or swapped.
    Reordered { found_seq: u64 },
    /// This event is missing (deleted); `next_seq` is the next one present.
    Gap { next_seq: u64 },
    /// The head says `expected_count` events but only `found` are present: the tail was cut.
    Truncated { expected_count: u64, found: u64 },
    /// The events verify but do not end where the head says (wrong head hash, or events
    /// beyond the head's count).
    HeadMismatch { detail: String },
    /// The stored event cannot be read as a canonical body with a 32-byte hash.
    BadBody { reason: String },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::HashMismatch => f.write_str("hash mismatch (the event was edited)"),
            Problem::Reordered { found_seq } => {
                write!(f, "reordered (event {found_seq} is in its place)")
            }
            Problem::Gap { next_seq } => {
                write!(f, "missing (deleted; the next event present is {next_seq})")
            }
            Problem::Truncated { expected_count, found } => {
                write!(f, "truncated (the head says {expected_count} events, found {found})")
            }
            Problem::HeadMismatch { detail } => write!(f, "head mismatch ({detail})"),
            Problem::BadBody { reason } => write!(f, "unreadable event ({reason})"),
        }
    }
}

/// Verify the evidence log of the store at `path`. Opens its own read-only connection and
/// reads one consistent snapshot, so it can run while the app keeps appending.
pub fn verify(path: &Path) -> Result<VerifyReport, StoreError> {
    let conn = crate::db::open_read(path)?;
    verify_conn(&conn, path)
}

pub(crate) fn verify_conn(conn: &Connection, path: &Path) -> Result<VerifyReport, StoreError> {
    scan(conn, path, |_, _| Ok(()), true).map(|(report, _)| report)
}

/// Walk every event in seq order inside one read transaction, checking the chain and
/// handing each stored `(body, hash)` to `sink`. With `stop_at_break`, stop at the first
/// broken event (verify); without, keep feeding `sink` (export). Also returns the count
/// the chain head claims.
pub(crate) fn scan(
    conn: &Connection,
    path: &Path,
    mut sink: impl FnMut(&[u8], &[u8]) -> Result<(), StoreError>,
    stop_at_break: bool,
) -> Result<(VerifyReport, u64), StoreError> {
    let sql_err = |e| StoreError::from_sqlite(path, e);
    let tx = conn.unchecked_transaction().map_err(sql_err)?;
    let head_row: Option<(i64, Vec<u8>)> = tx
        .query_row("SELECT count, head FROM chain_head WHERE id = 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(sql_err)?;

    let mut check = ChainCheck::new();
    let mut first_broken: Option<Broken> = None;
    let mut found = 0u64;
    {
        let mut stmt = tx.prepare("SELECT seq, body, hash FROM evidence ORDER BY seq").map_err(sql_err)?;
        let mut rows = stmt.query([]).map_err(sql_err)?;
        while let Some(row) = rows.next().map_err(sql_err)? {
            found += 1;
            let seq = row.get_ref(0).map_err(sql_err)?.as_i64().unwrap_or(-1);
            let body = row.get_ref(1).map_err(sql_err)?.as_bytes().unwrap_or_default();
            let hash = row.get_ref(2).map_err(sql_err)?.as_bytes().unwrap_or_default();
            sink(body, hash)?;
            if first_broken.is_some() {
                continue;
            }
            let result = if u64::try_from(seq).ok() != Some(check.next) {
                Err(Broken { seq: check.next, problem: Problem::Gap { next_seq: seq.unsigned_abs() } })
            } else {
                check.check(body, hash)
            };
            if let Err(b) = result {
                first_broken = Some(b);
                if stop_at_break {
                    break;
                }
            }
        }
    }
    if first_broken.is_some() && stop_at_break {
        found =
            tx.query_row("SELECT count(*) FROM evidence", [], |r| r.get::<_, i64>(0)).map_err(sql_err)?.unsigned_abs();
    }
    let claimed = head_row.map(|(count, hash)| (count.unsigned_abs(), Hash::from_slice(&hash)));
    let claimed_count = claimed.map_or(found, |(count, _)| count);
    Ok((finish(check, found, first_broken, claimed), claimed_count))
}

/// Compare the walked chain with the head it should end at; build the report.
pub(crate) fn finish(
    check: ChainCheck,
    found: u64,
    first_broken: Option<Broken>,
    claimed: Option<(u64, Option<Hash>)>,
) -> VerifyReport {
    let head = claimed.and_then(|(_, h)| h).unwrap_or_else(Hash::genesis);
    let first_broken = first_broken.or_else(|| {
        let mismatch = |seq: u64, detail: &str| {
            Some(Broken { seq: seq.max(1), problem: Problem::HeadMismatch { detail: detail.into() } })
        };
        match claimed {
            None => mismatch(found, "the chain head is missing"),
            Some((_, None)) => mismatch(found, "the chain head hash is not 32 bytes"),
            Some((count, _)) if count > found => {
                Some(Broken { seq: found + 1, problem: Problem::Truncated { expected_count: count, found } })
            }
            Some((count, _)) if count < found => mismatch(count + 1, "events beyond the head's count"),
            Some((_, Some(h))) if h != check.prev => mismatch(found, "the last event is not the head"),
            Some(_) => None,
        }
    });
    VerifyReport { count: found, head, ok: first_broken.is_none(), first_broken }
}
