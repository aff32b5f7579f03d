//! One POST with a streamed answer: timeouts, retries on transient failures only, and
//! error texts with the key scrubbed out.

use std::io::BufReader;
use std::time::{Duration, Instant};

use countersign_connectors::credentials::Secret;
use reqwest::StatusCode;
use reqwest::blocking::{Client, Response};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use serde_json::Value;

use super::LlmConfig;
use super::sse::Sse;
use crate::PlannerError;

/// The longest stream accepted (a plan is a few kilobytes; this stops a runaway server).
const MAX_STREAM_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug)]
pub(crate) struct Http {
    client: Client,
    provider: String,
    headers: HeaderMap,
    timeout: Duration,
    max_retries: u32,
    backoff: Duration,
    max_retry_after: Duration,
}

impl Http {
    pub fn new(provider: &str, config: &LlmConfig) -> Result<Http, PlannerError> {
        let client = countersign_http::blocking_client_builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("countersign/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| PlannerError::Config(format!("cannot build the HTTP client: {e}")))?;
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            if is_credential_header(name) {
                return Err(PlannerError::Config(format!(
                    "header {name} carries a credential; the API key belongs in the keyring"
                )));
            }
            let n = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| PlannerError::Config(format!("{name:?} is not a valid header name")))?;
            let mut v = HeaderValue::from_str(value)
                .map_err(|_| PlannerError::Config(format!("the value of header {name} is not a valid header value")))?;
            // Not meant for secrets, but kept out of `Debug` in case one is put there.
            v.set_sensitive(true);
            headers.insert(n, v);
        }
        Ok(Http {
            client,
            provider: provider.to_string(),
            headers,
            timeout: config.timeout,
            max_retries: config.max_retries,
            backoff: config.backoff,
            max_retry_after: config.max_retry_after,
        })
    }

    fn timeout_error(&self) -> PlannerError {
        PlannerError::Timeout {
            provider: self.provider.clone(),
            millis: u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// POST `body` as JSON with the key in header `auth` (value `auth_prefix` + key) and
    /// return the event stream of the answer.
    pub fn post_stream(
        &self,
        url: &reqwest::Url,
        auth: Option<(&'static str, &'static str, &Secret)>,
        extra: &[(&'static str, &str)],
        body: &Value,
    ) -> Result<Sse<BufReader<Response>>, PlannerError> {
        let mut headers = self.headers.clone();
        for (name, value) in extra {
            let v = HeaderValue::from_str(value)
                .map_err(|_| PlannerError::Config(format!("the value of header {name} is not a valid header value")))?;
            headers.insert(*name, v);
        }
        let secret = auth.map(|(_, _, s)| s);
        if let Some((name, prefix, key)) = auth {
            let mut v = HeaderValue::from_str(&format!("{prefix}{}", key.expose()))
                .map_err(|_| PlannerError::Config("the API key is not a valid header value".into()))?;
            v.set_sensitive(true);
            headers.insert(name, v);
        }
        let body =
            serde_json::to_vec(body).map_err(|e| PlannerError::Config(format!("cannot encode a request: {e}")))?;
        let mut attempt = 0u32;
        loop {
            let started = Instant::now();
            let wait = match self
                .client
                .post(url.clone())
                .headers(headers.clone())
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
            {
                Err(e) if e.is_timeout() => return Err(self.timeout_error()),
                Err(e) if e.is_connect() && attempt < self.max_retries => {
                    tracing::debug!(provider = %self.provider, attempt, "connection failed, retrying");
                    self.backoff_for(attempt)
                }
                Err(e) => {
                    return Err(PlannerError::Unavailable {
                        provider: self.provider.clone(),
                        message: scrub(&without_url(&e).to_string(), secret),
                    });
                }
                Ok(resp) if resp.status().is_success() => {
                    let kind = resp.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
                    if !kind.starts_with("text/event-stream") {
                        return Err(PlannerError::Unavailable {
                            provider: self.provider.clone(),
                            message: format!("answered with {kind:?}, not an event stream"),
                        });
                    }
                    let deadline = started
                        .checked_add(self.timeout)
                        .or_else(|| started.checked_add(Duration::from_secs(365 * 86_400)))
                        .unwrap_or(started);
                    return Ok(Sse::new(
                        BufReader::new(resp),
                        &self.provider,
                        self.timeout,
                        deadline,
                        MAX_STREAM_BYTES,
                    ));
                }
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = retry_after(&resp);
                    let transient = matches!(status.as_u16(), 502 | 503 | 504 | 529);
                    let wait = match (status, retry_after) {
                        (StatusCode::TOO_MANY_REQUESTS, Some(d)) if d <= self.max_retry_after => Some(d),
                        (_, Some(d)) if transient && d <= self.max_retry_after => Some(d),
                        (_, None) if transient => Some(self.backoff_for(attempt)),
                        _ => None,
                    };
                    match wait {
                        Some(d) if attempt < self.max_retries => {
                            tracing::debug!(provider = %self.provider, status = status.as_u16(), attempt, "transient failure, retrying");
                            d
                        }
                        _ => {
                            let text = resp.text().unwrap_or_default();
                            return Err(PlannerError::Http {
                                provider: self.provider.clone(),
                                status: status.as_u16(),
                                message: scrub(&error_message(&text), secret),
                            });
                        }
                    }
                }
            };
            std::thread::sleep(wait);
            attempt += 1;
        }
    }

    fn backoff_for(&self, attempt: u32) -> Duration {
        self.backoff.saturating_mul(2u32.saturating_pow(attempt))
    }
}

/// Headers that carry credentials: never from configuration, only from the keyring.
pub fn is_credential_header(name: &str) -> bool {
    ["authorization", "proxy-authorization", "api-key", "x-api-key", "cookie"]
        .contains(&name.to_ascii_lowercase().as_str())
}

/// `Retry-After` in seconds (the HTTP-date form is not worth a date parser here: it is
/// treated as absent, so a 429 carrying it is not retried).
fn retry_after(resp: &Response) -> Option<Duration> {
    let text = resp.headers().get(RETRY_AFTER)?.to_str().ok()?;
    text.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The URL can carry an Azure `api-version` but never a key; dropped anyway for brevity.
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "the provider");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The message of a provider's JSON error body (`{"error": {"message": …}}`, both
/// dialects), else the start of the body.
pub(crate) fn error_message(body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let message = parsed.as_ref().and_then(|v| {
        let e = v.get("error")?;
        e.get("message").and_then(Value::as_str).or_else(|| e.as_str()).map(str::to_string)
    });
    let text = message.unwrap_or_else(|| body.trim().to_string());
    shorten(&text, 300)
}

pub(crate) fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(max).collect();
        s.push('…');
        s
    }
}

