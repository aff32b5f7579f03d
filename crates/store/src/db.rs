//! Opening SQLite: pragmas, the schema check, migrations and the backup taken before them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use rusqlite_migration::{M, Migrations};

use crate::error::StoreError;

/// `PRAGMA application_id` of a Countersign store: "CSGN". Set by migration 0001.
pub const APPLICATION_ID: i32 = 0x4353_474E;

/// How long a connection waits on another's lock before reporting `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Page cache of the write connection, in KiB (negative `cache_size` means KiB).
const WRITER_CACHE_KIB: i64 = -32 * 1024;

/// The migrations, in order. Append-only: never edit a shipped file, add a new one.
static MIGRATIONS: &[M<'static>] = &[
    M::up(include_str!("../migrations/0001_evidence.sql")),
    M::up(include_str!("../migrations/0002_pauses.sql")),
    M::up(include_str!("../migrations/0003_steps.sql")),
    M::up(include_str!("../migrations/0004_knowledge.sql")),
    M::up(include_str!("../migrations/0005_blobs.sql")),
    M::up(include_str!("../migrations/0006_cases.sql")),
    M::up(include_str!("../migrations/0007_team_pauses.sql")),
    M::up(include_str!("../migrations/0008_step_orders.sql")),
    M::up(include_str!("../migrations/0009_evidence_by_case_kind.sql")),
];

/// The schema version this build writes (the number of migrations).
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// What opening a store did to the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenInfo {
    /// The file did not exist (or was empty) and was created.
    pub created: bool,
    /// Schema version before opening (0 for a new file).
    pub from_version: usize,
    /// Schema version now ([`SCHEMA_VERSION`]).
    pub to_version: usize,
    /// Where the pre-migration backup was written, if migrations ran on an existing store.
    pub backup: Option<PathBuf>,
}

/// Open (creating if needed) the write connection, check the file is ours, back it up and
/// migrate it. Pragmas: WAL, `synchronous=FULL`, `foreign_keys=ON`, `busy_timeout`.
pub(crate) fn open_write(path: &Path) -> Result<(Connection, OpenInfo), StoreError> {
    let sql_err = |e| StoreError::from_sqlite(path, e);
    let existed = std::fs::metadata(path).map(|m| m.len() > 0).unwrap_or(false);
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags).map_err(sql_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sql_err)?;
    let from_version = check_ours(&conn, path)?;

    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(sql_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::CannotOpen {
            path: path.to_path_buf(),
            detail: format!("the WAL journal is not available here (journal_mode is {mode})"),
        });
    }
    conn.pragma_update(None, "synchronous", "FULL").map_err(sql_err)?;
    conn.pragma_update(None, "foreign_keys", true).map_err(sql_err)?;
    // Statement journals (savepoints, triggers) in memory, not in temp files: the bundled
    // SQLite defaults to files. 2 = MEMORY (the quoted name is not accepted here).
    conn.pragma_update(None, "temp_store", 2).map_err(sql_err)?;
    // Index pages for case and kind are touched at random as the log grows; a bigger page
    // cache (a cap, not an allocation) keeps big batches from spilling and re-reading them.
    conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB).map_err(sql_err)?;

    let migrations = Migrations::from_slice(MIGRATIONS);
    if from_version > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            path: path.to_path_buf(),
            found: from_version,
            supported: SCHEMA_VERSION,
        });
    }
    let mut backup = None;
    if from_version > 0 && from_version < SCHEMA_VERSION {
        backup = Some(backup_before_migrating(&conn, path, from_version)?);
    }
    if from_version < SCHEMA_VERSION {
        migrations.to_latest(&mut conn).map_err(|e| migration_error(path, e, backup.clone()))?;
    }
    Ok((conn, OpenInfo { created: !existed, from_version, to_version: SCHEMA_VERSION, backup }))
}

