//! The team service's witness of a desk's checkpoint: once the team has verified a desk's
//! signed checkpoint (its event count and head) against the events it holds, the service
//! co-signs it as a signed note ([`crate::note`]), in the shape of a transparency log's
//! checkpoint:
//!
//! ```text
//! countersign/evidence/<team>/<device>
//! <count>
//! <base64 of the head: the hash of the desk's count-th event>
//!
//! — countersign-team.<team> <base64(key hash || signature)>
//! ```
//!
//! A desk that later rewrites any of those events no longer ends at that head: checking
//! its log against the note ([`open`]) names the difference. The signer is the team
//! service's key (the one that signs the lease; desks have it from their enrolment).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::TrustError;
use crate::keys::{PublicKey, SecretKey};

/// What a desk's log is called in a witnessed checkpoint.
pub fn origin(team: &str, device: &str) -> String {
    format!("countersign/evidence/{team}/{device}")
}

/// The name the team service signs as.
pub fn signer(team: &str) -> String {
    format!("countersign-team.{team}")
}

/// What the team witnessed of one desk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witnessed {
    pub count: u64,
    pub head: [u8; 32],
}

/// The note's text for `device`'s log of `count` events ending in `head`.
pub fn text(team: &str, device: &str, count: u64, head: &[u8; 32]) -> String {
    format!("{}\n{count}\n{}\n", origin(team, device), STANDARD.encode(head))
}

/// Co-sign `device`'s checkpoint with the team service's key.
pub fn sign(team: &str, device: &str, count: u64, head: &[u8; 32], key: &SecretKey) -> Result<String, TrustError> {
    crate::note::sign(&text(team, device, count, head), &signer(team), key)
}

/// Open a witnessed checkpoint of `device` in `team`, signed by the service's `key`.
pub fn open(note: &str, team: &str, device: &str, key: &PublicKey) -> Result<Witnessed, TrustError> {
    let text = crate::note::open(note, &signer(team), key)?;
    let bad = |m: &str| TrustError::BadInput { message: format!("a witnessed checkpoint: {m}") };
    let mut lines = text.lines();
    if lines.next() != Some(origin(team, device).as_str()) {
        return Err(bad(&format!("not of {}", origin(team, device))));
    }
    let count = lines.next().and_then(|l| l.parse::<u64>().ok()).ok_or_else(|| bad("no count"))?;
    let head = lines
        .next()
        .and_then(|l| STANDARD.decode(l).ok())
        .and_then(|h| <[u8; 32]>::try_from(h.as_slice()).ok())
        .ok_or_else(|| bad("no head"))?;
    Ok(Witnessed { count, head })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_witnessed_checkpoint_opens_only_for_its_team_desk_and_key() {
        let key = SecretKey::generate().unwrap();
        let head = crate::keys::sha256(b"event 7");
        let note = sign("acme", "desk-1", 7, &head, &key).unwrap();
        assert!(note.starts_with("countersign/evidence/acme/desk-1\n7\n"), "{note}");
        assert!(note.contains("\n\n\u{2014} countersign-team.acme "), "{note}");
        let public = key.public("");
        assert_eq!(open(&note, "acme", "desk-1", &public).unwrap(), Witnessed { count: 7, head });
        assert!(open(&note, "acme", "desk-2", &public).is_err(), "another desk");
        assert!(open(&note, "other", "desk-1", &public).is_err(), "another team");
        assert!(open(&note, "acme", "desk-1", &SecretKey::generate().unwrap().public("")).is_err(), "another key");
        assert!(open(&note.replacen("\n7\n", "\n8\n", 1), "acme", "desk-1", &public).is_err(), "another count");
    }
}
