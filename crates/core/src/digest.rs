//! Canonical JSON (RFC 8785) and SHA-256 digests of domain values.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::model::Step;

/// RFC 8785 canonical JSON of a value.
pub fn canonical_json<T: Serialize>(value: &T) -> String {
    // Serialising our own types to JSON cannot fail: no maps with non-string
    // keys and no floats exist in them.
    serde_json_canonicalizer::to_string(value)
        .unwrap_or_else(|e| format!("{{\"unserialisable\":{:?}}}", e.to_string()))
}

/// `sha256:<hex>` of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The digest an approval binds to: the action and its parameters (values and
/// provenance), canonically encoded. Any change to either yields another digest.
pub fn step_digest(step: &Step) -> String {
    #[derive(Serialize)]
    struct Bound<'a> {
        action: &'a str,
        params: &'a std::collections::BTreeMap<String, crate::model::Param>,
    }
    sha256_hex(
        canonical_json(&Bound {
            action: &step.action,
            params: &step.params,
        })
        .as_bytes(),
    )
}
