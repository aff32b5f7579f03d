//! # countersign-connectors
//!
//! How Countersign reads from and acts on a commerce platform.
//!
//! **Architecture invariants:**
//! - Only this crate touches platform data, platform HTTP and the OS keyring. The engine
//!   sees the [`Connector`] trait, structured facts and [`CallRecord`]s, never a socket
//!   or a credential.
//! - What an action *is* on the wire lives in workspace configuration, the
//!   [`catalog::Catalog`] (`assets/demo/catalog.toml`), not in code: method, path, where
//!   each parameter goes, its JSON Schema, read or write, reversible, idempotent, and for a
//!   write the state read and the expectation that proves it worked.
//! - Parameters are checked against the action's JSON Schema before anything is sent.
//! - Credentials are read from the [`credentials::CredentialStore`] at every call, never
//!   kept in a field, and never appear in a [`CallRecord`] (the `Authorization` header and
//!   every header, query or JSON field named like a secret read `[redacted]`; the
//!   credential's value is also scrubbed from anything the platform echoes back).
//! - Only reads and writes the platform makes idempotent (an `Idempotency-Key` was sent)
//!   are retried, and only on transient failures. A non-idempotent write is sent once.
//!
//! Two connectors implement the trait:
//! - [`http::HttpConnector`]: a live platform over HTTPS (plain HTTP on loopback only),
//!   driven by a catalog (blocking `reqwest`: the engine calls from its own threads);
//! - [`snapshot::SnapshotConnector`]: a platform export on disk, for offline decisions and
//!   the demo; it answers order reads and refuses writes ([`ConnectorError::Unsupported`]).
//!
//! A third, the browser connector (seller-center web pages in Chromium), is a crate of its
//! own (`countersign-browser`); what a workspace says about it, [`BrowserSettings`], is
//! here so the engine can parse it without depending on that crate.
//!
//! ## Extending
//!
//! A new platform is a new catalog file (and, when its API differs in kind, a new
//! encoding in [`catalog`] or a new kind of check in [`expect`], the contract every
//! connector's expectations share). A new action is an entry in the catalog with
//! the same name as in the policy; `Catalog::check_against` (and the test that runs it on
//! the demo files) says when the two drift apart. Errors callers branch on are variants of
//! [`ConnectorError`]; keep [`ConnectorError::retryable`] in step when adding one.

pub mod browser;
pub mod catalog;
pub mod config_file;
pub mod credentials;
pub mod expect;
pub mod fault;
pub mod http;
mod redact;
pub mod snapshot;
pub mod source;

use std::collections::BTreeMap;
use std::time::Duration;

use countersign_core::decide::{CustomerFacts, OrderFacts};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use crate::browser::BrowserSettings;
pub use crate::catalog::{Catalog, CatalogError, Coverage};
use crate::credentials::CredentialName;
pub use crate::expect::ExpectationError;
pub use crate::http::{HttpConnector, HttpSettings};

