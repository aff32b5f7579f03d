//! JSON over HTTP for case sources: the base URL, the credential read from the store at
//! every call (never kept), the `Authorization` header the platform wants, and the same
//! answer handling as the HTTP connector (429 with `Retry-After`, 4xx scrubbed, size cap).

use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use reqwest::blocking::Client;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::ConnectorError;
use crate::catalog::check_base_url;
use crate::credentials::{CredentialError, CredentialName, CredentialStore, Secret};
use crate::http::{HttpSettings, IDEMPOTENCY_HEADER, build_client, read_answer, transport_error};

/// How the stored secret goes into `Authorization`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `Bearer <secret>`.
    Bearer,
    /// `Basic base64(<secret>)`: the secret is the whole `user:password` text.
    Basic,
}

/// The HTTP side of a source.
#[derive(Debug)]
pub struct Wire {
    client: Client,
    base: Url,
    credentials: Arc<dyn CredentialStore>,
    credential: CredentialName,
    auth: Auth,
}

/// Timeouts for a source: a listing or a post answers in seconds, or is a failure.
pub const SETTINGS: HttpSettings = HttpSettings {
    connect_timeout: Duration::from_secs(5),
    timeout: Duration::from_secs(20),
    max_retries: 0,
    backoff: Duration::from_millis(0),
    max_retry_after: Duration::from_secs(60),
};

impl Wire {
    pub fn new(
        base_url: &str,
        credentials: Arc<dyn CredentialStore>,
        credential: CredentialName,
        auth: Auth,
    ) -> Result<Wire, ConnectorError> {
        let mut base = check_base_url(base_url).map_err(|detail| ConnectorError::Config { detail })?;
        // Paths join below the base, never beside its last segment.
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let client = build_client(&SETTINGS, &base)?;
        Ok(Wire { client, base, credentials, credential, auth })
    }

    fn url(&self, path: &str, query: &[(&str, String)]) -> Result<Url, ConnectorError> {
        let mut url = self
            .base
            .join(path.trim_start_matches('/'))
            .map_err(|e| ConnectorError::Config { detail: format!("source path {path:?}: {e}") })?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        Ok(url)
    }

    fn secret(&self) -> Result<Secret, ConnectorError> {
        self.credentials.get(&self.credential).map_err(|e| match e {
            CredentialError::Missing { name } => ConnectorError::CredentialMissing { name },
            other => ConnectorError::CredentialUnavailable { name: self.credential.clone(), detail: other.to_string() },
        })
    }

    fn authorization(&self, secret: &Secret) -> Result<HeaderValue, ConnectorError> {
        use base64::Engine as _;
        let text = Zeroizing::new(match self.auth {
            Auth::Bearer => format!("Bearer {}", secret.expose()),
            Auth::Basic => format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(secret.expose())),
        });
        let mut value = HeaderValue::from_str(&text).map_err(|_| ConnectorError::CredentialUnavailable {
            name: self.credential.clone(),
            detail: "the stored value is not usable in an HTTP header".into(),
        })?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// `GET path?query`, the answer as JSON.
    pub fn get(&self, path: &str, query: &[(&str, String)]) -> Result<Value, ConnectorError> {
        self.send(reqwest::Method::GET, self.url(path, query)?, None, None)
    }

    /// `GET` of a full URL the platform handed out (a next page), which must stay on the
    /// source's own origin.
    pub fn get_url(&self, url: &str) -> Result<Value, ConnectorError> {
        let url = Url::parse(url)
            .map_err(|e| ConnectorError::MalformedResponse { detail: format!("next page URL {url:?}: {e}") })?;
        if url.origin() != self.base.origin() {
            return Err(ConnectorError::MalformedResponse {
                detail: format!(
                    "next page URL {url} is not on the source's origin {}",
                    self.base.origin().ascii_serialization()
                ),
            });
        }
        self.send(reqwest::Method::GET, url, None, None)
    }

    /// A write with a JSON body, and an idempotency key when the platform takes one.
    pub fn write(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> Result<Value, ConnectorError> {
        self.send(method, self.url(path, &[])?, Some(body), idempotency_key)
    }

    fn send(
        &self,
        method: reqwest::Method,
        url: Url,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Value, ConnectorError> {
        let secret = self.secret()?;
        let mut request = self
            .client
            .request(method, url)
            .header(AUTHORIZATION, self.authorization(&secret)?)
            .header(ACCEPT, "application/json");
        if let Some(key) = idempotency_key {
            request = request.header(IDEMPOTENCY_HEADER, key);
        }
        if let Some(body) = body {
            let bytes = serde_json::to_vec(body)
                .map_err(|e| ConnectorError::Config { detail: format!("cannot encode the request: {e}") })?;
            request = request.header(CONTENT_TYPE, "application/json").body(bytes);
        }
        let response = request.send().map_err(transport_error)?;
        Ok(read_answer(response, &secret)?.response)
    }
}

/// A platform's answer that is not what its API documents.
pub fn malformed(detail: String) -> ConnectorError {
    ConnectorError::MalformedResponse { detail }
}

/// An answer read into the adapter's type for it; `what` names it in the error.
pub fn parse<T: serde::de::DeserializeOwned>(what: &str, value: Value) -> Result<T, ConnectorError> {
    serde_json::from_value(value).map_err(|e| malformed(format!("{what}: {e}")))
}
