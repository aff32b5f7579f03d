//! Device identity: each installation has an ed25519 key in the OS keyring (key slot
//! `device`, created on first use) that signs checkpoints of its evidence log, so a team
//! lead can tell which machine a log (or an exported bundle) came from, and that it was
//! not rewritten since.
//!
//! The statement a checkpoint signs:
//!
//! ```text
//! signature = ed25519(device key, "countersign/checkpoint/v1\n" || SHA-256(count as u64 BE || head))
//! ```
//!
//! where `head` is the hash of the log's `count`-th event. Recording a checkpoint and
//! checking one against the log's events is the engine's (`checkpoints.rs`): this module
//! knows keys and bytes, not the log. The device key never leaves the keyring; only its
//! public half is recorded.

use countersign_connectors::credentials::KeyringStore;

use crate::TrustError;
use crate::keys::{PublicKey, SecretKey, sha256};

/// The keyring slot of the device key.
pub const DEVICE_SLOT: &str = "device";
/// What a checkpoint signature signs.
pub const CHECKPOINT_DOMAIN: &str = "countersign/checkpoint/v1";

/// This installation's device key in `keyring`, created (and stored there) on first use.
pub fn device_key(keyring: &KeyringStore) -> Result<SecretKey, TrustError> {
    // One maker at a time in this process: the keyring has no create-if-absent, so two
    // threads making it at once could each keep a key the other then overwrote.
    static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = MAKING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(k) = SecretKey::from_keyring(keyring, DEVICE_SLOT)? {
        return Ok(k);
    }
    let key = SecretKey::generate()?;
    match key.store_in_keyring(keyring, DEVICE_SLOT) {
        Ok(()) => Ok(key),
        // Another process made it first: use that one.
        Err(TrustError::Conflict { .. }) => SecretKey::from_keyring(keyring, DEVICE_SLOT)?
            .ok_or_else(|| TrustError::Conflict { message: "the device key vanished from the keyring".into() }),
        Err(e) => Err(e),
    }
}

/// `SHA-256(count as u64 BE || head)`: what a checkpoint of `count` events, the last of
/// them hashed `head`, signs.
pub fn checkpoint_digest(count: u64, head: &[u8; 32]) -> [u8; 32] {
    let mut m = [0u8; 40];
    m[..8].copy_from_slice(&count.to_be_bytes());
    m[8..].copy_from_slice(head);
    sha256(&m)
}

/// Sign the checkpoint of `count` events ending in `head`.
pub fn sign_checkpoint(key: &SecretKey, count: u64, head: &[u8; 32]) -> [u8; 64] {
    key.sign(CHECKPOINT_DOMAIN, &checkpoint_digest(count, head))
}

/// Does `signature` sign the checkpoint of `count` events ending in `head` with `key`?
pub fn verify_checkpoint(key: &PublicKey, count: u64, head: &[u8; 32], signature: &[u8; 64]) -> bool {
    key.verify(CHECKPOINT_DOMAIN, &checkpoint_digest(count, head), signature)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_signature_binds_count_and_head() {
        let key = SecretKey::generate().unwrap();
        let head = sha256(b"event 7");
        let sig = sign_checkpoint(&key, 7, &head);
        let public = key.public("device");
        assert!(verify_checkpoint(&public, 7, &head, &sig));
        assert!(!verify_checkpoint(&public, 6, &head, &sig), "another count is another statement");
        assert!(!verify_checkpoint(&public, 7, &sha256(b"event 7'"), &sig), "another head is another statement");
        assert!(
            !public.verify(crate::release::RELEASE_DOMAIN, &checkpoint_digest(7, &head), &sig),
            "a checkpoint signature is not a release signature"
        );
    }
}