/// Why a connector could not answer. Callers branch on the variant; people read the message.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("cannot read platform data at {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("platform data at {path} is malformed: {message}")]
    Malformed { path: String, message: String },
    #[error("no credential for {name}: set one with `countersign credentials set {name}`")]
    CredentialMissing { name: CredentialName },
    #[error("the credential for {name} cannot be read: {detail}")]
    CredentialUnavailable { name: CredentialName, detail: String },
    #[error("unknown action {action:?}: the catalog does not describe it")]
    UnknownAction { action: String },
    #[error("invalid parameters: {}", .errors.join("; "))]
    InvalidParams { errors: Vec<String> },
    #[error("the platform refused the request ({status} {code}): {message}")]
    Rejected { status: u16, code: String, message: String },
    #[error("the platform failed ({status})")]
    ServerError { status: u16 },
    #[error("the platform did not answer in time")]
    Timeout,
    #[error("cannot reach the platform: {0}")]
    Transport(String),
    #[error("the platform's answer is malformed: {detail}")]
    MalformedResponse { detail: String },
    #[error("the platform is rate limiting{}", .retry_after.map(|d| format!(" (retry after {} s)", d.as_secs())).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    #[error("not supported by this connector: {what}")]
    Unsupported { what: String },
    #[error("connector configuration: {detail}")]
    Config { detail: String },
    /// The platform wants a person: its session ended, or it asks to verify who is there
    /// (a captcha, a one-time code). Nothing was submitted; `evidence` shows the page.
    #[error("a person must take over: {reason}")]
    NeedsHuman { reason: String, evidence: Box<Value> },
    /// The page is not the one the action describes (changed structure, missing
    /// element, unexpected dialog). Nothing was submitted; `evidence` shows the page.
    #[error("the page does not match the action's description: {mismatch}")]
    PageMismatch { mismatch: String, evidence: Box<Value> },
    /// The caller's [`SubmitGate`] closed between preparing and submitting (a pause was
    /// set): nothing was submitted.
    #[error("stopped before submitting: {reason}")]
    StoppedBeforeSubmit { reason: String, evidence: Box<Value> },
    /// A form was submitted, but the page after it does not say whether it worked (no
    /// success and no refusal, a JavaScript dialog, a login page). Like a malformed
    /// answer to a write: whether it applied is for the state read to say, never for a
    /// second submit. `evidence` shows the pages before and after.
    #[error("submitted, but the page does not show whether it worked: {detail}")]
    Unconfirmed { detail: String, evidence: Box<Value> },
    /// A form was submitted and the page answered with the platform's refusal (its code
    /// and message, as [`ConnectorError::Rejected`] carries an API's): the change was not
    /// made. `evidence` shows the pages before and after, the refusal page included.
    #[error("the platform refused the change ({status} {code}): {message}")]
    PageRefused { status: u16, code: String, message: String, evidence: Box<Value> },
    /// A write whose answer never came (a timeout, a dropped connection), with whether it
    /// had gone out, and what the connector saw at that moment (a browser's page).
    #[error("no answer to the write ({}): {detail}", sent.describe())]
    WriteLost { sent: Sent, detail: String, evidence: Option<Box<Value>> },
}

/// Whether a write whose answer never came had gone out, weakest claim first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sent {
    /// It never reached the platform (the connection was refused, the submit never
    /// clicked): it cannot have applied.
    No,
    /// It may have reached the platform (a timeout while sending).
    Unknown,
    /// It reached the platform (the submit was clicked; the request went out and the
    /// answer was lost).
    Yes,
}

impl Sent {
    pub fn describe(self) -> &'static str {
        match self {
            Sent::No => "it was not sent",
            Sent::Unknown => "it may have been sent",
            Sent::Yes => "it was sent",
        }
    }
}

impl ConnectorError {
    /// A transient failure: the same request may succeed later. The connector itself only
    /// retries reads and idempotent writes; this tells callers whether trying again later
    /// (or reconciling by a read) makes sense at all.
    pub fn retryable(&self) -> bool {
        match self {
            ConnectorError::Timeout
            | ConnectorError::Transport(_)
            | ConnectorError::WriteLost { .. }
            | ConnectorError::RateLimited { .. } => true,
            ConnectorError::ServerError { status } => matches!(status, 502..=504),
            _ => false,
        }
    }

    /// What the connector recorded about a call that did not complete (pages seen,
    /// screenshots by blob hash), for the step's evidence.
    pub fn evidence(&self) -> Option<&Value> {
        match self {
            ConnectorError::NeedsHuman { evidence, .. }
            | ConnectorError::PageMismatch { evidence, .. }
            | ConnectorError::StoppedBeforeSubmit { evidence, .. }
            | ConnectorError::Unconfirmed { evidence, .. }
            | ConnectorError::PageRefused { evidence, .. } => Some(evidence),
            ConnectorError::WriteLost { evidence: Some(evidence), .. } => Some(evidence),
            _ => None,
        }
    }
}

/// Where a connector puts large artefacts (screenshots, page snapshots) that evidence
/// names by hash. The engine gives one backed by the store's content-addressed blobs.
pub trait BlobSink: Send + Sync + std::fmt::Debug {
    /// Store `data` durably; returns its name, the lower-case hex SHA-256 of `data`.
    fn put(&self, media_type: &str, data: &[u8]) -> Result<String, String>;
}

/// Asked by a connector right before the part of a call that cannot be taken back (a
/// form's submit click). `Err(reason)` stops the call there.
pub trait SubmitGate {
    fn may_submit(&self) -> Result<(), String>;
}

/// A gate that is always open.
#[derive(Debug, Clone, Copy, Default)]
pub struct Open;

impl SubmitGate for Open {
    fn may_submit(&self) -> Result<(), String> {
        Ok(())
    }
}

/// A request as it goes into evidence: secrets already redacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedRequest {
    pub method: String,
    pub url: String,
    /// Lower-case header names; `authorization` always reads `[redacted]`.
    pub headers: BTreeMap<String, String>,
    pub body: Option<Value>,
}

