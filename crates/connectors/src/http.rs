//! A live platform over HTTP, driven by a [`Catalog`].
//!
//! Every call: look the action up, check its parameters against the action's JSON Schema,
//! encode the request, read the credential from the [`CredentialStore`] (at call time,
//! never cached), send it with `Authorization: Bearer`, map the answer to a
//! [`CallRecord`] or a typed [`ConnectorError`]. Blocking `reqwest`: the engine calls from
//! its own threads; do not call it from inside an async runtime.
//!
//! Retries: reads, and writes the catalog marks idempotent *when an idempotency key is
//! sent*, are retried on transient failures (connect error, timeout, 502/503/504, 429 with
//! a `Retry-After` no longer than the bound), at most `max_retries` times with exponential
//! backoff. Any other write is sent exactly once: after a timeout its outcome is unknown
//! and must be reconciled by a read, never by sending it again.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use countersign_core::decide::{CustomerFacts, OrderFacts};
use countersign_core::policy::Kind;
use reqwest::Url;
use reqwest::blocking::Client;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::catalog::{ActionSpec, Catalog, EncodedRequest, ExpectationError, HttpMethod, check_base_url};
use crate::credentials::{CredentialError, CredentialStore, Secret};
use crate::redact::{REDACTED, is_secret_name, redact_json, scrub_json, scrub_text};
use crate::{CallRecord, Connector, ConnectorError, RecordedRequest, Sent};

/// The header a platform reads an idempotency key from.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// Answers larger than this are refused (a support action's answer is a few KiB).
const MAX_RESPONSE_BYTES: u64 = 8 * 1024 * 1024;
const MAX_IDEMPOTENCY_KEY: usize = 255;
/// How much of a refusal's body that is not `{"error": {"code", "message"}}` is kept.
const MAX_REFUSAL_CHARS: usize = 2000;

/// Timeouts and retries (defaults from the catalog's `[platform]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpSettings {
    pub connect_timeout: Duration,
    /// The whole request, answer included.
    pub timeout: Duration,
    /// Retries after the first attempt, for retryable requests only.
    pub max_retries: u32,
    /// The wait before the first retry; doubled for each further one.
    pub backoff: Duration,
    /// A 429's `Retry-After` longer than this is not waited for.
    pub max_retry_after: Duration,
}

/// A platform's HTTP API, described by a catalog.
#[derive(Debug)]
pub struct HttpConnector {
    catalog: Arc<Catalog>,
    credentials: Arc<dyn CredentialStore>,
    base_url: Url,
    settings: HttpSettings,
    client: Client,
}

pub(crate) fn build_client(settings: &HttpSettings, base_url: &Url) -> Result<Client, ConnectorError> {
    let mut builder = countersign_http::blocking_client_builder()
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.timeout)
        // An API answers; it does not send the bearer token on a tour.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("countersign/", env!("CARGO_PKG_VERSION")));
    if base_url.host_str().is_some_and(|h| h == "localhost" || h.starts_with("127.") || h == "[::1]") {
        // A loopback platform is never behind the environment's proxy.
        builder = builder.no_proxy();
    }
    builder.build().map_err(|e| ConnectorError::Config { detail: format!("cannot build the HTTP client: {e}") })
}

/// What one attempt produced, before it becomes a record or an error.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) response: Value,
}

impl HttpConnector {
    /// A connector for the catalog's platform, with the catalog's timeouts and retries.
    pub fn new(catalog: Catalog, credentials: Arc<dyn CredentialStore>) -> Result<HttpConnector, ConnectorError> {
        let p = &catalog.platform;
        let settings = HttpSettings {
            connect_timeout: p.connect_timeout,
            timeout: p.timeout,
            max_retries: p.max_retries,
            backoff: p.backoff,
            max_retry_after: p.max_retry_after,
        };
        let base_url = p.base_url.clone();
        let client = build_client(&settings, &base_url)?;
        Ok(HttpConnector { catalog: Arc::new(catalog), credentials, base_url, settings, client })
    }

