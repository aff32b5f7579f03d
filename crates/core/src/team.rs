//! What travels on the optional team plane, as data: signed entries (a lead's pause, the
//! team service's lease) and the "cut off" fact a desktop without a fresh lease decides
//! under. Signing and checking the bytes is `countersign-trust`'s; carrying them is
//! `countersign-plane`'s; this module only names the shapes, so that the evidence and
//! the decision function can hold them.

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::model::Pause;

/// A body and the ed25519 signature over it. The body is kept as the exact text that
/// was signed (JSON), so checking never depends on how a reader re-serialises it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedEntry {
    /// The signed JSON text.
    pub body: String,
    /// The signer's public key, hex.
    pub key: String,
    /// The signature, hex.
    pub signature: String,
}

/// Whether a team pause is in force or was cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TeamPauseState {
    Set,
    Cleared,
}

/// A pause for every desktop of a team, as a lead signs it. Clearing publishes the same
/// pause again, `cleared`, signed by whoever cleared it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamPause {
    pub team: String,
    pub state: TeamPauseState,
    pub pause: Pause,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleared_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleared_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear_reason: Option<String>,
}

/// The team service's proof of life, published every few seconds on the same bucket as
/// the pauses: a desktop that keeps seeing fresh ones knows its watch of the pauses is
/// alive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Lease {
    pub team: String,
    /// Rises with every lease the service publishes.
    pub seq: u64,
    /// The service's clock when it signed (shown, never trusted for freshness: a desktop
    /// measures freshness by its own clock from when it saw the lease).
    pub issued_at: Timestamp,
}

/// Why a desktop decides as cut off from its team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CutOff {
    /// When this desktop last saw a good lease, if ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_lease: Option<Timestamp>,
    pub reason: String,
    /// Not in the team the signed policy names at all (no valid enrolment): the seat's
    /// role is then only what it claims, so every write needs a lead's proof (at least
    /// `supervisor`), whatever the `[cut_off]` floor says.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unenrolled: bool,
}

/// A supervisor step waiting on an agent's desk, put on the team plane for the leads: what
/// a lead needs to decide it from their own desk. Not signed: a lead's grant binds to the
/// step's digest, plan and policy, which the agent's desk checks against its own record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRequest {
    pub team: String,
    /// The desk whose step it is.
    pub device: String,
    pub request_id: String,
    pub case_id: String,
    pub plan_id: String,
    pub step_id: String,
    pub action: String,
    pub step_digest: String,
    pub policy_hash: String,
    /// The step's parameters (values only).
    pub params: serde_json::Map<String, serde_json::Value>,
    /// Why it needs a lead (the decision's reasons, most restrictive first).
    pub reasons: Vec<String>,
    /// The case in brief: where the customer wrote, and their latest words (trimmed).
    pub context: String,
    /// Who sits at the desk.
    pub requested_by: String,
    pub requested_at: Timestamp,
}

/// A lead's answer to an [`ApprovalRequest`], signed with the lead's device key over the
/// step digest, plan, policy (the pack's hash), expiry and a nonce. The agent's desk uses
/// it once, for that step only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    pub team: String,
    pub device: String,
    pub request_id: String,
    pub plan_id: String,
    pub step_id: String,
    pub step_digest: String,
    pub policy_hash: String,
    pub verdict: crate::evidence::Verdict,
    pub reason: String,
    /// The lead (a roster id).
    pub by: String,
    pub expires_at: Timestamp,
    pub nonce: String,
}

/// A lead's verdict on a case an escalation signal handed to a human, signed with the
/// lead's team key (the key the signed pack's roster lists for them): was the handoff
/// right? The team counts it by that key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalationVerdict {
    pub team: String,
    /// The desk (device id) whose case it is.
    pub desk: String,
    pub case_id: String,
    pub right: bool,
    pub reason: String,
    /// The lead's roster id.
    pub by: String,
    pub at: Timestamp,
}