/// One successful call to the platform, for the evidence log. Every secret is redacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    pub action: String,
    pub request: RecordedRequest,
    pub status: u16,
    pub response: Value,
    /// From the first attempt to the answer, waits between retries included.
    pub duration_ms: u64,
    /// How many times the request was sent (1 + retries).
    pub attempts: u32,
    /// What else the connector saw, when it sees more than a request and an answer (a
    /// browser: pages, screenshots and snapshots by blob hash, values read and filled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Value>,
}

/// Structured, trusted reads from a platform, and the calls that act on it.
///
/// The methods beyond [`Connector::order_facts`] have defaults that answer
/// [`ConnectorError::Unsupported`], so a read-only connector (or a test fake) only
/// implements what it can do.
pub trait Connector: Send + Sync + std::fmt::Debug {
    /// What the platform says about an order, or `None` if it does not exist.
    fn order_facts(&self, order_id: &str) -> Result<Option<OrderFacts>, ConnectorError>;

    /// What the platform says belongs to a customer account (its payment methods), or
    /// `None` if there is no such account.
    fn customer_facts(&self, customer_id: &str) -> Result<Option<CustomerFacts>, ConnectorError> {
        let _ = customer_id;
        Err(ConnectorError::Unsupported { what: "customer facts".into() })
    }

    /// Does the platform honour an idempotency key for this write (the same key answers
    /// the first result, or applies once)? Then an uncertain write is settled by sending
    /// it again under the same key; otherwise only by reading its target.
    fn honours_idempotency(&self, action: &str) -> bool {
        let _ = action;
        false
    }

    /// Run an identity look-up (a read whose values the customer gave) and answer the
    /// account it found, `None` when it found none.
    fn identify(&self, action: &str, params: &Map<String, Value>) -> Result<Option<String>, ConnectorError> {
        let _ = params;
        Err(ConnectorError::Unsupported { what: format!("identity look-ups ({action})") })
    }

    /// Run one action with its parameters (checked against the action's schema first).
    /// A write should carry an idempotency key (derived from the step digest); it is sent
    /// as `Idempotency-Key` and is what makes a write safe to retry.
    fn call(
        &self,
        action: &str,
        params: &Map<String, Value>,
        idempotency_key: Option<&str>,
    ) -> Result<CallRecord, ConnectorError> {
        let _ = (params, idempotency_key);
        Err(ConnectorError::Unsupported { what: format!("calling {action}") })
    }

    /// [`Connector::call`], asking `gate` right before anything that cannot be taken back.
    /// A connector whose call is one request (HTTP) has nothing to stop halfway: the
    /// default ignores the gate (the executor checks pauses before it starts the step).
    fn call_gated(
        &self,
        action: &str,
        params: &Map<String, Value>,
        idempotency_key: Option<&str>,
        gate: &dyn SubmitGate,
    ) -> Result<CallRecord, ConnectorError> {
        let _ = gate;
        self.call(action, params, idempotency_key)
    }

    /// Hands the connector a place for screenshots and page snapshots. Connectors that
    /// produce none ignore it.
    fn attach_blobs(&self, sink: std::sync::Arc<dyn BlobSink>) {
        let _ = sink;
    }

    /// The request [`Connector::call`] would send, redacted, without sending it (for the
    /// step's `started` event, written before the call goes out).
    fn describe_call(
        &self,
        action: &str,
        params: &Map<String, Value>,
        idempotency_key: Option<&str>,
    ) -> Result<RecordedRequest, ConnectorError> {
        let _ = (params, idempotency_key);
        Err(ConnectorError::Unsupported { what: format!("describing {action}") })
    }

    /// The state of the object a write acts on (the catalog's `state` read), or `None`
    /// if it does not exist. Read before and after the write.
    fn read_state(&self, write_action: &str, params: &Map<String, Value>) -> Result<Option<Value>, ConnectorError> {
        let _ = params;
        Err(ConnectorError::Unsupported { what: format!("reading the state for {write_action}") })
    }

    /// Does the after-state show what the catalog expects of this write?
    fn check_expectation(
        &self,
        write_action: &str,
        params: &Map<String, Value>,
        before: Option<&Value>,
        after: Option<&Value>,
    ) -> Result<(), ExpectationError> {
        let _ = (params, before, after);
        Err(ExpectationError::Unsupported { what: format!("checking {write_action}") })
    }
}
