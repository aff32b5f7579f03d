//! Signed checkpoints of the evidence log: the device key (`countersign_trust::device`,
//! in the OS keyring) signs the log's head, so a team lead can tell which machine a log
//! (or an exported bundle) came from, and that it was not rewritten since.
//!
//! A checkpoint is an evidence event:
//!
//! ```text
//! checkpoint { count, head, device_key, signature }
//! signature = ed25519(device key, "countersign/checkpoint/v1\n" || SHA-256(count as u64 BE || head))
//! ```
//!
//! It is written on demand (`countersign log checkpoint`) and before every export. Checking
//! one ([`check_checkpoints`]) means: the signature verifies with the key it names, the
//! checkpoint sits after the event it counts, and that event's hash in the log is the head
//! it signed. Rewriting any event up to a checkpoint then needs the device key.
//! The signature itself (its statement, signing, verifying) is `countersign_trust::device`'s;
//! this module finds checkpoints in the log and checks them against its events.

use serde::Serialize;

use countersign_core::evidence::Event;
use countersign_store::{EventFilter, Hash};

use crate::device;
use crate::keys::{PublicKey, SecretKey, key_id};
use crate::{Engine, EngineError};

/// This installation's device key, created (and stored in the keyring) on first use.
fn device_key() -> Result<SecretKey, EngineError> {
    Ok(device::device_key(&crate::credentials::keyring())?)
}

/// A checkpoint as written.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointInfo {
    /// The checkpoint event's own seq.
    pub seq: u64,
    /// Events covered, and the hash of the last of them.
    pub count: u64,
    pub head: String,
    pub device_key_id: String,
    pub device_key: String,
}

/// How one checkpoint checked.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointCheck {
    pub seq: u64,
    pub count: u64,
    pub device_key_id: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// Every checkpoint of a log or bundle, and the devices that signed them.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointReport {
    /// Every checkpoint verifies (true when there are none: see `checkpoints`).
    pub ok: bool,
    pub checkpoints: Vec<CheckpointCheck>,
    /// Key ids of the devices whose checkpoints verified.
    pub devices: Vec<String>,
}

/// A checkpoint event found in a log: its seq, and the event read back (`None` when it
/// cannot be read: it is reported as a checkpoint that does not hold).
#[derive(Debug, Clone)]
pub struct FoundCheckpoint {
    pub seq: u64,
    pub event: Option<Event>,
}

impl FoundCheckpoint {
    /// The events the checkpoint counts, if it can be read.
    fn count(&self) -> Option<u64> {
        match &self.event {
            Some(Event::Checkpoint { count, .. }) => Some(*count),
            _ => None,
        }
    }
}

/// Check checkpoints against the hashes of the log they are in (`hash_at(n)`: the stored
/// hash of event n, `None` if absent).
pub fn check_checkpoints(found: &[FoundCheckpoint], hash_at: impl Fn(u64) -> Option<Hash>) -> CheckpointReport {
    let mut checks = Vec::new();
    let mut devices = std::collections::BTreeSet::new();
    for f in found {
        let Some(Event::Checkpoint { count, head, device_key, signature }) = f.event.clone() else {
            checks.push(CheckpointCheck {
                seq: f.seq,
                count: 0,
                device_key_id: String::new(),
                ok: false,
                problem: Some("unreadable checkpoint payload".into()),
            });
            continue;
        };
        let mut key_bytes = [0u8; 32];
        let key_ok = hex::decode_to_slice(&device_key, &mut key_bytes).is_ok();
        let id = if key_ok { key_id(&key_bytes) } else { String::new() };
        let problem = (|| {
            let public = PublicKey::from_bytes(&key_bytes, "").map_err(|e| format!("device key: {e}"))?;
            let head = Hash::from_hex(&head).ok_or("the head is not 64 hex digits")?;
            let mut sig = [0u8; 64];
            hex::decode_to_slice(&signature, &mut sig).map_err(|_| "the signature is not 128 hex digits")?;
            if !device::verify_checkpoint(&public, count, &head.0, &sig) {
                return Err("the signature does not verify: the checkpoint was edited".to_string());
            }
            if count >= f.seq {
                return Err(format!("it counts {count} events but sits at event {}", f.seq));
            }
            let at = if count == 0 { Some(Hash::genesis()) } else { hash_at(count) };
            match at {
                None => Err(format!("event {count}, which it signed, is missing")),
                Some(h) if h != head => {
                    Err(format!("event {count} is not the one it signed: the log was rewritten up to it"))
                }
                Some(_) => Ok(()),
            }
        })()
        .err();
        if problem.is_none() {
            devices.insert(id.clone());
        }
        checks.push(CheckpointCheck { seq: f.seq, count, device_key_id: id, ok: problem.is_none(), problem });
    }
    CheckpointReport { ok: checks.iter().all(|c| c.ok), checkpoints: checks, devices: devices.into_iter().collect() }
}

