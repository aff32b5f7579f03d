//! The hash chain: event bodies, link hashes, the genesis value, and the check that
//! `verify`, `verify_bundle` and the exporter share.
//!
//! ```text
//! body_n = canonical JSON (RFC 8785) of {"actor","at","case_id","kind","payload","seq"}
//! h_0    = SHA-256("countersign/evidence/v1/genesis")
//! h_n    = SHA-256(0x00 || h_{n-1} || body_n)
//! ```
//!
//! The leading `0x00` is a domain tag: later record types (checkpoints over a range,
//! Merkle nodes) will use other tags, so no hash of one kind can be passed off as another.
//! `seq` is inside the hashed body, so moving an event changes what its hash covers.
//! Canonical JSON sorts keys, so `"seq"` is always the last key: its value can be read from
//! the end of the stored bytes without parsing the JSON, which keeps `verify` fast.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::verify::{Broken, Problem};

/// The string whose SHA-256 is the genesis value the first event chains from.
pub const GENESIS_LABEL: &str = "countersign/evidence/v1/genesis";

/// Domain tag for an event link.
const EVENT_TAG: u8 = 0x00;

/// A SHA-256 value in the chain. Shown and serialised as lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// `SHA-256("countersign/evidence/v1/genesis")`: what the first event chains from.
    pub fn genesis() -> Hash {
        Hash(Sha256::digest(GENESIS_LABEL.as_bytes()).into())
    }

    /// `SHA-256(0x00 || prev || body)`: the hash of the event with `body` following `prev`.
    pub fn link(prev: &Hash, body: &[u8]) -> Hash {
        let mut h = Sha256::new();
        h.update([EVENT_TAG]);
        h.update(prev.0);
        h.update(body);
        Hash(h.finalize().into())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parse 64 hex digits.
    pub fn from_hex(s: &str) -> Option<Hash> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(Hash(out))
    }

    pub(crate) fn from_slice(b: &[u8]) -> Option<Hash> {
        <[u8; 32]>::try_from(b).ok().map(Hash)
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl Serialize for Hash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Hash::from_hex(&s).ok_or_else(|| serde::de::Error::custom("expected 64 hex digits"))
    }
}

/// Read the top-level `seq` from the end of a canonical body (`...,"seq":123}`) without
/// parsing the JSON. `None` if the body does not end that way.
pub(crate) fn body_seq(body: &[u8]) -> Option<u64> {
    let rest = body.strip_suffix(b"}")?;
    let digits_start = rest.iter().rposition(|b| !b.is_ascii_digit()).map_or(0, |i| i + 1);
    let (head, digits) = rest.split_at(digits_start);
    if digits.is_empty() || digits.len() > 16 || (digits.len() > 1 && digits[0] == b'0') {
        return None;
    }
    if !(head.ends_with(b",\"seq\":") || head == b"{\"seq\":") {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Check one event that arrived from elsewhere (the team service's copy of a desk's log),
/// exactly as [`crate::verify`] checks a stored one: `body` must be the canonical body of
/// event `seq` and hash, after `prev`, to `hash`. Returns the event read back from `body`.
pub fn check_event(prev: &Hash, seq: u64, body: &str, hash: &Hash) -> Result<crate::StoredEvent, Broken> {
    check_link(prev, seq, body, hash)?;
    crate::evidence::parse_stored(seq, body.to_string(), &hash.0)
        .map_err(|e| Broken { seq, problem: Problem::BadBody { reason: e.to_string() } })
}

/// The chain's rule alone for the event after `prev`: its body ends with `seq` and hashes,
/// linked to `prev`, to `hash`. The body is not read ([`check_event`] reads it too).
pub fn check_link(prev: &Hash, seq: u64, body: &str, hash: &Hash) -> Result<(), Broken> {
    ChainCheck { next: seq, prev: *prev }.check(body.as_bytes(), &hash.0)
}

/// Walks a log in storage order and stops at the first broken event.
///
/// `position` is where the event sits: the row's seq in the database, the line number in a
/// bundle. Callers check gaps in positions themselves (they know whether a gap can exist).
#[derive(Debug)]
pub(crate) struct ChainCheck {
    /// The seq the next event must have.
    pub next: u64,
    /// The hash of the last good event (genesis before the first).
    pub prev: Hash,
}

impl ChainCheck {
    pub fn new() -> ChainCheck {
        ChainCheck { next: 1, prev: Hash::genesis() }
    }

    /// Check the event expected at `self.next`, stored with `body` and `stored_hash`.
    pub fn check(&mut self, body: &[u8], stored_hash: &[u8]) -> Result<(), Broken> {
        let seq = self.next;
        let broken = |problem| Err(Broken { seq, problem });
        let Some(found_seq) = body_seq(body) else {
            return broken(Problem::BadBody { reason: "the body does not end with its seq".into() });
        };
        if found_seq != seq {
            return broken(Problem::Reordered { found_seq });
        }
        let Some(stored) = Hash::from_slice(stored_hash) else {
            return broken(Problem::BadBody { reason: "the stored hash is not 32 bytes".into() });
        };
        if Hash::link(&self.prev, body) != stored {
            return broken(Problem::HashMismatch);
        }
        self.prev = stored;
        self.next += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn genesis_is_the_documented_constant() {
        // The same value is written into migration 0001 and the bundle's verify.py.
        assert_eq!(Hash::genesis().to_hex(), "0477f3b2c19228728287b426817d2c0ad98e1d9e781409706f389836bfdf753d");
    }

    #[test]
    fn check_event_takes_the_next_event_only_as_the_store_hashed_it() {
        let ev = crate::NewEvent {
            case_id: None,
            kind: "note".into(),
            actor: "a".into(),
            at: jiff::Timestamp::UNIX_EPOCH,
            payload: serde_json::json!({"amount_minor": 1200}),
        };
        let prev = Hash::genesis();
        let body = crate::canonical_body(1, &ev).unwrap();
        let hash = Hash::link(&prev, body.as_bytes());
        let read = check_event(&prev, 1, &body, &hash).unwrap();
        assert_eq!((read.seq, read.kind.as_str(), read.payload["amount_minor"].as_i64()), (1, "note", Some(1200)));
        let edited = body.replace("1200", "9900");
        assert_eq!(check_event(&prev, 1, &edited, &hash).unwrap_err().problem, Problem::HashMismatch);
        let other = Hash::link(&hash, body.as_bytes());
        assert_eq!(check_event(&other, 1, &body, &hash).unwrap_err().problem, Problem::HashMismatch, "another prev");
        assert_eq!(check_event(&prev, 2, &body, &hash).unwrap_err().problem, Problem::Reordered { found_seq: 1 });
    }

    #[test]
    fn body_seq_reads_only_a_trailing_top_level_seq() {
        assert_eq!(body_seq(br#"{"a":1,"seq":42}"#), Some(42));
        assert_eq!(body_seq(br#"{"seq":7}"#), Some(7));
        assert_eq!(body_seq(br#"{"a":{"seq":3}}"#), None);
        assert_eq!(body_seq(br#"{"a":1,"seq":042}"#), None);
        assert_eq!(body_seq(br#"{"a":1,"xseq":4}"#), None);
        assert_eq!(body_seq(b"}"), None);
        assert_eq!(body_seq(b""), None);
    }
}
