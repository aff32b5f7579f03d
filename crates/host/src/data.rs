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

    /// The data folder of workspace `id`.
    pub fn workspace_dir(&self, id: &str) -> PathBuf {
        self.path.join(id)
    }
}

fn has_log(dir: &Path) -> bool {
    dir.join(EVIDENCE).is_file()
}

fn io(path: &Path, e: std::io::Error) -> EngineError {
    EngineError::io(path, e)
}

/// Before workspace `id` opens: if its data folder has no log yet but an earlier rule's
/// folder has one, move that folder's workspace files into place (by rename: the log's
/// bytes never change, so its chain still verifies). When both have a log, nothing moves
/// (two chains cannot be merged) and the earlier folder is reported as left behind.
///
/// Under the command line's earlier rule a named folder held one set of files whatever
/// the workspace, so the first workspace opened under this rule takes them.
pub fn adopt(root: &DataRoot, id: &str) -> Result<Adoption, EngineError> {
    let dir = root.workspace_dir(id);
    let earlier_cli = root.named.then(|| root.path.clone()).filter(|p| has_log(p));
    let earlier_app = root.earlier_app.as_ref().map(|p| p.join(id)).filter(|p| has_log(p));
    if has_log(&dir) {
        return Ok(Adoption { moved: None, left_behind: earlier_cli.or(earlier_app) });
    }
    if let Some(from) = earlier_cli {
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        for name in WORKSPACE_FILES {
            let old = from.join(name);
            if old.exists() {
                let new = dir.join(name);
                std::fs::rename(&old, &new).map_err(|e| io(&old, e))?;
            }
        }
        return Ok(Adoption { moved: Some(Moved { from, to: dir }), left_behind: None });
    }
    if let Some(from) = earlier_app {
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        // An empty folder left by an earlier start is in the way of the rename.
        if dir.is_dir() {
            std::fs::remove_dir(&dir).map_err(|e| io(&dir, e))?;
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
