//! Signing and checking what travels on the team plane (a lead's pause, the team
//! service's lease). The shapes are core's [`countersign_core::team`]; this module knows
//! the bytes:
//!
//! ```text
//! signature = ed25519(key, DOMAIN || '\n' || SHA-256(body))
//! ```
//!
//! with a domain per kind, so a signature over one kind never passes for another.

use countersign_core::team::SignedEntry;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::TrustError;
use crate::keys::{PublicKey, SecretKey, key_id, sha256};

/// What a team pause's signature signs.
pub const PAUSE_DOMAIN: &str = "countersign/team-pause/v1";
/// What a lease's signature signs.
pub const LEASE_DOMAIN: &str = "countersign/team-lease/v1";
/// What a lead's grant (an answer to a supervisor step) signs.
pub const GRANT_DOMAIN: &str = "countersign/team-grant/v1";
/// What a lead's ask of the team's view signs.
pub const VIEW_DOMAIN: &str = "countersign/team-view/v1";
/// What a lead's verdict on an escalation signs.
pub const VERDICT_DOMAIN: &str = "countersign/team-verdict/v1";

/// A fresh nonce (128 bits, hex): what makes each grant usable once.
pub fn nonce() -> Result<String, TrustError> {
    let mut n = [0u8; 16];
    getrandom::fill(&mut n).map_err(|e| TrustError::System { message: format!("no randomness for a nonce: {e}") })?;
    Ok(hex::encode(n))
}

/// Sign `body` (serialised to JSON) under `domain` with `key`.
pub fn sign<T: Serialize>(domain: &str, body: &T, key: &SecretKey) -> Result<SignedEntry, TrustError> {
    let body = serde_json::to_string(body)
        .map_err(|e| TrustError::System { message: format!("serialising a signed entry: {e}") })?;
    let signature = key.sign(domain, &sha256(body.as_bytes()));
    Ok(SignedEntry { body, key: key.public("").to_hex(), signature: hex::encode(signature) })
}

/// Why a signed entry was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryProblem {
    #[error("signed by key {key_id}, which is not one this desktop trusts for it")]
    UnknownKey { key_id: String },
    #[error("the signature does not match the entry (altered, or signed for something else)")]
    BadSignature,
    #[error("the entry is malformed: {0}")]
    Malformed(String),
}

/// Check `entry` under `domain` against `trusted`, and read its body. Returns the key
/// that signed it and the body.
pub fn open<'k, T: DeserializeOwned>(
    domain: &str,
    entry: &SignedEntry,
    trusted: &'k [PublicKey],
) -> Result<(&'k PublicKey, T), EntryProblem> {
    // Matched by its bytes: only a trusted key (already a valid point) is ever used.
    let mut key = [0u8; 32];
    hex::decode_to_slice(&entry.key, &mut key)
        .map_err(|_| EntryProblem::Malformed("a public key is 64 hex digits".into()))?;
    let signer =
        trusted.iter().find(|k| k.as_bytes() == &key).ok_or(EntryProblem::UnknownKey { key_id: key_id(&key) })?;
    let mut signature = [0u8; 64];
    hex::decode_to_slice(&entry.signature, &mut signature)
        .map_err(|_| EntryProblem::Malformed("the signature is not 128 hex digits".into()))?;
    if !signer.verify(domain, &sha256(entry.body.as_bytes()), &signature) {
        return Err(EntryProblem::BadSignature);
    }
    let body = serde_json::from_str(&entry.body).map_err(|e| EntryProblem::Malformed(e.to_string()))?;
    Ok((signer, body))
}

#[cfg(test)]
mod tests {
    use countersign_core::team::Lease;

    use super::*;

    fn lease() -> Lease {
        Lease { team: "acme".into(), seq: 7, issued_at: "2026-12-03T10:00:00Z".parse().expect("time") }
    }

    #[test]
    fn an_entry_opens_with_its_key_and_domain_only() {
        let key = SecretKey::generate().expect("key");
        let other = SecretKey::generate().expect("key");
        let entry = sign(LEASE_DOMAIN, &lease(), &key).expect("sign");
        let trusted = [key.public("service")];
        let (signer, body): (_, Lease) = open(LEASE_DOMAIN, &entry, &trusted).expect("opens");
        assert_eq!(signer.id(), key.public("").id());
        assert_eq!(body, lease());

        // Another domain: a lease signature never passes for a pause.
        assert_eq!(open::<Lease>(PAUSE_DOMAIN, &entry, &trusted).expect_err("refused"), EntryProblem::BadSignature);
        // A key this desktop does not trust.
        let untrusted = [other.public("x")];
        assert!(matches!(open::<Lease>(LEASE_DOMAIN, &entry, &untrusted), Err(EntryProblem::UnknownKey { .. })));
        // An altered body.
        let mut altered = entry.clone();
        altered.body = altered.body.replace("\"seq\":7", "\"seq\":8");
        assert_eq!(open::<Lease>(LEASE_DOMAIN, &altered, &trusted).expect_err("refused"), EntryProblem::BadSignature);
        // A key swapped for another trusted one does not carry the signature over.
        let mut swapped = entry;
        swapped.key = other.public("").to_hex();
        let both = [key.public(""), other.public("")];
        assert_eq!(open::<Lease>(LEASE_DOMAIN, &swapped, &both).expect_err("refused"), EntryProblem::BadSignature);
    }
}
