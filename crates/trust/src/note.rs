//! Signed notes (C2SP `signed-note`), ed25519 only: the format transparency logs and
//! their witnesses use for checkpoints, so the team's witnessed checkpoints can be checked
//! by tools that know nothing of Countersign.
//!
//! ```text
//! <text: one or more lines, each ending in a newline>
//!
//! — <name> <base64(key hash (4 bytes) || ed25519 signature over the text (64 bytes))>
//! ```
//!
//! The key hash is the first 4 bytes of `SHA-256(name || "\n" || 0x01 || public key)`; a
//! verifier key is written `<name>+<key hash, 8 hex>+<base64(0x01 || public key)>`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::TrustError;
use crate::keys::{PublicKey, SecretKey, sha256};

/// The signature type byte of ed25519 in a key hash and a verifier key.
const ED25519: u8 = 0x01;
/// What starts a signature line: an em dash and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

fn bad(message: impl Into<String>) -> TrustError {
    TrustError::BadInput { message: message.into() }
}

/// A signer's name: not empty, no whitespace, no `+`.
fn check_name(name: &str) -> Result<(), TrustError> {
    if name.is_empty() || name.contains('+') || name.chars().any(char::is_whitespace) {
        return Err(bad(format!("{name:?} cannot name a note's signer (no spaces, no '+')")));
    }
    Ok(())
}

/// The 4-byte hash naming (`name`, `key`) in a signature line.
pub fn key_hash(name: &str, key: &PublicKey) -> [u8; 4] {
    let mut m = Vec::with_capacity(name.len() + 34);
    m.extend_from_slice(name.as_bytes());
    m.push(b'\n');
    m.push(ED25519);
    m.extend_from_slice(key.as_bytes());
    let h = sha256(&m);
    [h[0], h[1], h[2], h[3]]
}

/// The verifier key of (`name`, `key`): `<name>+<8 hex>+<base64(0x01 || key)>`.
pub fn verifier_key(name: &str, key: &PublicKey) -> String {
    let mut typed = vec![ED25519];
    typed.extend_from_slice(key.as_bytes());
    format!("{name}+{}+{}", hex::encode(key_hash(name, key)), STANDARD.encode(typed))
}

/// Check a note's text: lines ending in newlines, no other control characters, no
/// blank line (a blank line ends the text).
fn check_text(text: &str) -> Result<(), TrustError> {
    if text.is_empty() || !text.ends_with('\n') {
        return Err(bad("a note's text ends with a newline"));
    }
    if text.contains("\n\n") || text.starts_with('\n') {
        return Err(bad("a note's text has no blank line"));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(bad("a note's text has no control characters but newlines"));
    }
    Ok(())
}

/// Sign `text` as `name`: the note, text and one signature line.
pub fn sign(text: &str, name: &str, key: &SecretKey) -> Result<String, TrustError> {
    check_text(text)?;
    check_name(name)?;
    let mut sig = key_hash(name, &key.public("")).to_vec();
    sig.extend_from_slice(&key.sign_raw(text.as_bytes()));
    Ok(format!("{text}\n{SIGNATURE_PREFIX}{name} {}\n", STANDARD.encode(sig)))
}

/// The text of `note` if it carries a good signature by (`name`, `key`); signatures by
/// others are ignored. Refused: a malformed note, no signature by this signer, or one that
/// does not verify.
pub fn open(note: &str, name: &str, key: &PublicKey) -> Result<String, TrustError> {
    let split = note.rfind("\n\n").ok_or_else(|| bad("not a signed note (no blank line before its signatures)"))?;
    let (text, signatures) = (&note[..=split], &note[split + 2..]);
    check_text(text)?;
    if signatures.is_empty() || !signatures.ends_with('\n') {
        return Err(bad("a signed note ends with its signature lines"));
    }
    let want = key_hash(name, key);
    let mut found = false;
    for line in signatures.lines() {
        let rest = line.strip_prefix(SIGNATURE_PREFIX).ok_or_else(|| bad(format!("not a signature line: {line:?}")))?;
        let (signer, sig) = rest.split_once(' ').ok_or_else(|| bad(format!("not a signature line: {line:?}")))?;
        let sig = STANDARD.decode(sig).map_err(|_| bad(format!("the signature of {signer} is not base64")))?;
        if signer != name || sig.len() < 4 || sig[..4] != want {
            continue;
        }
        found = true;
        let Ok(sig) = <[u8; 64]>::try_from(&sig[4..]) else {
            return Err(bad(format!("the signature of {name} is not an ed25519 signature")));
        };
        if key.verify_raw(text.as_bytes(), &sig) {
            return Ok(text.to_string());
        }
    }
    Err(bad(if found {
        format!("the signature of {name} does not verify: the note was changed")
    } else {
        format!("the note carries no signature of {name} with this key")
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The example of the C2SP signed-note specification (and Go's `note` package).
    const SEED_B64: &str = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const TEXT: &str =
        "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const NOTE_SIG: &str = "\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    fn key() -> SecretKey {
        let raw = STANDARD.decode(SEED_B64).unwrap();
        assert_eq!(raw[0], ED25519);
        SecretKey::from_seed(&<[u8; 32]>::try_from(&raw[1..]).unwrap())
    }

    #[test]
    fn the_specifications_example_signs_and_opens_byte_for_byte() {
        let key = key();
        assert_eq!(verifier_key("PeterNeumann", &key.public("")), VKEY);
        let note = sign(TEXT, "PeterNeumann", &key).unwrap();
        assert_eq!(note, format!("{TEXT}{NOTE_SIG}"));
        assert_eq!(open(&note, "PeterNeumann", &key.public("")).unwrap(), TEXT);
    }

    #[test]
    fn a_changed_text_another_signer_or_a_malformed_note_does_not_open() {
        let key = key();
        let public = key.public("");
        let note = sign(TEXT, "PeterNeumann", &key).unwrap();
        let changed = note.replace("cryptography", "cryptographY");
        assert!(open(&changed, "PeterNeumann", &public).unwrap_err().to_string().contains("does not verify"));
        assert!(open(&note, "Someone", &public).unwrap_err().to_string().contains("no signature of Someone"));
        let other = SecretKey::generate().unwrap().public("");
        assert!(open(&note, "PeterNeumann", &other).is_err(), "another key of the same name");
        assert!(open(TEXT, "PeterNeumann", &public).is_err(), "no signatures");
        assert!(sign("no newline", "x", &key).is_err());
        assert!(sign("a\n\nb\n", "x", &key).is_err());
        assert!(sign("a\n", "with space", &key).is_err());
        // A second signer's line beside it does not matter.
        let cosigned = format!("{note}\u{2014} Other AAAAAAAA\n");
        assert_eq!(open(&cosigned, "PeterNeumann", &public).unwrap(), TEXT);
    }
}
