//! The policy file as written: TOML, every table closed to unknown keys, with
//! source spans kept on the values that later checks may need to point at.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_spanned::Spanned;

use super::{CutOffPolicy, Kind, Layer, Outcome, ParamType, PromiseCategory, Risk, SignalCategory};
use crate::model::{Channel, IdentityLevel, IdentityStatus};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPolicy {
    pub policy: RawMeta,
    pub approvers: RawApprovers,
    #[serde(default)]
    pub actions: BTreeMap<String, Spanned<RawAction>>,
    #[serde(default)]
    pub rules: Vec<Spanned<RawRule>>,
    /// Word families for signal patterns (`@name`): name → words or short phrases.
    #[serde(default)]
    pub signal_words: BTreeMap<String, Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub signals: Vec<Spanned<RawSignal>>,
    /// The learned signal model, as a second detector beside the patterns.
    #[serde(default)]
    pub signal_model: Option<RawSignalModel>,
    /// The languages the signals read (see `SignalLanguages`).
    #[serde(default)]
    pub signal_languages: Option<RawSignalLanguages>,
    pub reply: RawReply,
    /// What a team desktop without a fresh lease may still do (see `CutOffPolicy`).
    #[serde(default)]
    pub cut_off: Option<RawCutOff>,
    /// The team a desktop running this policy belongs to (see `TeamPolicy`).
    #[serde(default)]
    pub team: Option<RawTeam>,
    /// Earned autonomy: the bands kept on record and the bars that propose a change
    /// (see `AutonomyPolicy`).
    #[serde(default)]
    pub autonomy: Option<Spanned<RawAutonomy>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSignalModel {
    /// SHA-256 (hex) of the model file: the one this build carries, or the policy is refused.
    pub sha256: Spanned<String>,
    /// The probability at or above which a category counts as found.
    pub min_probability: Spanned<f64>,
    /// The learned probability a pattern's hit needs to count (see `LearnedSignals`).
    #[serde(default)]
    pub patterns_min_probability: Option<Spanned<f64>>,
    /// The fine-tuned encoder beside the model (see `EncoderSignals`).
    #[serde(default)]
    pub encoder: Option<RawSignalEncoder>,
    /// `[signal_model.categories.<category>]`: a category's own thresholds (see
    /// `CategoryThresholds`).
    #[serde(default)]
    pub categories: BTreeMap<String, Spanned<RawCategoryThresholds>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCategoryThresholds {
    #[serde(default)]
    pub min_probability: Option<Spanned<f64>>,
    #[serde(default)]
    pub patterns_min_probability: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSignalLanguages {
    /// ISO 639-3 codes (`eng`).
    pub read: Spanned<Vec<Spanned<String>>>,
    pub unread: Spanned<Outcome>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSignalEncoder {
    /// SHA-256 (hex) of the encoder's update and head: the one this build carries.
    pub sha256: Spanned<String>,
    /// The mean of the two models' probabilities at or above which a category counts.
    pub min_probability: Spanned<f64>,
    /// The encoder's own probability at or above which a category counts whatever the
    /// model says.
    #[serde(default)]
    pub alone_min_probability: Option<Spanned<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAutonomy {
    pub review_floor_secs: Spanned<i64>,
    pub window_days: Spanned<i64>,
    pub loosen: RawLoosen,
    pub tighten: RawTighten,
    pub bands: Vec<Spanned<RawBand>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLoosen {
    pub min_decisions: Spanned<i64>,
    pub min_unchanged_pct: Spanned<i64>,
    pub min_approvers: Spanned<i64>,
    pub max_reversals: Spanned<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTighten {
    pub min_decisions: Spanned<i64>,
    pub min_rejected_pct: Spanned<i64>,
    pub min_reversals: Spanned<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBand {
    pub action: Spanned<String>,
    /// The upper bounds of the amount bands, ascending (a money action only).
    #[serde(default)]
    pub amounts: Option<Spanned<Vec<Spanned<MoneyText>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTeam {
    pub name: Spanned<String>,
    pub signer: Spanned<String>,
    pub service_key: Spanned<String>,
    #[serde(default)]
    pub retention: std::collections::BTreeMap<String, Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCutOff {
    #[serde(default = "CutOffPolicy::default_writes")]
    pub writes: Outcome,
    #[serde(default = "CutOffPolicy::default_money")]
    pub money: Outcome,
    #[serde(default = "default_lease_secs")]
    pub lease_secs: Spanned<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMeta {
    pub id: Spanned<String>,
    pub version: Spanned<i64>,
    pub title: String,
    pub currencies: Spanned<Vec<Spanned<String>>>,
    pub roles: Spanned<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApprovers {
    pub confirm: Spanned<Vec<Spanned<String>>>,
    pub supervisor: Spanned<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAction {
    pub summary: String,
    pub layer: Layer,
    pub kind: Kind,
    pub risk: Risk,
    pub decision: Spanned<Outcome>,
    pub owner: Spanned<String>,
    /// The workflow (a plan intent such as `refund`) the action belongs to: a workflow
    /// pause covers the action whatever intent a plan names.
    #[serde(default)]
    pub workflow: Option<Spanned<String>>,
    #[serde(default)]
    pub reads: Vec<Spanned<String>>,
    /// Older spelling of `identity = "strong"`.
    #[serde(default)]
    pub verified_identity: Option<Spanned<bool>>,
    /// The verification the customer needs before this action may run.
    #[serde(default)]
    pub identity: Option<Spanned<IdentityLevel>>,
    /// This read is an identity look-up: its values come from the customer's text, and
    /// its answer is what verifies them.
    #[serde(default)]
    pub identity_lookup: bool,
    /// This write moves the order to another status (cancel, a one-time item change, a
    /// return): later writes in the same plan on that order are conflicts.
    #[serde(default)]
    pub changes_order_status: bool,
    #[serde(default)]
    pub params: BTreeMap<String, Spanned<RawParam>>,
    #[serde(default)]
    pub preconditions: Option<Spanned<RawPreconditions>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawParam {
    #[serde(rename = "type")]
    pub ty: ParamType,
    #[serde(default = "yes")]
    pub required: bool,
    #[serde(default)]
    pub values: Option<Vec<String>>,
    #[serde(default)]
    pub max_len: Option<usize>,
    #[serde(default)]
    pub untrusted_ok: bool,
    /// For entity ids (order, customer, item, payment method): must the entity belong
    /// to the case's customer? Defaults to yes; `false` for ids that name what the
    /// customer is to get (the new variants of an exchange).
    #[serde(default)]
    pub owned: Option<bool>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPreconditions {
    #[serde(default)]
    pub order_status: Option<Vec<String>>,
    #[serde(default)]
    pub order_owned: bool,
    #[serde(default)]
    pub customer_owned: bool,
    #[serde(default)]
    pub within_refundable: bool,
    #[serde(default)]
    pub currency_matches_order: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    pub id: Spanned<String>,
    pub reason: String,
    pub actions: Spanned<Vec<Spanned<String>>>,
    pub decision: Spanned<Outcome>,
    #[serde(default)]
    pub channels: Option<Spanned<Vec<Channel>>>,
    #[serde(default)]
    pub stores: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    pub platforms: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    pub tenants: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    pub roles: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub identity: Option<IdentityStatus>,
    #[serde(default)]
    pub amount_over: Option<Spanned<MoneyText>>,
    #[serde(default)]
    pub case_total_over: Option<Spanned<MoneyText>>,
    #[serde(default)]
    pub order_total_over: Option<Spanned<MoneyText>>,
}

/// Money in a policy must be a string (`"25.00 USD"`); a TOML float is refused
/// by the type itself, before any rounding can happen.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub(super) struct MoneyText(pub String);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSignal {
    pub id: Spanned<String>,
    pub category: SignalCategory,
    pub reason: String,
    #[serde(default)]
    pub phrases: Vec<Spanned<String>>,
    #[serde(default)]
    pub regex: Vec<Spanned<String>>,
    /// Token patterns (see `crate::detect`).
    #[serde(default)]
    pub patterns: Vec<Spanned<String>>,
    /// Idioms: a pattern hit overlapping one of these does not count.
    #[serde(default)]
    pub guards: Vec<Spanned<String>>,
    /// Words or `@families` that, just before a pattern hit, cancel it.
    #[serde(default)]
    pub negation: Vec<Spanned<String>>,
    #[serde(default = "supervisor")]
    pub escalate: Spanned<Outcome>,
}

fn supervisor() -> Spanned<Outcome> {
    Spanned::new(0..0, Outcome::Supervisor)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReply {
    pub decision: Outcome,
    pub owner: String,
    #[serde(default = "confirm")]
    pub unresolved_citation: Spanned<Outcome>,
    #[serde(default)]
    pub promises: Vec<Spanned<RawPromise>>,
    /// What a draft whose claim no cited passage states (or one contradicts) needs.
    #[serde(default = "confirm")]
    pub unsupported_claim: Spanned<Outcome>,
    #[serde(default)]
    pub claims: Vec<Spanned<RawClaim>>,
}

fn default_lease_secs() -> Spanned<u32> {
    Spanned::new(0..0, CutOffPolicy::default_lease_secs())
}

fn confirm() -> Spanned<Outcome> {
    Spanned::new(0..0, Outcome::Confirm)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPromise {
    pub id: Spanned<String>,
    pub category: PromiseCategory,
    pub reason: String,
    #[serde(default)]
    pub phrases: Vec<Spanned<String>>,
    #[serde(default)]
    pub regex: Vec<Spanned<String>>,
    #[serde(default = "confirm")]
    pub decision: Spanned<Outcome>,
}

/// Words that make a factual claim (`free`, `any time`): a draft that says one needs a
/// cited passage that says it too.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClaim {
    pub id: Spanned<String>,
    pub reason: String,
    #[serde(default)]
    pub phrases: Vec<Spanned<String>>,
    #[serde(default)]
    pub regex: Vec<Spanned<String>>,
    /// Phrases in which the words make no claim (`feel free`).
    #[serde(default)]
    pub ignore: Vec<Spanned<String>>,
    /// Phrases that, in a cited passage, say the opposite (`fee` for `free`).
    #[serde(default)]
    pub contradicted_by: Vec<Spanned<String>>,
}