    /// Talk to another address than the catalog's (the workspace's, a test server's). The
    /// same rule applies: plain HTTP on loopback only.
    pub fn with_base_url(mut self, url: &str) -> Result<HttpConnector, ConnectorError> {
        self.base_url = check_base_url(url).map_err(|detail| ConnectorError::Config { detail })?;
        self.client = build_client(&self.settings, &self.base_url)?;
        Ok(self)
    }

    pub fn with_settings(mut self, settings: HttpSettings) -> Result<HttpConnector, ConnectorError> {
        self.settings = settings;
        self.client = build_client(&self.settings, &self.base_url)?;
        Ok(self)
    }

    pub fn settings(&self) -> HttpSettings {
        self.settings
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    fn spec(&self, action: &str) -> Result<&ActionSpec, ConnectorError> {
        self.catalog.action(action).ok_or_else(|| ConnectorError::UnknownAction { action: action.to_string() })
    }

    /// Schema check and encoding: everything that can fail before a credential is read.
    fn prepare(
        &self,
        spec: &ActionSpec,
        params: &Map<String, Value>,
        idempotency_key: Option<&str>,
    ) -> Result<(Url, EncodedRequest), ConnectorError> {
        spec.validate(params).map_err(|errors| ConnectorError::InvalidParams { errors })?;
        if let Some(key) = idempotency_key
            && (key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY || !key.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err(ConnectorError::InvalidParams {
                errors: vec![format!("an idempotency key is 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters")],
            });
        }
        let encoded = spec.encode(params).map_err(|errors| ConnectorError::InvalidParams { errors })?;
        let text = format!("{}{}", self.base_url.as_str().trim_end_matches('/'), encoded.path);
        let mut url = Url::parse(&text).map_err(|e| ConnectorError::InvalidParams { errors: vec![e.to_string()] })?;
        if !encoded.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&encoded.query);
        }
        Ok((url, encoded))
    }

    /// The request as evidence: secret-named headers, query values and body fields redacted.
    fn record_request(
        &self,
        spec: &ActionSpec,
        url: &Url,
        encoded: &EncodedRequest,
        idempotency_key: Option<&str>,
    ) -> RecordedRequest {
        let not_secret = &self.catalog.platform.not_secret;
        let mut shown = url.clone();
        if url.query().is_some() {
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .map(|(k, v)| {
                    let v = if is_secret_name(&k, not_secret) { REDACTED.to_string() } else { v.into_owned() };
                    (k.into_owned(), v)
                })
                .collect();
            shown.query_pairs_mut().clear().extend_pairs(&pairs);
        }
        let mut headers = BTreeMap::new();
        headers.insert(ACCEPT.as_str().to_string(), "application/json".to_string());
        headers.insert(AUTHORIZATION.as_str().to_string(), REDACTED.to_string());
        if encoded.body.is_some() {
            headers.insert(CONTENT_TYPE.as_str().to_string(), "application/json".to_string());
        }
        if let Some(key) = idempotency_key
            && spec.kind == Kind::Write
        {
            headers.insert(IDEMPOTENCY_HEADER.to_string(), key.to_string());
        }
        let mut body = encoded.body.clone();
        if let Some(b) = body.as_mut() {
            redact_json(b, not_secret);
        }
        RecordedRequest { method: encoded.method.as_str().to_string(), url: shown.to_string(), headers, body }
    }

    fn credential(&self) -> Result<Secret, ConnectorError> {
        let name = &self.catalog.platform.credential;
        self.credentials.get(name).map_err(|e| match e {
            CredentialError::Missing { name } => ConnectorError::CredentialMissing { name },
            other => ConnectorError::CredentialUnavailable { name: name.clone(), detail: other.to_string() },
        })
    }

    fn send_once(
        &self,
        method: HttpMethod,
        url: &Url,
        body: Option<&[u8]>,
        idempotency_key: Option<&str>,
        secret: &Secret,
    ) -> Result<Answer, (ConnectorError, Sent)> {
        let method = match method {
            HttpMethod::Get => reqwest::Method::GET,
            HttpMethod::Post => reqwest::Method::POST,
            HttpMethod::Put => reqwest::Method::PUT,
            HttpMethod::Patch => reqwest::Method::PATCH,
            HttpMethod::Delete => reqwest::Method::DELETE,
        };
        let bearer = Zeroizing::new(format!("Bearer {}", secret.expose()));
        let mut auth = HeaderValue::from_str(&bearer).map_err(|_| {
            let e = ConnectorError::CredentialUnavailable {
                name: self.catalog.platform.credential.clone(),
                detail: "the stored value is not usable in an HTTP header".into(),
            };
            (e, Sent::No)
        })?;
        auth.set_sensitive(true);
        let mut request =
            self.client.request(method, url.clone()).header(AUTHORIZATION, auth).header(ACCEPT, "application/json");
        if let Some(key) = idempotency_key {
            request = request.header(IDEMPOTENCY_HEADER, key);
        }
        if let Some(bytes) = body {
            request = request.header(CONTENT_TYPE, "application/json").body(bytes.to_vec());
        }
        // A connection never made sent nothing; a failure after it may have sent the
        // request; once an answer's head arrived, the request was there.
        let response = request.send().map_err(|e| {
            let sent = if e.is_connect() { Sent::No } else { Sent::Unknown };
            (transport_error(e), sent)
        })?;
        read_answer(response, secret).map_err(|e| (e, Sent::Yes))
    }
}

