//! Where a workspace's data lives: one rule for every face.
//!
//! A **data root** holds one folder per workspace, named by the workspace's id:
//! `ROOT/<workspace id>/` (the evidence log, the demo store's database, browser profiles,
//! the last good policy pack, exports). The root is `--data-dir` when a face is given
//! one, else `$COUNTERSIGN_DATA_DIR`, else `countersign/` in the user's data directory
//! (`~/.local/share/countersign` on Linux). The desktop app and the command line resolve
//! it the same way, so a pause set with `countersign pause set` stops the app, and
//! `countersign log verify` reads the app's log.
//!
//! Earlier versions had two rules: the command line kept a workspace's files directly in
//! `--data-dir` / `$COUNTERSIGN_DATA_DIR`, and the desktop app defaulted to its own
//! folder (`app.countersign.desktop/<workspace id>`). At the first start under this rule
//! such a folder is found and moved into place ([`adopt`]), its log intact (files are
//! renamed, never rewritten) and the move recorded in the evidence.

use std::path::{Path, PathBuf};

use countersign_engine::EngineError;

/// The evidence log's file in a workspace's data folder.
const EVIDENCE: &str = "evidence.sqlite";

/// What a workspace's data folder holds, by name: what moves when an earlier folder is
/// adopted (anything else there is left alone).
const WORKSPACE_FILES: &[&str] = &[
    "evidence.sqlite",
    "evidence.sqlite-wal",
    "evidence.sqlite-shm",
    "demo-store.sqlite3",
    "demo-store.sqlite3-wal",
    "demo-store.sqlite3-shm",
    "pack",
    "browser-profiles",
    "exports",
];

/// The desktop app's own data folder in earlier versions (its Tauri identifier).
const EARLIER_APP_FOLDER: &str = "app.countersign.desktop";

/// Where every workspace's data folder lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRoot {
    path: PathBuf,
    /// Named by the person (`--data-dir`, `$COUNTERSIGN_DATA_DIR`): the command line once
    /// kept a workspace's files directly in it.
    named: bool,
    /// The desktop app's earlier default root, looked in when the root is the default.
    earlier_app: Option<PathBuf>,
}

/// A data folder moved into place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub from: PathBuf,
    pub to: PathBuf,
}

/// What [`adopt`] did.
#[derive(Debug, Default)]
pub struct Adoption {
    pub moved: Option<Moved>,
    pub left_behind: Option<PathBuf>,
}

impl DataRoot {
    /// The one rule: `flag` (a face's `--data-dir`), else `$COUNTERSIGN_DATA_DIR`, else
    /// `countersign/` in the user's data directory.
    pub fn resolve(flag: Option<PathBuf>) -> Result<DataRoot, EngineError> {
        if let Some(path) = flag.or_else(|| std::env::var_os("COUNTERSIGN_DATA_DIR").map(PathBuf::from)) {
            return Ok(DataRoot::named(path));
        }
        let base = dirs::data_dir().ok_or_else(|| EngineError::Config {
            message: "no user data directory (is $HOME set?): give one with --data-dir or $COUNTERSIGN_DATA_DIR".into(),
        })?;
        Ok(DataRoot { path: base.join("countersign"), named: false, earlier_app: Some(base.join(EARLIER_APP_FOLDER)) })
    }

    /// A root a person named.
    pub fn named(path: impl Into<PathBuf>) -> DataRoot {
        DataRoot { path: path.into(), named: true, earlier_app: None }
    }

