/// Why a team-plane operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PlaneError {
    /// Bad input from the person at the keyboard (a name, a role, a file).
    #[error("{message}")]
    BadInput { message: String },
    /// A team file could not be read or written.
    #[error("{path}: {message}")]
    File { path: String, message: String },
    /// The OS keyring could not give or keep a key.
    #[error("the OS keyring: {message}")]
    Keyring { message: String },
    /// The team server could not be reached, or refused.
    #[error("the team server at {url}: {message}")]
    Server { url: String, message: String },
}

impl PlaneError {
    pub(crate) fn file(path: &std::path::Path, message: impl std::fmt::Display) -> PlaneError {
        PlaneError::File { path: path.display().to_string(), message: message.to_string() }
    }

    pub(crate) fn bad(message: impl Into<String>) -> PlaneError {
        PlaneError::BadInput { message: message.into() }
    }
}

impl From<countersign_connectors::credentials::CredentialError> for PlaneError {
    fn from(e: countersign_connectors::credentials::CredentialError) -> PlaneError {
        PlaneError::Keyring { message: e.to_string() }
    }
}