/// A platform's answer: 2xx as JSON (`null` when empty), 429 with its `Retry-After`, 4xx
/// as the platform's error (the secret scrubbed out), 5xx by status. At most
/// `MAX_RESPONSE_BYTES` are read.
pub(crate) fn read_answer(response: reqwest::blocking::Response, secret: &Secret) -> Result<Answer, ConnectorError> {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let mut bytes = Vec::new();
    response.take(MAX_RESPONSE_BYTES + 1).read_to_end(&mut bytes).map_err(|e| {
        let inner_timeout =
            e.get_ref().and_then(|i| i.downcast_ref::<reqwest::Error>()).is_some_and(reqwest::Error::is_timeout);
        if e.kind() == std::io::ErrorKind::TimedOut || inner_timeout {
            ConnectorError::Timeout
        } else {
            ConnectorError::Transport(format!("reading the answer: {e}"))
        }
    })?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_RESPONSE_BYTES {
        return Err(ConnectorError::MalformedResponse {
            detail: format!("the answer is larger than {MAX_RESPONSE_BYTES} bytes"),
        });
    }
    match status {
        200..=299 => {
            let response = if bytes.iter().all(u8::is_ascii_whitespace) {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).map_err(|e| ConnectorError::MalformedResponse {
                    detail: format!("status {status} with a body that is not JSON: {e}"),
                })?
            };
            Ok(Answer { status, response })
        }
        429 => Err(ConnectorError::RateLimited { retry_after }),
        400..=499 => Err(rejection(status, &bytes, secret)),
        500..=599 => Err(ConnectorError::ServerError { status }),
        _ => Err(ConnectorError::MalformedResponse { detail: format!("unexpected status {status}") }),
    }
}

pub(crate) fn transport_error(e: reqwest::Error) -> ConnectorError {
    if e.is_timeout() {
        ConnectorError::Timeout
    } else if e.is_connect() {
        ConnectorError::Transport(format!("cannot connect: {e}"))
    } else {
        ConnectorError::Transport(e.to_string())
    }
}