    /// The default root at `path`, with the desktop app's earlier default root at
    /// `earlier_app` (what [`DataRoot::resolve`] finds in the user's data directory).
    pub fn default_at(path: impl Into<PathBuf>, earlier_app: impl Into<PathBuf>) -> DataRoot {
        DataRoot { path: path.into(), named: false, earlier_app: Some(earlier_app.into()) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The data folder of workspace `id`: `ROOT/<id>`, or the named folder itself when it
    /// is that workspace's folder already (named after it and holding its log, as the
    /// command line once had people point `--data-dir` at a workspace's folder).
    pub fn workspace_dir(&self, id: &str) -> PathBuf {
        let own = self.named
            && self.path.file_name().is_some_and(|n| n == id)
            && has_log(&self.path)
            && !has_log(&self.path.join(id));
        if own { self.path.clone() } else { self.path.join(id) }
    }
}

fn has_log(dir: &Path) -> bool {
    dir.join(EVIDENCE).is_file()
}

fn io(path: &Path, e: std::io::Error) -> EngineError {
    EngineError::io(path, e)
}

/// Left in a moved folder until its move is recorded in the evidence (the move itself
/// happens before the engine can open the log).
pub const MOVED_FROM: &str = "moved-from";

/// Whose an earlier version's flat folder is: the workspace's if its log ran under this
/// workspace's policy (a workspace on a signed pack cannot be told apart this way).
pub type Owner<'a> = &'a dyn Fn(&Path) -> Result<bool, EngineError>;

/// Before workspace `id` opens, find a log an earlier version kept elsewhere and move it
/// into place. Files are renamed, never rewritten, so the chain still verifies; a note
/// ([`MOVED_FROM`]) goes with them until the host records the move in the evidence.
///
/// - The command line kept a workspace's files directly in a named folder. When that
///   folder is named after the workspace it is this workspace's folder already, and is
///   used in place. Otherwise its files move into `ROOT/<id>/` only if `owner` says the
///   log is this workspace's; else they stay and are reported as left behind.
/// - The desktop app kept `app.countersign.desktop/<id>/`: moved whole, in one rename.
///
/// When the workspace's folder already has a log, nothing moves (two chains are never
/// merged) and the other folder is reported as left behind. Adoption holds an exclusive
/// lock in the root, and a move interrupted half-way (files staged in `ROOT/.<id>.moving`)
/// is finished at the next start, so no file of a log is ever separated from the rest.
pub fn adopt(root: &DataRoot, id: &str, owner: Owner<'_>) -> Result<Adoption, EngineError> {
    std::fs::create_dir_all(&root.path).map_err(|e| io(&root.path, e))?;
    let lock_path = root.path.join(".adopting.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| io(&lock_path, e))?;
    lock.lock().map_err(|e| io(&lock_path, e))?;
    let dir = root.workspace_dir(id);
    let staging = root.path.join(format!(".{id}.moving"));
    if staging.is_dir() {
        // A move cut short: finish it (the earlier folder still holds what was not staged).
        return stage_and_move(&root.path, &staging, &dir).map(|m| Adoption { moved: Some(m), left_behind: None });
    }
    let earlier_cli = root.named.then(|| root.path.clone()).filter(|p| *p != dir && has_log(p));
    let earlier_app = root.earlier_app.as_ref().map(|p| p.join(id)).filter(|p| has_log(p));
    if has_log(&dir) {
        return Ok(Adoption { moved: None, left_behind: earlier_cli.or(earlier_app) });
    }
    if let Some(from) = earlier_cli {
        if !owner(&from)? {
            return Ok(Adoption { moved: None, left_behind: Some(from) });
        }
        std::fs::create_dir_all(&staging).map_err(|e| io(&staging, e))?;
        return stage_and_move(&from, &staging, &dir).map(|m| Adoption { moved: Some(m), left_behind: None });
    }
    if let Some(from) = earlier_app {
        std::fs::write(from.join(MOVED_FROM), from.display().to_string()).map_err(|e| io(&from, e))?;
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        // An empty folder left by an earlier start is in the way of the rename.
        if dir.is_dir() {
            std::fs::remove_dir(&dir).map_err(|e| EngineError::Config {
                message: format!(
                    "{} is in the way of moving {} there ({e}); move its contents away, then start again",
                    dir.display(),
                    from.display()
                ),
            })?;
        }
        std::fs::rename(&from, &dir).map_err(|e| EngineError::Config {
            message: format!(
                "cannot move the data folder {} to {}: {e}; move it there by hand, then start again",
                from.display(),
                dir.display()
            ),
        })?;
        return Ok(Adoption { moved: Some(Moved { from, to: dir }), left_behind: None });
    }
    Ok(Adoption::default())
}

/// Rename the workspace files still in `from` into `staging` (the log's own files last,
/// so a retry always finds them together on one side), write the note, then rename
/// `staging` to `dir` in one step.
fn stage_and_move(from: &Path, staging: &Path, dir: &Path) -> Result<Moved, EngineError> {
    let note = staging.join(MOVED_FROM);
    if !note.exists() {
        std::fs::write(&note, from.display().to_string()).map_err(|e| io(&note, e))?;
    }
    let recorded_from = std::fs::read_to_string(&note).map(PathBuf::from).map_err(|e| io(&note, e))?;
    for name in WORKSPACE_FILES.iter().rev() {
        let old = recorded_from.join(name);
        if old.exists() {
            let new = staging.join(name);
            std::fs::rename(&old, &new).map_err(|e| io(&old, e))?;
        }
    }
    if dir.is_dir() {
        std::fs::remove_dir(dir).map_err(|e| EngineError::Config {
            message: format!("{} is in the way of the data moved from {}: {e}", dir.display(), recorded_from.display()),
        })?;
    }
    std::fs::rename(staging, dir).map_err(|e| io(staging, e))?;
    Ok(Moved { from: recorded_from, to: dir.to_path_buf() })
}
