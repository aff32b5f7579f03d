//! What can go wrong signing, storing or loading keys, packs and releases (a pack that
//! does not verify is a [`crate::pack::PackRefusal`], not an error).

use std::path::Path;

use countersign_connectors::credentials::CredentialError;

/// Why a trust operation failed. The engine maps each variant to its error code.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// Input that does not check: a key file, a pack source, a release directory.
    #[error("{message}")]
    BadInput { message: String },
    /// A key that is not there (an admin key name with nothing in the keyring).
    #[error("{message}")]
    NotFound { message: String },
    /// It would replace something: a key slot already holding a key, a directory already
    /// holding a pack or a signed release.
    #[error("{message}")]
    Conflict { message: String },
    /// The system could not do its part: no randomness for a key or a salt, a hash that
    /// cannot be computed.
    #[error("{message}")]
    System { message: String },
    /// The OS keyring.
    #[error(transparent)]
    Keyring(#[from] CredentialError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl TrustError {
    pub fn io(path: &Path, source: std::io::Error) -> TrustError {
        TrustError::Io { path: path.display().to_string(), source }
    }
}
