//! One error type for every use case, with a machine-readable code that the CLI
//! maps to exit statuses and the desktop app to screens.

use std::path::Path;

use schemars::JsonSchema;
use serde::Serialize;

/// What the UI and scripts branch on: one list for every face (the CLI's exit statuses,
/// the app's screens), including the few codes only a face produces (`Internal`, the
/// app's updates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
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
    /// A face itself failed (a worker thread, the window).
    Internal,
    /// App updates are off: this build has no updater key, or no endpoint is set.
    UpdateNotConfigured,
    /// An update's signature does not verify (changed file, another signer, relabelled
    /// version): nothing was installed.
    UpdateRefused,
    /// The update endpoint could not be reached or answered nothing usable, or installing failed.
    UpdateFailed,
    /// The team server could not be reached, or refused what this desktop sent: the
    /// change did not reach the team.
    TeamUnreachable,
    /// The signal encoder's base could not be fetched or checked: nothing was put in
    /// place, and cases are still handed off.
    EncoderFetchFailed,
}

impl ErrorCode {
    /// What a person can do about an error with this code.
    pub fn next_step(self) -> &'static str {
        match self {
            ErrorCode::ConfigInvalid => "Fix the workspace file named in the message, then restart the app.",
            ErrorCode::PolicyInvalid => "Fix the policy at the file:line:column shown, then restart the app.",
            ErrorCode::BadInput => "Check what you entered and try again.",
            ErrorCode::NotFound => "Refresh the screen: it may have changed meanwhile.",
            ErrorCode::Conflict => "Refresh the case: someone or something changed it meanwhile.",
            ErrorCode::StoreFailed => {
                "Check the disk and the data folder in Settings; the evidence log was not changed."
            }
            ErrorCode::ConnectorFailed => "Check the platform connection in Settings, then try again.",
            ErrorCode::CredentialMissing => "Add the platform credential in Settings.",
            ErrorCode::KeyringUnavailable => "Unlock the OS keyring (Secret Service), then try again.",
            ErrorCode::Io => "Check the path and its permissions.",
            ErrorCode::NotPermitted => "Ask someone with the role named in the message to countersign.",
            ErrorCode::ApprovalStale => "Open the case again so the plan is decided under the current policy.",
            ErrorCode::Paused => "A pause covers this step. A team lead can clear it on the Pause screen.",
            ErrorCode::PlannerFailed => {
                "Check the planner in Settings (endpoint, model, key), or plan with the local planner."
            }
            ErrorCode::PackRefused => {
                "Ask your admin for a pack signed by a trusted key; the app keeps running on the last good pack."
            }
            ErrorCode::ReleaseInvalid => "Do not install it: ask your admin for the signed release.",
            ErrorCode::NeedsHuman => {
                "Sign in or verify in the seller center yourself (nothing was sent); this step does not run again \
                 on its own, so finish it there by hand."
            }
            ErrorCode::Internal => "Restart the app; if it happens again, send the log file from Settings.",
            ErrorCode::UpdateNotConfigured => {
                "Updates come from your admin: ask for an installer built with the updater key, or a policy pack \
                 that names the update endpoint."
            }
            ErrorCode::UpdateRefused => {
                "Nothing was installed. Do not install this update by hand; tell your admin, who should check the \
                 update server."
            }
            ErrorCode::UpdateFailed => {
                "Check the network and try again; if it keeps failing, tell your admin what the message says."
            }
            ErrorCode::EncoderFetchFailed => {
                "Until the signal encoder is in place every case is handed off; the message says what failed \
                 and what to do."
            }
            ErrorCode::TeamUnreachable => {
                "Nothing reached the team. Check the connection to the team server and try again; a pause you need \
                 right now on this desk alone can be set while signed in as an agent."
            }
        }
    }
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
    /// A record the engine must read to decide safely (a queued step, an event) cannot be
    /// read back: it was edited, or another version wrote it. Nothing is decided on it.
    #[error("{message}")]
    Unreadable { message: String },
    /// The team server could not be reached or refused the change.
    #[error("{message}")]
    TeamUnreachable { message: String },
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
                S::PauseAlreadyCleared { .. }
                | S::PauseExists { .. }
                | S::StepConflict { .. }
                | S::StepExists { .. }
                | S::CaseRevisionConflict { .. },
            ) => ErrorCode::Conflict,
            EngineError::Store(S::InvalidEvent { .. } | S::ExportTargetNotEmpty { .. } | S::BadBundle { .. }) => {
                ErrorCode::BadInput
            }
            EngineError::Store(_) | EngineError::Unreadable { .. } => ErrorCode::StoreFailed,
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
            EngineError::TeamUnreachable { .. } => ErrorCode::TeamUnreachable,
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
