//! Push from a source: a platform's webhook says "something changed", and the source is
//! synced at once instead of at its next poll.
//!
//! A webhook is a nudge, never content: the case is still read through the source's API
//! from the stored cursor, so a forged or replayed webhook can at most cause one more
//! sync. Its signature is still checked (a flood of unsigned calls must not drive the
//! API into its rate limit): Zendesk signs `timestamp + body` with HMAC-SHA256 under the
//! webhook's signing secret and sends the base64 signature and the timestamp in
//! `X-Zendesk-Webhook-Signature` and `X-Zendesk-Webhook-Signature-Timestamp`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::credentials::Secret;

/// The Zendesk signature header.
pub const ZENDESK_SIGNATURE: &str = "x-zendesk-webhook-signature";
/// The Zendesk signature timestamp header.
pub const ZENDESK_TIMESTAMP: &str = "x-zendesk-webhook-signature-timestamp";

/// How far a webhook's timestamp may be from now (a replay of an old call is refused).
pub const MAX_SKEW_SECS: i64 = 300;

/// Why a webhook call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushRefused {
    #[error("the call is not signed (no {0} header)")]
    Unsigned(&'static str),
    #[error("the signature does not match the body")]
    BadSignature,
    #[error("the signature's timestamp {0:?} is not a time")]
    BadTimestamp(String),
    #[error("the call was signed {0} s away from now: a replay or a wrong clock")]
    Stale(i64),
}

/// Check a Zendesk webhook call: `signature` (base64) must be HMAC-SHA256 of
/// `timestamp + body` under `secret`, and `timestamp` within [`MAX_SKEW_SECS`] of `now`.
pub fn verify_zendesk(
    secret: &Secret,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: jiff::Timestamp,
) -> Result<(), PushRefused> {
    use base64::Engine as _;
    let timestamp = timestamp.ok_or(PushRefused::Unsigned(ZENDESK_TIMESTAMP))?;
    let signature = signature.ok_or(PushRefused::Unsigned(ZENDESK_SIGNATURE))?;
    let at: jiff::Timestamp = timestamp.parse().map_err(|_| PushRefused::BadTimestamp(timestamp.to_owned()))?;
    let skew = (now.as_second() - at.as_second()).abs();
    if skew > MAX_SKEW_SECS {
        return Err(PushRefused::Stale(skew));
    }
    let given =
        base64::engine::general_purpose::STANDARD.decode(signature.trim()).map_err(|_| PushRefused::BadSignature)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).map_err(|_| PushRefused::BadSignature)?;
    mac.update(timestamp.as_bytes());
    mac.update(body);
    // Constant-time comparison.
    mac.verify_slice(&given).map_err(|_| PushRefused::BadSignature)
}

/// The signature Zendesk would send for `timestamp + body` (tests, and tools that replay
/// a webhook to a listener).
pub fn sign_zendesk(secret: &Secret, timestamp: &str, body: &[u8]) -> String {
    use base64::Engine as _;
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()) else { return String::new() };
    mac.update(timestamp.as_bytes());
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn now() -> jiff::Timestamp {
        "2026-12-03T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_signed_call_verifies_and_any_change_does_not() {
        let secret = Secret::new("dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ==");
        let ts = "2026-12-03T09:59:30Z";
        let body = br#"{"type":"zen:event-type:ticket.comment_added","detail":{"id":"35436"}}"#;
        let sig = sign_zendesk(&secret, ts, body);
        assert_eq!(verify_zendesk(&secret, Some(ts), Some(&sig), body, now()), Ok(()));
        let mut tampered = body.to_vec();
        tampered[10] ^= 1;
        assert_eq!(verify_zendesk(&secret, Some(ts), Some(&sig), &tampered, now()), Err(PushRefused::BadSignature));
        let other = Secret::new("another secret");
        assert_eq!(verify_zendesk(&other, Some(ts), Some(&sig), body, now()), Err(PushRefused::BadSignature));
        assert_eq!(
            verify_zendesk(&secret, Some("2026-12-03T09:59:31Z"), Some(&sig), body, now()),
            Err(PushRefused::BadSignature),
            "the timestamp is signed too"
        );
        assert_eq!(
            verify_zendesk(&secret, None, Some(&sig), body, now()),
            Err(PushRefused::Unsigned(ZENDESK_TIMESTAMP))
        );
        assert_eq!(verify_zendesk(&secret, Some(ts), None, body, now()), Err(PushRefused::Unsigned(ZENDESK_SIGNATURE)));
        assert_eq!(verify_zendesk(&secret, Some(ts), Some("not base64!"), body, now()), Err(PushRefused::BadSignature));
    }

    #[test]
    fn an_old_call_is_refused_as_a_replay() {
        let secret = Secret::new("s");
        let ts = "2026-12-03T09:50:00Z";
        let sig = sign_zendesk(&secret, ts, b"{}");
        assert_eq!(verify_zendesk(&secret, Some(ts), Some(&sig), b"{}", now()), Err(PushRefused::Stale(600)));
        assert!(matches!(
            verify_zendesk(&secret, Some("yesterday"), Some(&sig), b"{}", now()),
            Err(PushRefused::BadTimestamp(_))
        ));
    }
}