/// Open a connection for reading an existing store; it cannot write (`query_only`).
pub(crate) fn open_read(path: &Path) -> Result<Connection, StoreError> {
    let sql_err = |e| StoreError::from_sqlite(path, e);
    if !path.exists() {
        return Err(StoreError::CannotOpen { path: path.to_path_buf(), detail: "no such file".into() });
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = match Connection::open_with_flags(path, flags) {
        Ok(c) => c,
        // A write-protected file can still be verified.
        Err(_) => Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .map_err(sql_err)?,
    };
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sql_err)?;
    conn.pragma_update(None, "query_only", true).map_err(sql_err)?;
    let version = check_ours(&conn, path)?;
    if version == 0 {
        return Err(StoreError::NotAStore { path: path.to_path_buf(), reason: "it has no Countersign schema".into() });
    }
    Ok(conn)
}

/// Is the file a database, and ours (or empty)? Returns its schema version.
fn check_ours(conn: &Connection, path: &Path) -> Result<usize, StoreError> {
    let sql_err = |e| StoreError::from_sqlite(path, e);
    // The first real read is where SQLite notices a file that is not a database.
    let objects: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema WHERE name NOT LIKE 'sqlite_%'", [], |r| r.get(0))
        .map_err(sql_err)?;
    let app_id: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0)).map_err(sql_err)?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(sql_err)?;
    let not_ours = |reason: String| Err(StoreError::NotAStore { path: path.to_path_buf(), reason });
    if app_id != 0 && app_id != APPLICATION_ID {
        return not_ours(format!("its application_id is {app_id:#x}"));
    }
    if version == 0 && objects > 0 {
        return not_ours(format!("it has {objects} tables or indexes but no Countersign schema"));
    }
    if version > 0 && app_id != APPLICATION_ID {
        return not_ours(format!("it has schema version {version} but no Countersign application_id"));
    }
    usize::try_from(version).or_else(|_| not_ours(format!("negative schema version {version}")))
}

/// Copy the database to `<db>.bak-<version>` (or `.bak-<version>.<n>` if that exists) with
/// SQLite's online backup API, so a failed or regretted migration can be undone.
fn backup_before_migrating(conn: &Connection, path: &Path, version: usize) -> Result<PathBuf, StoreError> {
    let mut target = PathBuf::from(format!("{}.bak-{version}", path.display()));
    let mut n = 1;
    while target.exists() {
        n += 1;
        target = PathBuf::from(format!("{}.bak-{version}.{n}", path.display()));
    }
    conn.backup(rusqlite::MAIN_DB, &target, None).map_err(|e| StoreError::from_sqlite(&target, e))?;
    Ok(target)
}

fn migration_error(path: &Path, err: rusqlite_migration::Error, backup: Option<PathBuf>) -> StoreError {
    match err {
        rusqlite_migration::Error::RusqliteError { err, .. } => match StoreError::from_sqlite(path, err) {
            StoreError::Sqlite(e) => StoreError::Migration { path: path.to_path_buf(), detail: e.to_string(), backup },
            classified => classified,
        },
        other => StoreError::Migration { path: path.to_path_buf(), detail: other.to_string(), backup },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_write_connection_has_the_durability_pragmas() {
        let dir = tempfile::TempDir::new().unwrap();
        let (conn, _) = open_write(&dir.path().join("p.db")).unwrap();
        let get = |p: &str| -> String {
            conn.query_row(&format!("PRAGMA {p}"), [], |r| r.get::<_, rusqlite::types::Value>(0))
                .map(|v| match v {
                    rusqlite::types::Value::Integer(i) => i.to_string(),
                    rusqlite::types::Value::Text(t) => t,
                    other => format!("{other:?}"),
                })
                .unwrap()
        };
        assert_eq!(get("journal_mode"), "wal");
        assert_eq!(get("synchronous"), "2", "FULL: a commit is durable when it returns");
        assert_eq!(get("foreign_keys"), "1");
        assert_eq!(get("busy_timeout"), "5000");
        assert_eq!(get("temp_store"), "2", "statement journals in memory");
        assert_eq!(get("application_id"), APPLICATION_ID.to_string());
        assert_eq!(get("user_version"), SCHEMA_VERSION.to_string());
    }
}