/// Remove the key, and anything that looks like a (masked) key, from text a provider
/// sent back: OpenAI's 401 echoes the key's first and last characters.
pub(crate) fn scrub(text: &str, secret: Option<&Secret>) -> String {
    let mut out = text.to_string();
    if let Some(s) = secret.map(Secret::expose).filter(|s| !s.is_empty()) {
        out = out.replace(s, "[redacted]");
    }
    out.split(' ')
        .map(|word| {
            let token = word.trim_matches(|c: char| !c.is_ascii_alphanumeric() && c != '*');
            let keyish = token.len() >= 16
                && token.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '*'))
                && token.chars().any(|c| c.is_ascii_digit());
            if keyish || token.contains("**") || token.starts_with("sk-") {
                word.replace(token, "[redacted]")
            } else {
                word.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_hides_keys_and_masked_keys() {
        let key = Secret::new("sk-test-planted-0123456789abcdef");
        let text = "Incorrect API key provided: sk-test-***********cdef. Also sk-test-planted-0123456789abcdef.";
        let out = scrub(text, Some(&key));
        assert!(!out.contains("planted") && !out.contains("cdef"), "{out}");
        assert!(out.starts_with("Incorrect API key provided:"), "{out}");
    }

    #[test]
    fn error_messages_come_from_the_json_body() {
        assert_eq!(error_message(r#"{"error":{"message":"bad model","type":"invalid_request_error"}}"#), "bad model");
        assert_eq!(error_message("upstream down"), "upstream down");
    }
}