/// One line of a bundle's `events.jsonl`: the event as stored, and its chain hash.
#[derive(Debug, serde::Deserialize)]
struct BundleLine {
    event: BundleEvent,
    hash: String,
}

#[derive(Debug, serde::Deserialize)]
struct BundleEvent {
    seq: u64,
    kind: String,
    payload: serde_json::Value,
}

/// Check the checkpoints of an exported bundle (`events.jsonl`).
pub fn check_bundle_checkpoints(dir: &std::path::Path) -> Result<CheckpointReport, EngineError> {
    let path = dir.join("events.jsonl");
    let text = std::fs::read_to_string(&path).map_err(|e| EngineError::io(&path, e))?;
    let mut hashes = std::collections::BTreeMap::new();
    let mut found = Vec::new();
    for line in text.lines() {
        let Ok(line) = serde_json::from_str::<BundleLine>(line) else { continue };
        let seq = line.event.seq;
        if let Some(h) = Hash::from_hex(&line.hash) {
            hashes.insert(seq, h);
        }
        if line.event.kind == "checkpoint" {
            found.push(FoundCheckpoint { seq, event: Event::from_parts(&line.event.kind, &line.event.payload).ok() });
        }
    }
    Ok(check_checkpoints(&found, |n| hashes.get(&n).copied()))
}

impl Engine {
    /// This installation's device public key (the key is created on first use).
    pub fn device_public_key(&self) -> Result<PublicKey, EngineError> {
        Ok(device_key()?.public("device"))
    }

    /// Sign the log's current head with the device key and record it as a `checkpoint`.
    pub fn checkpoint(&self) -> Result<CheckpointInfo, EngineError> {
        let key = device_key()?;
        let head = self.store.head()?;
        let sig = device::sign_checkpoint(&key, head.count, &head.hash.0);
        let public = key.public("device");
        let event = Event::Checkpoint {
            count: head.count,
            head: head.hash.to_hex(),
            device_key: public.to_hex(),
            signature: hex::encode(sig),
        };
        let appended = self.store.append(self.new_event(None, &self.operator.id, &event))?;
        Ok(CheckpointInfo {
            seq: appended.seq,
            count: head.count,
            head: head.hash.to_hex(),
            device_key_id: public.id(),
            device_key: public.to_hex(),
        })
    }

    /// Check every checkpoint in this log.
    pub fn verify_checkpoints(&self) -> Result<CheckpointReport, EngineError> {
        let found: Vec<FoundCheckpoint> = self
            .store
            .list_events(&EventFilter { kind: Some("checkpoint".into()), ..EventFilter::default() })?
            .into_iter()
            .map(|e| FoundCheckpoint { seq: e.seq, event: e.event().ok() })
            .collect();
        let mut hashes = std::collections::BTreeMap::new();
        for n in found.iter().filter_map(FoundCheckpoint::count) {
            if let Some(e) = self.store.event(n)? {
                hashes.insert(n, e.hash);
            }
        }
        Ok(check_checkpoints(&found, |n| hashes.get(&n).copied()))
    }

    /// Before an export: a checkpoint if the keyring can be reached (an export must not
    /// fail for want of a keyring; the bundle then simply has no new checkpoint).
    pub(crate) fn checkpoint_before_export(&self) -> Option<CheckpointInfo> {
        match self.checkpoint() {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!("no device checkpoint before the export: {e}");
                None
            }
        }
    }
}
