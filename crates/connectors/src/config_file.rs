//! A configuration file a workspace names (the action catalog, the page actions, the
//! local planner's playbooks): read once, and every error points into it as
//! `file:line:column`. One error type for all of them.

use std::path::Path;

/// A configuration file that could not be loaded: where and why.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read the {what} {path}: {source}")]
    Io {
        /// What the file is ("catalog", "page actions", "playbooks").
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: {message}")]
    Invalid { file: String, line: usize, column: usize, message: String },
}

/// Read the `what` at `path`: its name as errors show it, and its text.
pub fn read(what: &'static str, path: &Path) -> Result<(String, String), FileError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| FileError::Io { what, path: shown.clone(), source })?;
    Ok((shown, text))
}
