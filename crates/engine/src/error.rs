//! One error type for every use case, with a machine-readable code that the CLI
//! maps to exit statuses and the desktop app to screens.

use std::path::Path;

use schemars::JsonSchema;
use serde::Serialize;

/// What the UI and scripts branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub enum ErrorCode {
    /// The workspace configuration is invalid.
    ConfigInvalid,
    /// The policy file is invalid.
    PolicyInvalid,
    /// A case, plan or argument is invalid.
    BadInput,
    /// A named thing (pause, case) does not exist.
    NotFound,
    /// The request conflicts with the current state (pause already cleared…).
    Conflict,
    /// The evidence store failed.
    StoreFailed,
    /// Platform data could not be read.
    ConnectorFailed,
    /// No credential is stored for the platform/store.
    CredentialMissing,
    /// The OS keyring could not be used.
    KeyringUnavailable,
    /// Reading or writing a file failed.
    Io,
    /// The operator's role may not do this (e.g. countersign a supervisor step).
    NotPermitted,
    /// An approval no longer matches (another policy, another step, expired).
    ApprovalStale,
    /// A pause covers the step: it did not run.
    Paused,
    /// The planner produced no usable plan (provider down, malformed or refused answer).
    PlannerFailed,
    /// A policy pack was refused (unsigned, tampered, unknown key, downgrade…); the
    /// engine keeps the last good pack.
    PackRefused,
    /// A release directory does not verify against its signed SHA256SUMS.
    ReleaseInvalid,
    /// The platform wants a person (its session ended, it asks to verify who is there):
    /// the step stopped with nothing submitted, and an agent takes over.
    NeedsHuman,
}

/// Why a use case failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{message}")]
    Config { message: String },
    #[error(transparent)]
    Policy(#[from] countersign_core::PolicyError),
    #[error("{message}")]
    BadInput { message: String },
    #[error("invalid plan: {0}")]
    Plan(#[from] countersign_core::validate::PlanError),
    #[error(transparent)]
    Store(#[from] countersign_store::StoreError),
    #[error(transparent)]
    Connector(#[from] countersign_connectors::ConnectorError),
    #[error(transparent)]
    Credential(countersign_connectors::credentials::CredentialError),
    /// Keys, packs, releases, the device key, the roster (`countersign-trust`).
    #[error(transparent)]
    Trust(#[from] countersign_trust::TrustError),
    #[error("{message}")]
    NotFound { message: String },
    #[error("{message}")]
    Conflict { message: String },
    #[error("{message}")]
    NotPermitted { message: String },
    #[error("{message}")]
    ApprovalStale { message: String },
    #[error("{message}")]
    Paused { message: String },
    #[error("planner {planner}: {message}")]
    Planner { planner: String, message: String },
    #[error("{refusal}")]
    PackRefused { refusal: countersign_trust::pack::PackRefusal },
    #[error("{message}")]
    ReleaseInvalid { message: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl EngineError {
    pub fn io(path: &Path, source: std::io::Error) -> EngineError {
        EngineError::Io { path: path.display().to_string(), source }
    }

    pub fn code(&self) -> ErrorCode {
        use countersign_store::StoreError as S;
        use countersign_trust::TrustError as T;
        match self {
            EngineError::Config { .. } => ErrorCode::ConfigInvalid,
            EngineError::Policy(_) => ErrorCode::PolicyInvalid,
            EngineError::BadInput { .. } | EngineError::Plan(_) => ErrorCode::BadInput,
            EngineError::NotFound { .. } | EngineError::Store(S::PauseNotFound { .. } | S::StepNotFound { .. }) => {
                ErrorCode::NotFound
            }
            EngineError::Conflict { .. }
            | EngineError::Store(
                S::PauseAlreadyCleared { .. } | S::PauseExists { .. } | S::StepConflict { .. } | S::StepExists { .. },
            ) => ErrorCode::Conflict,
            EngineError::Store(S::InvalidEvent { .. } | S::ExportTargetNotEmpty { .. } | S::BadBundle { .. }) => {
                ErrorCode::BadInput
            }
            EngineError::Store(_) => ErrorCode::StoreFailed,
            EngineError::Connector(countersign_connectors::ConnectorError::NeedsHuman { .. }) => ErrorCode::NeedsHuman,
            // A connector's configuration (a catalog's or page-actions file's value, a
            // base URL, the browser to start) is the workspace's to fix.
            EngineError::Connector(countersign_connectors::ConnectorError::Config { .. }) => ErrorCode::ConfigInvalid,
            EngineError::Connector(_) => ErrorCode::ConnectorFailed,
            EngineError::Credential(c) | EngineError::Trust(T::Keyring(c)) => credential_code(c),
            EngineError::Trust(T::BadInput { .. }) => ErrorCode::BadInput,
            EngineError::Trust(T::NotFound { .. }) => ErrorCode::NotFound,
            EngineError::Trust(T::Conflict { .. }) => ErrorCode::Conflict,
            EngineError::Trust(T::System { .. }) => ErrorCode::ConfigInvalid,
            EngineError::Io { .. } | EngineError::Trust(T::Io { .. }) => ErrorCode::Io,
            EngineError::NotPermitted { .. } => ErrorCode::NotPermitted,
            EngineError::ApprovalStale { .. } => ErrorCode::ApprovalStale,
            EngineError::Paused { .. } => ErrorCode::Paused,
            EngineError::Planner { .. } => ErrorCode::PlannerFailed,
            EngineError::PackRefused { .. } => ErrorCode::PackRefused,
            EngineError::ReleaseInvalid { .. } => ErrorCode::ReleaseInvalid,
        }
    }
}

fn credential_code(e: &countersign_connectors::credentials::CredentialError) -> ErrorCode {
    use countersign_connectors::credentials::CredentialError as C;
    match e {
        C::Missing { .. } => ErrorCode::CredentialMissing,
        C::BadName(_) | C::EmptyValue => ErrorCode::BadInput,
        C::Unavailable(_) => ErrorCode::KeyringUnavailable,
    }
}
