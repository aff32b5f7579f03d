//! Idempotency keys, one place for the API and the pages: what a key may be, the
//! fingerprint of the request it came with, and the two ways a key arrives (the API's
//! `Idempotency-Key` header, a page form's `form_token` field). Applying a write under a
//! key (look the key up, answer the stored outcome or refuse another request, else apply
//! and store the outcome in the same transaction) is [`crate::DemoStore::write`]; the
//! SQL is `db::idempotency_lookup` / `db::idempotency_store`.

use sha2::{Digest, Sha256};

use crate::error::{ApiError, ErrorCode};

/// The longest key taken, header or form token.
pub(crate) const MAX_KEY: usize = 255;

/// Where form tokens live among the store's keys: the form token `K` is the key
/// `form:K`, never the API's `Idempotency-Key: K`.
const FORM_NAMESPACE: &str = "form:";

/// A write's idempotency key, and a fingerprint of the request it came with: the same
/// key must come with the same fingerprint.
#[derive(Debug)]
pub(crate) struct Idempotency {
    pub key: String,
    pub fingerprint: String,
}

/// 1 to [`MAX_KEY`] visible ASCII characters.
fn valid(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY && key.bytes().all(|b| b.is_ascii_graphic())
}

/// SHA-256 of `METHOD path`, a line break, then the request's bytes.
fn fingerprint(method: &str, path: &str, request: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update(b" ");
    hasher.update(path.as_bytes());
    hasher.update(b"\n");
    hasher.update(request);
    hex::encode(hasher.finalize())
}

impl Idempotency {
    /// The API's `Idempotency-Key` header: the same key must come with the same method,
    /// path and exact body bytes.
    pub(crate) fn from_header(key: &str, method: &str, path: &str, body: &[u8]) -> Result<Idempotency, ApiError> {
        if !valid(key) {
            return Err(ApiError::new(
                ErrorCode::InvalidIdempotencyKey,
                format!("Idempotency-Key must be 1 to {MAX_KEY} visible ASCII characters"),
            ));
        }
        Ok(Idempotency { key: key.to_owned(), fingerprint: fingerprint(method, path, body) })
    }

    /// A page form's `form_token` (surrounding whitespace dropped), in its own namespace:
    /// the same token must come with the same form (`path`) and the same fields
    /// (`request`: the form's fields that make the change, in a fixed order, without the
    /// CSRF token, so a retry from a new session is still the same request). `None`
    /// when the form came without one.
    pub(crate) fn from_form(token: &str, path: &str, request: &str) -> Result<Option<Idempotency>, ApiError> {
        let token = token.trim();
        if token.is_empty() {
            return Ok(None);
        }
        if !valid(token) {
            return Err(ApiError::new(
                ErrorCode::InvalidIdempotencyKey,
                format!("the form's form_token must be 1 to {MAX_KEY} visible ASCII characters: open the form again"),
            ));
        }
        Ok(Some(Idempotency {
            key: format!("{FORM_NAMESPACE}{token}"),
            fingerprint: fingerprint("POST", path, request.as_bytes()),
        }))
    }

    /// The refusal of another request under a key already used.
    pub(crate) fn reused(&self) -> ApiError {
        let message = match self.key.strip_prefix(FORM_NAMESPACE) {
            Some(token) => format!(
                "form_token {token:?} was already used for a different form or other fields; open the form again for a new change"
            ),
            None => format!(
                "Idempotency-Key {:?} was already used for a different request; use a new key for a new request",
                self.key
            ),
        };
        ApiError::new(ErrorCode::IdempotencyKeyReused, message)
    }
}
