//! Content-addressed blobs: screenshots and page snapshots that evidence events name by
//! their SHA-256. Stored once however often they are named; read back by hash.

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::error::StoreError;

/// The largest blob accepted (a full-page screenshot is well under this).
pub const MAX_BLOB_BYTES: usize = 32 * 1024 * 1024;

/// A stored blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub hash: String,
    pub media_type: String,
    pub data: Vec<u8>,
}

/// The name a blob is stored under: lower-case hex SHA-256 of its bytes.
pub fn blob_hash(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

pub(crate) fn check(media_type: &str, data: &[u8]) -> Result<(), StoreError> {
    if data.len() > MAX_BLOB_BYTES {
        return Err(StoreError::InvalidBlob {
            reason: format!("{} bytes is larger than the {MAX_BLOB_BYTES} accepted", data.len()),
        });
    }
    let ok = !media_type.is_empty()
        && media_type.len() <= 100
        && media_type.bytes().all(|b| b.is_ascii_graphic())
        && media_type.contains('/');
    if !ok {
        return Err(StoreError::InvalidBlob { reason: format!("{media_type:?} is not a media type") });
    }
    Ok(())
}

/// Insert (or find) a blob; returns its hash.
pub(crate) fn put(conn: &Connection, media_type: &str, data: &[u8], at: &str) -> rusqlite::Result<String> {
    let hash = blob_hash(data);
    let size = i64::try_from(data.len()).unwrap_or(i64::MAX);
    conn.execute(
        "INSERT INTO blobs (hash, media_type, size, data, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (hash) DO NOTHING",
        params![hash, media_type, size, data, at],
    )?;
    Ok(hash)
}

pub(crate) fn get(conn: &Connection, hash: &str) -> Result<Option<Blob>, StoreError> {
    let found = conn
        .query_row("SELECT media_type, data FROM blobs WHERE hash = ?1", params![hash], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
        })
        .optional()?;
    Ok(found.map(|(media_type, data)| Blob { hash: hash.to_owned(), media_type, data }))
}

/// Up to `limit` blobs stored after the row `after` (a cursor: `0` from the start), oldest
/// first: their row and hash.
pub(crate) fn after(conn: &Connection, after: i64, limit: usize) -> Result<Vec<(i64, String)>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT rowid, hash FROM blobs WHERE rowid > ?1 ORDER BY rowid LIMIT ?2")?;
    let rows =
        stmt.query_map(params![after, i64::try_from(limit).unwrap_or(i64::MAX)], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