/// A 4xx: the platform's `{"error": {"code", "message"}}`, or what can be said without it.
fn rejection(status: u16, bytes: &[u8], secret: &Secret) -> ConnectorError {
    let parsed: Option<Value> = serde_json::from_slice(bytes).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error"));
    let field = |name: &str| error.and_then(|e| e.get(name)).and_then(Value::as_str).map(str::to_string);
    let code = field("code").unwrap_or_else(|| format!("http_{status}"));
    // The secret is scrubbed from the whole body before any cut, so no prefix of it can
    // survive at the edge; a body that is not the expected shape is kept whole enough for
    // an adapter to read its own error format.
    let message = match field("message") {
        Some(m) => scrub_text(&m, secret.expose()),
        None => scrub_text(&String::from_utf8_lossy(bytes), secret.expose()).chars().take(MAX_REFUSAL_CHARS).collect(),
    };
    ConnectorError::Rejected { status, code: scrub_text(&code, secret.expose()), message }
}

impl HttpConnector {
    /// A read's answer, `None` when the platform answers 404 (no such object).
    fn read_found(&self, action: &str, params: &Map<String, Value>) -> Result<Option<Value>, ConnectorError> {
        match self.call(action, params, None) {
            Ok(record) => Ok(Some(record.response)),
            Err(ConnectorError::Rejected { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

fn elapsed_ms(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl Connector for HttpConnector {
    fn order_facts(&self, order_id: &str) -> Result<Option<OrderFacts>, ConnectorError> {
        let map = self.catalog.order_facts.as_ref().ok_or_else(|| ConnectorError::Unsupported {
            what: format!("order facts: the catalog {} has no [facts.order]", self.catalog.file),
        })?;
        let mut answer = None;
        let facts = map.read(
            order_id,
            |action, params| {
                let found = self.read_found(action, params)?;
                answer.clone_from(&found);
                Ok(found)
            },
            |v, pointer| v.pointer(pointer).and_then(Value::as_str).map(str::to_string),
        )?;
        match (facts, answer) {
            (Some(mut f), Some(answer)) => {
                f.item_ids = map.item_ids(&answer)?;
                Ok(Some(f))
            }
            (facts, _) => Ok(facts),
        }
    }

    fn honours_idempotency(&self, action: &str) -> bool {
        self.catalog.actions.get(action).is_some_and(|s| s.kind == Kind::Write && s.idempotent)
    }

    fn customer_facts(&self, customer_id: &str) -> Result<Option<CustomerFacts>, ConnectorError> {
        let map = self.catalog.customer_facts.as_ref().ok_or_else(|| ConnectorError::Unsupported {
            what: format!("customer facts: the catalog {} has no [facts.customer]", self.catalog.file),
        })?;
        let mut params = Map::new();
        params.insert(map.param.clone(), Value::String(customer_id.to_owned()));
        match self.read_found(&map.action, &params) {
            Ok(Some(answer)) => map.facts_from(&answer).map(Some),
            Ok(None) | Err(ConnectorError::InvalidParams { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn identify(&self, action: &str, params: &Map<String, Value>) -> Result<Option<String>, ConnectorError> {
        let pointer = self.catalog.lookup_customer_id.as_ref().ok_or_else(|| ConnectorError::Unsupported {
            what: format!("identity look-ups: the catalog {} has no [facts.lookup]", self.catalog.file),
        })?;
        match self.read_found(action, params)? {
            None => Ok(None),
            Some(answer) => {
                answer.pointer(pointer).and_then(Value::as_str).map(|id| Some(id.to_owned())).ok_or_else(|| {
                    ConnectorError::MalformedResponse { detail: format!("{action}: {pointer} is not a string") }
                })
            }
        }
    }

    fn call(
        &self,
        action: &str,
        params: &Map<String, Value>,
        idempotency_key: Option<&str>,
    ) -> Result<CallRecord, ConnectorError> {
        let spec = self.spec(action)?;
        let (url, encoded) = self.prepare(spec, params, idempotency_key)?;
        // Reads never carry a key; a write carries it whether or not the catalog says the
        // platform honours it (sending it is harmless; only retries depend on it).
        let key = if spec.kind == Kind::Write { idempotency_key } else { None };
        let retryable = spec.kind == Kind::Read || (spec.idempotent && key.is_some());
        // One serialisation: every attempt sends byte-identical bodies, as idempotency needs.
        let body = encoded
            .body
            .as_ref()
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| ConnectorError::InvalidParams { errors: vec![e.to_string()] })?;
        let secret = self.credential()?;

        let start = Instant::now();
        let mut attempts: u32 = 0;
        // Over all attempts: whether any of them may have reached the platform.
        let mut sent = Sent::No;
        let answer = loop {
            attempts += 1;
            match self.send_once(encoded.method, &url, body.as_deref(), key, &secret) {
                Ok(answer) => break answer,
                Err((e, at)) if retryable && attempts <= self.settings.max_retries && e.retryable() => {
                    sent = sent.max(at);
                    let wait = match &e {
                        ConnectorError::RateLimited { retry_after: Some(d) } if *d > self.settings.max_retry_after => {
                            return Err(e);
                        }
                        ConnectorError::RateLimited { retry_after: Some(d) } => *d,
                        _ => self.settings.backoff.saturating_mul(1u32 << (attempts - 1).min(16)),
                    };
                    std::thread::sleep(wait);
                }
                // A write whose answer never came says whether it had gone out.
                Err((e @ (ConnectorError::Timeout | ConnectorError::Transport(_)), at)) if spec.kind == Kind::Write => {
                    return Err(ConnectorError::WriteLost {
                        sent: sent.max(at),
                        detail: e.to_string(),
                        evidence: None,
                    });
                }
                // A refusal after an earlier attempt that may have landed answers this
                // attempt only: the write stays uncertain.
                Err((e @ ConnectorError::Rejected { .. }, _)) if spec.kind == Kind::Write && sent > Sent::No => {
                    return Err(ConnectorError::WriteLost {
                        sent,
                        detail: format!("{e}, after an earlier attempt that may have landed"),
                        evidence: None,
                    });
                }
                Err((e, _)) => return Err(e),
            }
        };

        let mut request = self.record_request(spec, &url, &encoded, key);
        let mut response = answer.response;
        redact_json(&mut response, &self.catalog.platform.not_secret);
        // Belt and braces: whatever the platform echoed, the credential itself never stays.
        scrub_json(&mut response, secret.expose());
        if let Some(b) = request.body.as_mut() {
            scrub_json(b, secret.expose());
        }
        request.url = scrub_text(&request.url, secret.expose());
        Ok(CallRecord {
            action: action.to_string(),
            request,
            status: answer.status,
            response,
            duration_ms: elapsed_ms(start),
            attempts,
            evidence: None,
        })
    }

    fn describe_call(
        &self,
        action: &str,
        params: &Map<String, Value>,
        idempotency_key: Option<&str>,
    ) -> Result<RecordedRequest, ConnectorError> {
        let spec = self.spec(action)?;
        let (url, encoded) = self.prepare(spec, params, idempotency_key)?;
        let key = if spec.kind == Kind::Write { idempotency_key } else { None };
        Ok(self.record_request(spec, &url, &encoded, key))
    }

    fn read_state(&self, write_action: &str, params: &Map<String, Value>) -> Result<Option<Value>, ConnectorError> {
        let spec = self.spec(write_action)?;
        let Some((read, read_params)) = spec.state_params(params) else {
            return Err(ConnectorError::Unsupported { what: format!("{write_action} is a read: it has no state") });
        };
        self.read_found(&read, &read_params)
    }

    fn check_expectation(
        &self,
        write_action: &str,
        params: &Map<String, Value>,
        before: Option<&Value>,
        after: Option<&Value>,
    ) -> Result<(), ExpectationError> {
        crate::expect::check_write(write_action, self.catalog.expectations(write_action), params, before, after)
    }
}
