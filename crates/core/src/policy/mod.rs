//! The permission map: parsing a policy file into a checked [`Policy`].
//!
//! A policy is TOML a CX lead can read (see `assets/demo/policy.toml`). Parsing is
//! strict: unknown keys, unknown names and rules that can never match are errors,
//! reported as `file:line:column: message`. The compiled [`Policy`] is immutable
//! and carries the SHA-256 of its source, which every decision records.
//!
//! To add a constraint kind: add the field to the raw rule ([`raw`]), check it in
//! [`compile_rule`] (including the ways it could never match), evaluate it in
//! [`crate::decide`], and add policy test cases for it.

mod autonomy;
mod raw;

pub use autonomy::{AutonomyPolicy, LoosenBar, TightenBar};

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;

use regex::Regex;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_spanned::Spanned;
use sha2::{Digest, Sha256};

use crate::detect::{Detector, Families, TokenPattern, family, stemmed_words};
use crate::model::{Channel, IdentityLevel, IdentityStatus};
use crate::money::{Currency, Money};
use crate::normalize::{Phrase, identifier_skeleton, normalize};

/// The five outcomes, ordered from least to most restrictive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(rename = "Decision"))]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Runs without a click.
    Auto,
    /// The frontline agent countersigns.
    Confirm,
    /// A team lead countersigns.
    Supervisor,
    /// Shown as advice; never executed by the app.
    Recommend,
    /// Never executed.
    Forbid,
}

impl Outcome {
    pub const ALL: [Outcome; 5] =
        [Outcome::Auto, Outcome::Confirm, Outcome::Supervisor, Outcome::Recommend, Outcome::Forbid];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Auto => "auto",
            Outcome::Confirm => "confirm",
            Outcome::Supervisor => "supervisor",
            Outcome::Recommend => "recommend",
            Outcome::Forbid => "forbid",
        }
    }

    /// Does this outcome ever let the app execute the step?
    pub fn executable(self) -> bool {
        self <= Outcome::Supervisor
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which layer of autonomy an action belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// Talking to the customer (replies).
    Say,
    /// Advice to the agent; never executed.
    Recommend,
    /// Acting on a platform (reads and writes).
    Execute,
}

/// Whether an action reads or changes platform state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Read,
    Write,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    Low,
    Medium,
    High,
    Critical,
}

/// The typed parameters an action accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ParamType {
    /// Short free text (a reason, a note).
    Text,
    /// One of the listed `values`.
    Enum,
    /// `{"amount": "45.00", "currency": "USD"}`.
    Money,
    OrderId,
    CustomerId,
    ProductId,
    ItemId,
    /// A non-empty list of item ids.
    ItemIds,
    PaymentMethodId,
    Email,
    /// A postal address object (`address1`, `address2`, `city`, `state`, `zip`, `country`).
    Address,
    /// A person's name part or a zip code: short identifying text.
    Name,
    Zip,
    Bool,
}

impl ParamType {
    /// Money- or identity-bearing parameters: a value lifted from untrusted text
    /// here always needs a human (the provenance rule cannot be waived for them).
    pub fn sensitive(self) -> bool {
        !matches!(self, ParamType::Text | ParamType::Enum | ParamType::Bool)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignalCategory {
    Legal,
    Chargeback,
    AccountTakeover,
    SelfHarm,
    /// Threats of violence towards staff, couriers or others.
    Violence,
    Harassment,
    ThirdPartyData,
    /// The customer is a child, or a child made the purchase or holds the account.
    Minors,
    Other,
}

impl SignalCategory {
    pub const ALL: [SignalCategory; 9] = [
        SignalCategory::SelfHarm,
        SignalCategory::Violence,
        SignalCategory::Legal,
        SignalCategory::Chargeback,
        SignalCategory::AccountTakeover,
        SignalCategory::ThirdPartyData,
        SignalCategory::Minors,
        SignalCategory::Harassment,
        SignalCategory::Other,
    ];

    /// The name written in a policy file (`self_harm`).
    pub fn as_str(self) -> &'static str {
        match self {
            SignalCategory::Legal => "legal",
            SignalCategory::Chargeback => "chargeback",
            SignalCategory::AccountTakeover => "account_takeover",
            SignalCategory::SelfHarm => "self_harm",
            SignalCategory::Violence => "violence",
            SignalCategory::Harassment => "harassment",
            SignalCategory::ThirdPartyData => "third_party_data",
            SignalCategory::Minors => "minors",
            SignalCategory::Other => "other",
        }
    }
}

impl fmt::Display for SignalCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PromiseCategory {
    DeliveryDate,
    Refund,
    Compensation,
    Guarantee,
}

/// A parameter's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSpec {
    pub ty: ParamType,
    pub required: bool,
    pub values: Vec<String>,
    pub max_len: usize,
    /// The provenance rule is waived for this (non-sensitive) parameter.
    pub untrusted_ok: bool,
    /// An entity id that must belong to the case's customer.
    pub owned: bool,
}

/// Preconditions on the order an action acts on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preconditions {
    pub order_status: Option<Vec<String>>,
    pub order_owned: bool,
    /// The customer_id parameter must be the case's own customer.
    pub customer_owned: bool,
    pub within_refundable: bool,
    pub currency_matches_order: bool,
}

impl Preconditions {
    pub fn needs_order(&self) -> bool {
        self.order_status.is_some() || self.order_owned || self.within_refundable || self.currency_matches_order
    }
}

/// An action the policy names. Anything it does not name is forbidden.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionDef {
    pub name: String,
    pub summary: String,
    pub layer: Layer,
    pub kind: Kind,
    pub risk: Risk,
    pub decision: Outcome,
    pub owner: String,
    /// The workflow the action belongs to (a workflow pause covers it whatever intent a
    /// plan names).
    pub workflow: Option<String>,
    /// Fields (`order.status`) the context read for this action may include.
    pub reads: Vec<String>,
    /// The verification the customer needs before the action may run; below it the
    /// step is at most `recommend`.
    pub identity: IdentityLevel,
    /// An identity look-up: the engine runs it while gathering facts, and its answer
    /// verifies the customer (`matched`). Its parameters may come from the customer's
    /// text: they are what is being checked.
    pub identity_lookup: bool,
    /// The write moves its order to another status; a later write on the same order in
    /// the same plan is a conflict.
    pub changes_order_status: bool,
    pub params: BTreeMap<String, ParamSpec>,
    pub preconditions: Preconditions,
    /// The single money parameter, if any (limits apply to it).
    pub money_param: Option<String>,
    /// The single order-id parameter, if any (preconditions apply to its order).
    pub order_param: Option<String>,
    /// The single customer-id parameter, if any.
    pub customer_param: Option<String>,
    /// `identifier_skeleton(name)` and `normalize(name)`, computed once: a
    /// denied action name is compared with every known one (look-alikes).
    pub(crate) name_skeleton: String,
    pub(crate) name_normalized: String,
}

/// A rule: when all its conditions hold for a step of one of its actions, the
/// step is at least `decision`.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub reason: String,
    pub actions: BTreeSet<String>,
    pub decision: Outcome,
    pub channels: Option<BTreeSet<Channel>>,
    pub stores: Option<BTreeSet<String>>,
    pub platforms: Option<BTreeSet<String>>,
    pub tenants: Option<BTreeSet<String>>,
    pub roles: Option<BTreeSet<String>>,
    pub identity: Option<IdentityStatus>,
    pub amount_over: Option<Money>,
    pub case_total_over: Option<Money>,
    pub order_total_over: Option<Money>,
}

/// Text patterns matched on normalised text (see [`crate::normalize`]).
#[derive(Debug, Clone)]
pub struct Patterns {
    pub phrases: Vec<Phrase>,
    pub regex: Vec<Regex>,
    /// Matches where any of `phrases` occurs: one scan instead of one per phrase
    /// rules out, in the usual case, that any is there. `None`: no filter.
    phrase_filter: Option<Regex>,
}

impl Patterns {
    /// The first pattern found in already-normalised text, as written in the policy.
    pub fn find(&self, normalized: &str) -> Option<String> {
        // The filter only skips the search when no phrase occurs; which phrase
        // is reported is still decided by the list order below.
        let maybe_phrase = self.phrase_filter.as_ref().is_none_or(|f| f.is_match(normalized));
        if maybe_phrase && let Some(p) = self.phrases.iter().find(|p| p.is_in(normalized)) {
            return Some(p.original().to_string());
        }
        self.regex.iter().find(|r| r.is_match(normalized)).map(|r| r.as_str().to_string())
    }
}

/// An escalation signal: when found in the customer's text, the case goes to a human.
#[derive(Debug, Clone)]
pub struct Signal {
    pub id: String,
    pub category: SignalCategory,
    pub reason: String,
    /// Exact phrases and regexes (over the whole normalised text).
    pub patterns: Patterns,
    /// Token patterns with word families, idiom guards and negation (clause by clause).
    pub detector: Detector,
    /// Every step and the reply are at least this.
    pub escalate: Outcome,
}

/// `[signal_model]`: the built-in learned model ([`crate::learned`]) finds a category when its
/// probability is at least `min_probability`, in addition to the patterns.
#[derive(Debug, Clone)]
pub struct LearnedSignals {
    /// The built-in model, parsed on first use (a policy that never scans a case, as in
    /// `countersign policy status`, never reads it).
    pub model: &'static std::sync::LazyLock<crate::learned::SignalModel>,
    pub min_probability: f64,
    /// `patterns_min_probability`: a pattern's hit counts only when the learned probability
    /// of its category in the case (the mean with the encoder, when the policy turns it on)
    /// is at least this; below it, the pattern's words are taken as used in their ordinary
    /// sense and the hit is set aside (kept with the decision, not escalated). None: every
    /// pattern's hit counts, whatever the models say, but in a category with a floor of its
    /// own ([`LearnedSignals::patterns_floor`] is what the scan reads).
    pub patterns_min_probability: Option<f64>,
    /// `[signal_model.encoder]`: the fine-tuned encoder beside the model.
    pub encoder: Option<EncoderSignals>,
    /// `[signal_model.categories.<category>]`: the categories whose thresholds differ from
    /// the ones above, each once.
    pub categories: Vec<(SignalCategory, CategoryThresholds)>,
}

impl LearnedSignals {
    /// The probability at or above which the learned models find `category` on their own:
    /// the category's own `min_probability`, else the encoder's (a mean) with the encoder,
    /// else the model's.
    pub fn found_at(&self, category: SignalCategory) -> f64 {
        self.thresholds(category)
            .and_then(|t| t.min_probability)
            .unwrap_or_else(|| self.encoder.map_or(self.min_probability, |e| e.min_probability))
    }

    /// The probability a pattern's hit of `category` needs to count: the category's own
    /// `patterns_min_probability`, else the policy's. None: its hits always count.
    pub fn patterns_floor(&self, category: SignalCategory) -> Option<f64> {
        self.thresholds(category).and_then(|t| t.patterns_min_probability).or(self.patterns_min_probability)
    }

    fn thresholds(&self, category: SignalCategory) -> Option<&CategoryThresholds> {
        self.categories.iter().find(|(c, _)| *c == category).map(|(_, t)| t)
    }
}

/// `[signal_model.categories.<category>]`: one category's thresholds where they differ from
/// the policy's (the learned models are surer of some categories than of others: chosen per
/// category on parts neither model was trained on, docs/signals.md step 54). Each replaces
/// the one of the same name for this category only; at least one is given. Only with the
/// encoder (they are thresholds of the two models' mean), and only for a category the
/// models read ([`crate::learned::CATEGORIES`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CategoryThresholds {
    /// Replaces the threshold at which the models find the category on their own (the
    /// encoder's `min_probability` with the encoder, else `[signal_model]`'s).
    pub min_probability: Option<f64>,
    /// Replaces `[signal_model] patterns_min_probability`.
    pub patterns_min_probability: Option<f64>,
}

/// `[signal_model.encoder]`: the fine-tuned sentence encoder built into Countersign
/// (`countersign-encoder`) reads each text too, and a category counts as found when the
/// mean of its probability and the model's is at least `min_probability` (instead of the
/// model's own threshold).
#[derive(Debug, Clone, Copy)]
pub struct EncoderSignals {
    pub min_probability: f64,
    /// `alone_min_probability`: a category also counts when the encoder's own probability
    /// is at least this, whatever the model says (the model reads words it was trained on;
    /// the encoder, sure of a meaning in other words, is not outvoted by it). None: only
    /// the mean decides.
    pub alone_min_probability: Option<f64>,
}

/// A reply rule: a draft that makes this kind of promise goes to review.
#[derive(Debug, Clone)]
pub struct PromiseRule {
    pub id: String,
    pub category: PromiseCategory,
    pub reason: String,
    pub patterns: Patterns,
    pub decision: Outcome,
}

/// A claim rule: words that state a fact (`free`, `any time`) which a cited passage must
/// state too (see [`crate::claims`]).
#[derive(Debug, Clone)]
pub struct ClaimRule {
    pub id: String,
    pub reason: String,
    /// The claim's words; a passage states the claim when one of them occurs in it.
    pub patterns: Patterns,
    /// Phrases in which the words make no claim (`feel free`): taken out of the text first.
    pub ignore: Vec<Phrase>,
    /// Phrases that, in a cited passage that does not state the claim, contradict it.
    pub contradicted_by: Vec<Phrase>,
}

#[derive(Debug, Clone)]
pub struct ReplyPolicy {
    pub decision: Outcome,
    pub owner: String,
    pub unresolved_citation: Outcome,
    pub promises: Vec<PromiseRule>,
    /// A claim (amount, duration, date, claim phrase) no cited passage states, or one a
    /// cited passage contradicts, makes the reply at least this.
    pub unsupported_claim: Outcome,
    pub claims: Vec<ClaimRule>,
}

/// A checked, immutable policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub id: String,
    pub version: u64,
    pub title: String,
    /// `sha256:<hex>` of the source bytes.
    pub hash: String,
    pub currencies: BTreeSet<Currency>,
    pub roles: BTreeSet<String>,
    pub confirm_roles: Vec<String>,
    pub supervisor_roles: Vec<String>,
    pub actions: BTreeMap<String, ActionDef>,
    pub rules: Vec<Rule>,
    pub signals: Vec<Signal>,
    /// `[signal_model]`: the learned model as a second detector (it adds signals and, with
    /// `patterns_min_probability`, sets aside patterns' hits it reads as ordinary words).
    pub signal_model: Option<LearnedSignals>,
    /// `[signal_languages]`: the languages the signals read, and the floor for a customer's
    /// text in another. None: no text's language is checked.
    pub signal_languages: Option<crate::language::SignalLanguages>,
    pub reply: ReplyPolicy,
    /// `[cut_off]`: the floors for a team desktop without a fresh lease.
    pub cut_off: CutOffPolicy,
    /// `[team]`: the team a desktop running this policy belongs to, if any.
    pub team: Option<TeamPolicy>,
    /// `[autonomy]`: the bands whose record is kept and the bars that propose changes.
    pub autonomy: Option<AutonomyPolicy>,
}

/// `[team]`: a policy that names a team holds every desktop running it to that team. Its
/// enrolment must be signed by the team's `signer` (the role is the enrolment's, read
/// from that signature, not from any file on the desk) and name the team's
/// `service_key`; a desktop without a valid enrolment is cut off for good (the
/// `[cut_off]` floors apply) instead of working solo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TeamPolicy {
    /// The team's name (`countersign team init --name`).
    pub name: String,
    /// The team account's signing key (`A…`, `team.toml`'s `signer`).
    pub signer: String,
    /// The team service's lease key (hex, `team.toml`'s `service_key`).
    pub service_key: String,
    /// `[team.retention]`: how many days the team keeps a tenant's cases after their last
    /// event (`"*"`: every tenant not named). A tenant under none is kept for good.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub retention: BTreeMap<String, u32>,
}

impl TeamPolicy {
    /// The days the team keeps `tenant`'s cases, if it does not keep them for good.
    pub fn retention_of(&self, tenant: &str) -> Option<u32> {
        self.retention.get(tenant).or_else(|| self.retention.get("*")).copied()
    }
}

/// `[cut_off]`: what a desktop of a team decides while it holds no fresh lease from the
/// team service (it cannot know it has seen every pause). Each is a floor: a step
/// decided stricter keeps its decision. Defaults: no write runs `auto`, money at most
/// `recommend`. A solo desktop never is cut off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CutOffPolicy {
    pub writes: Outcome,
    pub money: Outcome,
    /// How long a lease stays fresh after the desktop saw it, in seconds.
    pub lease_secs: u32,
}

impl CutOffPolicy {
    /// The least a write is decided while cut off as `cut` says.
    pub fn write_floor(&self, cut: &crate::team::CutOff) -> Outcome {
        if cut.unenrolled { self.writes.max(Outcome::Supervisor) } else { self.writes }
    }

    pub(crate) fn default_writes() -> Outcome {
        Outcome::Confirm
    }
    pub(crate) fn default_money() -> Outcome {
        Outcome::Recommend
    }
    pub(crate) fn default_lease_secs() -> u32 {
        30
    }
}

impl Default for CutOffPolicy {
    fn default() -> CutOffPolicy {
        CutOffPolicy {
            writes: CutOffPolicy::default_writes(),
            money: CutOffPolicy::default_money(),
            lease_secs: CutOffPolicy::default_lease_secs(),
        }
    }
}

/// A policy that could not be loaded: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct PolicyError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// The content hash every decision records.
/// A JSON Schema (`type: object`) describing an action's parameters, for planners that
/// need one (LLM tool definitions, structured output). Descriptive only: the policy's own
/// checks (`validate::check_params`) are what decide.
pub fn params_json_schema(def: &ActionDef) -> serde_json::Value {
    use serde_json::json;
    let mut properties = serde_json::Map::new();
    let mut required = Vec::new();
    for (name, spec) in &def.params {
        let id = json!({"type": "string", "maxLength": 64, "pattern": "^[A-Za-z0-9#_.:-]+$"});
        let schema = match spec.ty {
            ParamType::Text | ParamType::Name => json!({"type": "string", "maxLength": spec.max_len}),
            ParamType::Enum => json!({"type": "string", "enum": spec.values}),
            ParamType::Money => json!({
                "type": "object",
                "properties": {
                    "amount": {"type": "string", "pattern": "^[0-9]+(\\.[0-9]{1,2})?$"},
                    "currency": {"type": "string", "pattern": "^[A-Z]{3}$"}
                },
                "required": ["amount", "currency"],
                "additionalProperties": false
            }),
            ParamType::OrderId
            | ParamType::CustomerId
            | ParamType::ProductId
            | ParamType::ItemId
            | ParamType::PaymentMethodId => id.clone(),
            ParamType::ItemIds => json!({"type": "array", "items": id, "minItems": 1, "maxItems": 50}),
            ParamType::Email => json!({"type": "string", "format": "email", "maxLength": 254}),
            ParamType::Zip => json!({"type": "string", "maxLength": 10}),
            ParamType::Bool => json!({"type": "boolean"}),
            ParamType::Address => {
                let field = json!({"type": "string", "maxLength": 128});
                json!({
                    "type": "object",
                    "properties": {
                        "address1": field, "address2": field, "city": field,
                        "state": field, "zip": field, "country": field
                    },
                    "required": ["address1", "city", "state", "zip", "country"],
                    "additionalProperties": false
                })
            }
        };
        properties.insert(name.clone(), schema);
        if spec.required {
            required.push(name.clone());
        }
    }
    json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false})
}

pub fn content_hash(source: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(source.as_bytes())))
}

struct Ctx<'a> {
    file: &'a str,
    source: &'a str,
}

impl Ctx<'_> {
    fn err(&self, span: Range<usize>, message: impl Into<String>) -> PolicyError {
        let start = span.start.min(self.source.len());
        let before = &self.source[..start];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        PolicyError { file: self.file.to_string(), line, column, message: message.into() }
    }
}

impl Policy {
    /// Whether the policy turns the signal encoder on (`[signal_model.encoder]`).
    pub fn uses_encoder(&self) -> bool {
        self.signal_model.as_ref().is_some_and(|m| m.encoder.is_some())
    }

    /// Parse and check a policy. `file` is only used in error messages.
    pub fn parse(file: &str, source: &str) -> Result<Policy, PolicyError> {
        let cx = Ctx { file, source };
        let raw: raw::RawPolicy = toml::from_str(source).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            cx.err(span, e.message().trim_end().to_string())
        })?;
        compile(&cx, raw)
    }

    /// The approver roles for an outcome (empty for outcomes no one countersigns).
    pub fn approvers(&self, outcome: Outcome) -> &[String] {
        match outcome {
            Outcome::Confirm => &self.confirm_roles,
            Outcome::Supervisor => &self.supervisor_roles,
            _ => &[],
        }
    }
}

fn compile(cx: &Ctx<'_>, raw: raw::RawPolicy) -> Result<Policy, PolicyError> {
    let meta = raw.policy;
    if meta.id.get_ref().trim().is_empty() {
        return Err(cx.err(meta.id.span(), "policy id must not be empty"));
    }
    let version = u64::try_from(*meta.version.get_ref())
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| cx.err(meta.version.span(), "policy version must be a positive integer"))?;

    let mut currencies = BTreeSet::new();
    for c in meta.currencies.get_ref() {
        let cur = Currency::try_from(c.get_ref().clone()).map_err(|e| cx.err(c.span(), e.to_string()))?;
        currencies.insert(cur);
    }
    if currencies.is_empty() {
        return Err(cx.err(meta.currencies.span(), "at least one currency is required"));
    }
    let roles = name_set(cx, &meta.roles, "role")?;
    let role_list = |list: &Spanned<Vec<Spanned<String>>>, what: &str| -> Result<Vec<String>, PolicyError> {
        if list.get_ref().is_empty() {
            return Err(cx.err(list.span(), format!("{what} approvers must name at least one role")));
        }
        list.get_ref().iter().map(|r| known_role(cx, &roles, r)).collect()
    };
    let confirm_roles = role_list(&raw.approvers.confirm, "confirm")?;
    let supervisor_roles = role_list(&raw.approvers.supervisor, "supervisor")?;

    let mut actions = BTreeMap::new();
    for (name, action) in raw.actions {
        let def = compile_action(cx, &name, action)?;
        actions.insert(name, def);
    }

    let mut rules = Vec::new();
    let mut rule_ids = BTreeSet::new();
    for rule in raw.rules {
        let span = rule.span();
        let r = compile_rule(cx, &actions, &roles, &currencies, rule.into_inner())?;
        if !rule_ids.insert(r.id.clone()) {
            return Err(cx.err(span, format!("duplicate rule id {:?}", r.id)));
        }
        rules.push(r);
    }

    let mut families = Families::new();
    for (name, entries) in &raw.signal_words {
        if !is_identifier(name) {
            return Err(
                cx.err(entries.span(), format!("word family name {name:?} must be lower-case letters, digits and _"))
            );
        }
        if entries.get_ref().is_empty() {
            return Err(cx.err(entries.span(), format!("word family {name:?} is empty: it could never match")));
        }
        let words: Vec<String> = entries.get_ref().iter().map(|e| e.get_ref().clone()).collect();
        let fam = family(&words).map_err(|m| {
            let at = entries
                .get_ref()
                .iter()
                .find(|e| stemmed_words(e.get_ref()).is_empty())
                .map_or(entries.span(), |e| e.span());
            cx.err(at, format!("in word family {name:?}: {m}"))
        })?;
        families.insert(name.clone(), fam);
    }

    let mut signals = Vec::new();
    for s in raw.signals {
        let span = s.span();
        let s = s.into_inner();
        if s.phrases.is_empty() && s.regex.is_empty() && s.patterns.is_empty() {
            return Err(cx.err(span, "a signal needs at least one phrase, regex or pattern, or it could never match"));
        }
        if s.patterns.is_empty() && !(s.guards.is_empty() && s.negation.is_empty()) {
            return Err(cx.err(span, "guards and negation apply to `patterns`, and this signal has none"));
        }
        let patterns = compile_pattern_list(cx, &s.phrases, &s.regex)?;
        let detector = compile_detector(cx, &families, &s.patterns, &s.guards, &s.negation)?;
        if *s.escalate.get_ref() == Outcome::Auto {
            return Err(cx.err(
                s.escalate.span(),
                "a signal that escalates to `auto` would change nothing; use confirm or stricter",
            ));
        }
        if !rule_ids.insert(s.id.get_ref().clone()) {
            return Err(cx.err(s.id.span(), format!("duplicate id {:?}", s.id.get_ref())));
        }
        signals.push(Signal {
            id: s.id.into_inner(),
            category: s.category,
            reason: s.reason,
            patterns,
            detector,
            escalate: s.escalate.into_inner(),
        });
    }

    let signal_model = raw.signal_model.map(|m| compile_signal_model(cx, m)).transpose()?;
    let signal_languages = raw.signal_languages.map(|l| compile_signal_languages(cx, l)).transpose()?;

    let mut promises = Vec::new();
    for p in raw.reply.promises {
        let span = p.span();
        let p = p.into_inner();
        let patterns = compile_patterns(cx, span, &p.phrases, &p.regex)?;
        if *p.decision.get_ref() == Outcome::Auto {
            return Err(
                cx.err(p.decision.span(), "a promise rule must send the reply to review: use confirm or stricter")
            );
        }
        if !rule_ids.insert(p.id.get_ref().clone()) {
            return Err(cx.err(p.id.span(), format!("duplicate id {:?}", p.id.get_ref())));
        }
        promises.push(PromiseRule {
            id: p.id.into_inner(),
            category: p.category,
            reason: p.reason,
            patterns,
            decision: p.decision.into_inner(),
        });
    }
    let claims = compile_claims(cx, &mut rule_ids, raw.reply.claims)?;
    let autonomy = raw.autonomy.map(|a| autonomy::compile(cx, a, &actions, &currencies)).transpose()?;
    if *raw.reply.unsupported_claim.get_ref() == Outcome::Auto {
        return Err(cx.err(
            raw.reply.unsupported_claim.span(),
            "a reply stating what no cited passage says must go to review: use confirm or stricter",
        ));
    }
    if *raw.reply.unresolved_citation.get_ref() == Outcome::Auto {
        return Err(cx.err(
            raw.reply.unresolved_citation.span(),
            "a reply citing an article that does not exist must go to review: use confirm or stricter",
        ));
    }

    Ok(Policy {
        id: meta.id.into_inner(),
        version,
        title: meta.title,
        hash: content_hash(cx.source),
        currencies,
        roles,
        confirm_roles,
        supervisor_roles,
        actions,
        rules,
        signals,
        signal_model,
        signal_languages,
        reply: ReplyPolicy {
            decision: raw.reply.decision,
            owner: raw.reply.owner,
            unresolved_citation: raw.reply.unresolved_citation.into_inner(),
            promises,
            unsupported_claim: raw.reply.unsupported_claim.into_inner(),
            claims,
        },
        team: match raw.team {
            None => None,
            Some(t) => {
                let name = t.name.get_ref();
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                    return Err(cx.err(t.name.span(), "team.name: use letters, digits, '-' or '_'"));
                }
                let signer = t.signer.get_ref();
                if signer.len() != 56 || !signer.starts_with('A') || !signer.chars().all(|c| c.is_ascii_alphanumeric())
                {
                    return Err(cx.err(
                        t.signer.span(),
                        "team.signer: the team account's signing key (56 characters, starting with 'A'; \
                         team.toml's `signer`)",
                    ));
                }
                let key = t.service_key.get_ref();
                if key.len() != 64 || !key.chars().all(|c| c.is_ascii_hexdigit()) {
                    return Err(cx.err(
                        t.service_key.span(),
                        "team.service_key: the team service's key, 64 hex digits (team.toml's `service_key`)",
                    ));
                }
                let mut retention = BTreeMap::new();
                for (tenant, days) in &t.retention {
                    let d =
                        u32::try_from(*days.get_ref()).ok().filter(|d| (1..=36_500).contains(d)).ok_or_else(|| {
                            cx.err(days.span(), format!("team.retention.{tenant}: a number of days from 1 to 36500"))
                        })?;
                    retention.insert(tenant.clone(), d);
                }
                Some(TeamPolicy {
                    name: name.clone(),
                    signer: signer.clone(),
                    service_key: key.to_ascii_lowercase(),
                    retention,
                })
            }
        },
        autonomy,
        cut_off: match raw.cut_off {
            None => CutOffPolicy::default(),
            Some(c) => {
                if !(5..=3600).contains(c.lease_secs.get_ref()) {
                    return Err(cx.err(c.lease_secs.span(), "cut_off.lease_secs must be between 5 and 3600"));
                }
                CutOffPolicy { writes: c.writes, money: c.money, lease_secs: c.lease_secs.into_inner() }
            }
        },
    })
}

fn name_set(cx: &Ctx<'_>, list: &Spanned<Vec<Spanned<String>>>, what: &str) -> Result<BTreeSet<String>, PolicyError> {
    let mut set = BTreeSet::new();
    for n in list.get_ref() {
        if n.get_ref().trim().is_empty() {
            return Err(cx.err(n.span(), format!("empty {what} name")));
        }
        if !set.insert(n.get_ref().clone()) {
            return Err(cx.err(n.span(), format!("duplicate {what} {:?}", n.get_ref())));
        }
    }
    if set.is_empty() {
        return Err(cx.err(list.span(), format!("at least one {what} is required")));
    }
    Ok(set)
}

fn known_role(cx: &Ctx<'_>, roles: &BTreeSet<String>, r: &Spanned<String>) -> Result<String, PolicyError> {
    if roles.contains(r.get_ref()) {
        Ok(r.get_ref().clone())
    } else {
        Err(cx.err(r.span(), format!("unknown role {:?}; [policy] roles declares {:?}", r.get_ref(), roles)))
    }
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && s.as_bytes()[0].is_ascii_lowercase()
}

const READ_OBJECTS: [&str; 4] = ["customer", "order", "product", "payment"];

fn compile_action(cx: &Ctx<'_>, name: &str, action: Spanned<raw::RawAction>) -> Result<ActionDef, PolicyError> {
    let span = action.span();
    let a = action.into_inner();
    if !is_identifier(name) {
        return Err(cx.err(span, format!("action name {name:?} must be lower_snake_case ASCII")));
    }
    if a.layer == Layer::Recommend && a.decision.get_ref().executable() {
        return Err(cx.err(
            a.decision.span(),
            format!("action {name:?} is in the recommend layer, so it never executes: its decision must be `recommend` or `forbid`, not `{}`", a.decision.get_ref()),
        ));
    }
    if a.owner.get_ref().trim().is_empty() {
        return Err(cx.err(a.owner.span(), "every action needs an outcome owner (a team or role)"));
    }
    let mut reads = Vec::new();
    for r in &a.reads {
        let ok =
            r.get_ref().split_once('.').is_some_and(|(obj, field)| READ_OBJECTS.contains(&obj) && !field.is_empty());
        if !ok {
            return Err(cx.err(
                r.span(),
                format!("read field {:?} must be `object.field` with object one of {READ_OBJECTS:?}", r.get_ref()),
            ));
        }
        reads.push(r.get_ref().clone());
    }
    let mut params = BTreeMap::new();
    let mut money_param = None;
    let mut order_param = None;
    let mut customer_param = None;
    for (pname, p) in a.params {
        let pspan = p.span();
        let p = p.into_inner();
        if !is_identifier(&pname) {
            return Err(cx.err(pspan, format!("parameter name {pname:?} must be lower_snake_case ASCII")));
        }
        let values = p.values.unwrap_or_default();
        match (p.ty, values.is_empty()) {
            (ParamType::Enum, true) => {
                return Err(cx.err(pspan, format!("enum parameter {pname:?} needs a non-empty `values` list")));
            }
            (ParamType::Enum, false) => {}
            (_, false) => {
                return Err(cx.err(pspan, format!("`values` only applies to enum parameters ({pname:?})")));
            }
            _ => {}
        }
        if p.untrusted_ok && p.ty.sensitive() {
            return Err(cx.err(
                pspan,
                format!("parameter {pname:?} carries money or identity; the provenance rule cannot be waived for it"),
            ));
        }
        if p.ty == ParamType::Money && money_param.replace(pname.clone()).is_some() {
            return Err(cx.err(pspan, format!("action {name:?} may have at most one money parameter")));
        }
        if p.ty == ParamType::OrderId && order_param.replace(pname.clone()).is_some() {
            return Err(cx.err(pspan, format!("action {name:?} may have at most one order_id parameter")));
        }
        if p.ty == ParamType::CustomerId && customer_param.replace(pname.clone()).is_some() {
            return Err(cx.err(pspan, format!("action {name:?} may have at most one customer_id parameter")));
        }
        let entity = matches!(
            p.ty,
            ParamType::OrderId
                | ParamType::CustomerId
                | ParamType::ItemId
                | ParamType::ItemIds
                | ParamType::PaymentMethodId
        );
        if p.owned.is_some() && !entity {
            return Err(cx.err(
                pspan,
                format!("`owned` applies to entity ids (order, customer, item, payment method), not to {pname:?}"),
            ));
        }
        let owned = entity && p.owned.unwrap_or(true);
        let max_len = p.max_len.unwrap_or(match p.ty {
            ParamType::Text => 500,
            _ => 128,
        });
        if max_len == 0 {
            return Err(cx.err(pspan, "max_len of 0 would reject every value"));
        }
        params.insert(
            pname,
            ParamSpec { ty: p.ty, required: p.required, values, max_len, untrusted_ok: p.untrusted_ok, owned },
        );
    }
    let preconditions = match a.preconditions {
        None => Preconditions::default(),
        Some(pc) => {
            let pspan = pc.span();
            let pc = pc.into_inner();
            let out = Preconditions {
                order_status: pc.order_status,
                order_owned: pc.order_owned,
                customer_owned: pc.customer_owned,
                within_refundable: pc.within_refundable,
                currency_matches_order: pc.currency_matches_order,
            };
            if out.needs_order() && order_param.as_ref().is_none_or(|p| !params[p].required) {
                return Err(
                    cx.err(pspan, format!("order preconditions on {name:?} need a required order_id parameter"))
                );
            }
            if (out.within_refundable || out.currency_matches_order)
                && money_param.as_ref().is_none_or(|p| !params[p].required)
            {
                return Err(cx.err(pspan, format!("money preconditions on {name:?} need a required money parameter")));
            }
            if out.customer_owned && customer_param.as_ref().is_none_or(|p| !params[p].required) {
                return Err(cx.err(pspan, format!("customer_owned on {name:?} needs a required customer_id parameter")));
            }
            if out.order_status.as_ref().is_some_and(Vec::is_empty) {
                return Err(cx.err(pspan, "an empty order_status list can never be satisfied"));
            }
            out
        }
    };
    let identity = match (a.verified_identity, a.identity) {
        (Some(v), Some(_)) => {
            return Err(
                cx.err(v.span(), "`verified_identity` is the older spelling of `identity = \"strong\"`: set one")
            );
        }
        (Some(v), None) => {
            if *v.get_ref() {
                IdentityLevel::Strong
            } else {
                IdentityLevel::None
            }
        }
        (None, Some(level)) => *level.get_ref(),
        (None, None) => IdentityLevel::None,
    };
    if a.identity_lookup && a.kind != Kind::Read {
        return Err(cx.err(span, format!("identity_lookup on {name:?}: an identity look-up is a read")));
    }
    if a.changes_order_status && (a.kind != Kind::Write || order_param.is_none()) {
        return Err(cx.err(span, format!("changes_order_status on {name:?} needs a write with an order_id parameter")));
    }
    Ok(ActionDef {
        name: name.to_string(),
        summary: a.summary,
        layer: a.layer,
        kind: a.kind,
        risk: a.risk,
        decision: a.decision.into_inner(),
        owner: a.owner.into_inner(),
        workflow: match a.workflow {
            Some(w) if w.get_ref().trim().is_empty() => return Err(cx.err(w.span(), "workflow must not be empty")),
            Some(w) => Some(w.into_inner()),
            None => None,
        },
        reads,
        identity,
        identity_lookup: a.identity_lookup,
        changes_order_status: a.changes_order_status,
        params,
        preconditions,
        money_param,
        order_param,
        customer_param,
        name_skeleton: identifier_skeleton(name),
        name_normalized: normalize(name),
    })
}

fn non_empty_set<T: Ord + Clone>(
    cx: &Ctx<'_>,
    list: Option<Spanned<Vec<T>>>,
    what: &str,
) -> Result<Option<BTreeSet<T>>, PolicyError> {
    match list {
        None => Ok(None),
        Some(l) if l.get_ref().is_empty() => Err(cx.err(l.span(), format!("an empty `{what}` list can never match"))),
        Some(l) => Ok(Some(l.into_inner().into_iter().collect())),
    }
}

fn compile_rule(
    cx: &Ctx<'_>,
    actions: &BTreeMap<String, ActionDef>,
    roles: &BTreeSet<String>,
    currencies: &BTreeSet<Currency>,
    r: raw::RawRule,
) -> Result<Rule, PolicyError> {
    if r.id.get_ref().trim().is_empty() {
        return Err(cx.err(r.id.span(), "rule id must not be empty"));
    }
    if r.reason.trim().is_empty() {
        return Err(cx.err(r.id.span(), "every rule needs a human-readable reason"));
    }
    if r.actions.get_ref().is_empty() {
        return Err(cx.err(r.actions.span(), "an empty `actions` list can never match"));
    }
    let mut names = BTreeSet::new();
    for a in r.actions.get_ref() {
        if !actions.contains_key(a.get_ref()) {
            return Err(cx.err(
                a.span(),
                format!("rule {:?} names unknown action {:?}: it could never match", r.id.get_ref(), a.get_ref()),
            ));
        }
        names.insert(a.get_ref().clone());
    }
    let money = |m: Option<Spanned<raw::MoneyText>>, what: &str| -> Result<Option<Money>, PolicyError> {
        let Some(m) = m else { return Ok(None) };
        let value: Money = m
            .get_ref()
            .0
            .parse()
            .map_err(|e| cx.err(m.span(), format!("{what}: {e} (write money as \"25.00 USD\")")))?;
        if !currencies.contains(&value.currency) {
            return Err(cx.err(
                m.span(),
                format!(
                    "{what} is in {} which this policy does not accept: the rule could never match",
                    value.currency
                ),
            ));
        }
        for a in &names {
            if actions[a].money_param.is_none() {
                return Err(cx.err(
                    m.span(),
                    format!("{what} on action {a:?}, which has no money parameter: the rule could never match"),
                ));
            }
        }
        Ok(Some(value))
    };
    let amount_over = money(r.amount_over, "amount_over")?;
    let case_total_over = money(r.case_total_over, "case_total_over")?;
    let order_total_over = money(r.order_total_over, "order_total_over")?;
    if [&amount_over, &case_total_over, &order_total_over]
        .iter()
        .filter_map(|m| m.as_ref().map(|m| &m.currency))
        .collect::<BTreeSet<_>>()
        .len()
        > 1
    {
        return Err(cx.err(r.id.span(), "a rule's money thresholds must share one currency, or it could never match"));
    }
    if order_total_over.is_some() {
        for a in &names {
            if actions[a].order_param.is_none() {
                return Err(cx.err(
                    r.id.span(),
                    format!("order_total_over on action {a:?}, which acts on no order: the rule could never match"),
                ));
            }
        }
    }
    let rule_roles = match r.roles {
        None => None,
        Some(list) if list.get_ref().is_empty() => {
            return Err(cx.err(list.span(), "an empty `roles` list can never match"));
        }
        Some(list) => {
            Some(list.get_ref().iter().map(|x| known_role(cx, roles, x)).collect::<Result<BTreeSet<_>, _>>()?)
        }
    };
    Ok(Rule {
        id: r.id.into_inner(),
        reason: r.reason,
        actions: names,
        decision: r.decision.into_inner(),
        channels: non_empty_set(cx, r.channels, "channels")?,
        stores: non_empty_set(cx, r.stores, "stores")?,
        platforms: non_empty_set(cx, r.platforms, "platforms")?,
        tenants: non_empty_set(cx, r.tenants, "tenants")?,
        roles: rule_roles,
        identity: r.identity,
        amount_over,
        case_total_over,
        order_total_over,
    })
}

fn compile_claims(
    cx: &Ctx<'_>,
    ids: &mut BTreeSet<String>,
    raw: Vec<Spanned<raw::RawClaim>>,
) -> Result<Vec<ClaimRule>, PolicyError> {
    let phrase_list = |list: &[Spanned<String>]| -> Result<Vec<Phrase>, PolicyError> {
        list.iter()
            .map(|p| {
                Phrase::new(p.get_ref()).ok_or_else(|| {
                    cx.err(p.span(), format!("phrase {:?} has no letters or digits: it could never match", p.get_ref()))
                })
            })
            .collect()
    };
    let mut out = Vec::new();
    for c in raw {
        let span = c.span();
        let c = c.into_inner();
        let patterns = compile_patterns(cx, span, &c.phrases, &c.regex)?;
        if !ids.insert(c.id.get_ref().clone()) {
            return Err(cx.err(c.id.span(), format!("duplicate id {:?}", c.id.get_ref())));
        }
        let ignore = phrase_list(&c.ignore)?;
        let contradicted_by = phrase_list(&c.contradicted_by)?;
        out.push(ClaimRule { id: c.id.into_inner(), reason: c.reason, patterns, ignore, contradicted_by });
    }
    Ok(out)
}

fn compile_patterns(
    cx: &Ctx<'_>,
    span: Range<usize>,
    phrases: &[Spanned<String>],
    regex: &[Spanned<String>],
) -> Result<Patterns, PolicyError> {
    if phrases.is_empty() && regex.is_empty() {
        return Err(cx.err(span, "a pattern rule needs at least one phrase or regex, or it could never match"));
    }
    compile_pattern_list(cx, phrases, regex)
}

/// `[signal_model]`: the model named must be the one this build carries (a policy's hash
/// then pins the model too), and the threshold a probability strictly between 0 and 1; the
/// same for `[signal_model.encoder]`, whose update and head the hash names.
fn compile_signal_model(cx: &Ctx<'_>, raw: raw::RawSignalModel) -> Result<LearnedSignals, PolicyError> {
    check_carried(cx, &raw.sha256, "signal model", crate::learned::BUILTIN_SHA256)?;
    let min_probability = probability(cx, "min_probability", &raw.min_probability)?;
    let encoder = match &raw.encoder {
        Some(e) => {
            check_carried(cx, &e.sha256, "signal encoder", countersign_encoder::BUILTIN_SHA256)?;
            let min_probability = probability(cx, "min_probability", &e.min_probability)?;
            let alone_min_probability = match &e.alone_min_probability {
                Some(p) => Some(above_the_mean(cx, p, min_probability)?),
                None => None,
            };
            Some(EncoderSignals { min_probability, alone_min_probability })
        }
        None => None,
    };
    let found_at = encoder.map_or(min_probability, |e| e.min_probability);
    let patterns_min_probability = match &raw.patterns_min_probability {
        Some(p) => Some(below_found_at(cx, p, found_at, "")?),
        None => None,
    };
    let mut categories = Vec::new();
    for (name, table) in &raw.categories {
        // A category's thresholds are chosen for the mean of the two models: read against
        // the model's probability alone, a floor would set aside hits it was never meant to.
        if encoder.is_none() {
            return Err(cx.err(
                table.span(),
                format!(
                    "[signal_model.categories.{name}] needs [signal_model.encoder]: a category's thresholds are \
                     for the mean of the model's and the encoder's probabilities; without the encoder, the shared \
                     ones decide"
                ),
            ));
        }
        let Some(category) = crate::learned::CATEGORIES.iter().copied().find(|c| c.as_str() == name) else {
            let known: Vec<&str> = crate::learned::CATEGORIES.iter().map(|c| c.as_str()).collect();
            return Err(cx.err(
                table.span(),
                format!(
                    "[signal_model.categories.{name}]: the learned models read no category {name:?} (they read: {})",
                    known.join(", ")
                ),
            ));
        };
        let t = table.get_ref();
        if t.min_probability.is_none() && t.patterns_min_probability.is_none() {
            return Err(cx.err(
                table.span(),
                format!(
                    "[signal_model.categories.{name}] changes nothing: give min_probability, \
                     patterns_min_probability or both"
                ),
            ));
        }
        let min = t.min_probability.as_ref().map(|p| probability(cx, "min_probability", p)).transpose()?;
        if let (Some(min), Some(p), Some(alone)) =
            (min, &t.min_probability, encoder.and_then(|e| e.alone_min_probability))
            && min >= alone
        {
            return Err(cx.err(
                p.span(),
                format!(
                    "[signal_model.categories.{name}] min_probability ({min}) must be below [signal_model.encoder] \
                     alone_min_probability ({alone}): the encoder on its own is trusted only where it is surer than \
                     the two models together need to be"
                ),
            ));
        }
        let found_at = min.unwrap_or(found_at);
        let floor = match (&t.patterns_min_probability, patterns_min_probability) {
            (Some(p), _) => Some(below_found_at(cx, p, found_at, &format!(" for {name}"))?),
            // The policy's floor, under this category's own threshold.
            (None, Some(floor)) if floor >= found_at => {
                let at = t.min_probability.as_ref().map_or(table.span(), |p| p.span());
                return Err(cx.err(
                    at,
                    format!(
                        "[signal_model.categories.{name}] min_probability ({found_at}) must be above \
                         [signal_model] patterns_min_probability ({floor}), or the category needs a lower \
                         patterns_min_probability of its own: at or below the floor, the patterns would find \
                         nothing the models do not"
                    ),
                ));
            }
            (None, _) => None,
        };
        categories.push((category, CategoryThresholds { min_probability: min, patterns_min_probability: floor }));
    }
    Ok(LearnedSignals {
        model: &crate::learned::BUILTIN,
        min_probability,
        patterns_min_probability,
        encoder,
        categories,
    })
}

/// `[signal_model.encoder] alone_min_probability`: a probability, and above the mean's
/// threshold (at or below it, the encoder alone would find more than the two together are
/// trusted to).
fn above_the_mean(cx: &Ctx<'_>, p: &Spanned<f64>, mean_at: f64) -> Result<f64, PolicyError> {
    let alone = probability(cx, "alone_min_probability", p)?;
    if alone <= mean_at {
        return Err(cx.err(
            p.span(),
            format!(
                "[signal_model.encoder] alone_min_probability ({alone}) must be above its min_probability \
                 ({mean_at}): the encoder on its own is trusted only where it is surer than the two models \
                 together need to be"
            ),
        ));
    }
    Ok(alone)
}

/// A `patterns_min_probability`: a probability, and below the threshold at which the models
/// find the category on their own (`of`: " for chargeback" for a category's own, else empty).
fn below_found_at(cx: &Ctx<'_>, p: &Spanned<f64>, found_at: f64, of: &str) -> Result<f64, PolicyError> {
    let floor = bounded(cx, "patterns_min_probability", p, "0 would set no hit aside, 1 every one")?;
    if floor >= found_at {
        return Err(cx.err(
            p.span(),
            format!(
                "patterns_min_probability{of} ({floor}) must be below the probability at which the models find a \
                 category on their own ({found_at}): at or above it, the patterns would find nothing the \
                 models do not"
            ),
        ));
    }
    Ok(floor)
}

/// `[signal_languages]`: known ISO 639-3 codes, each once, at least one; a floor that
/// changes something.
fn compile_signal_languages(
    cx: &Ctx<'_>,
    raw: raw::RawSignalLanguages,
) -> Result<crate::language::SignalLanguages, PolicyError> {
    use crate::language::SignalLanguages;
    let mut read = Vec::new();
    for code in raw.read.get_ref() {
        let Some(lang) = SignalLanguages::lang(code.get_ref()) else {
            return Err(cx.err(
                code.span(),
                format!(
                    "{:?} is not a language this build can identify: name it by its ISO 639-3 code (\"eng\" for \
                     English, \"tgl\" for Tagalog)",
                    code.get_ref()
                ),
            ));
        };
        if read.contains(&lang) {
            return Err(cx.err(code.span(), format!("{} ({:?}) is named twice", lang.eng_name(), code.get_ref())));
        }
        read.push(lang);
    }
    if read.is_empty() {
        return Err(cx.err(
            raw.read.span(),
            "`read` names no language: name the ones the signals' patterns and models were written for (\"eng\")",
        ));
    }
    if *raw.unread.get_ref() == Outcome::Auto {
        return Err(cx.err(
            raw.unread.span(),
            "a text the signals cannot read at `auto` would change nothing; use confirm or stricter",
        ));
    }
    Ok(SignalLanguages { read, unread: raw.unread.into_inner() })
}

/// A model named by its SHA-256 must be the one this build carries.
fn check_carried(cx: &Ctx<'_>, sha256: &Spanned<String>, what: &str, carried: &str) -> Result<(), PolicyError> {
    let asked = sha256.get_ref().trim().trim_start_matches("sha256:").to_ascii_lowercase();
    if asked != carried {
        return Err(cx.err(
            sha256.span(),
            format!(
                "this policy asks for the {what} {asked}, and this build of Countersign carries {carried}: \
                 name that one, or run the build the policy was written for"
            ),
        ));
    }
    Ok(())
}

fn probability(cx: &Ctx<'_>, name: &str, p: &Spanned<f64>) -> Result<f64, PolicyError> {
    bounded(cx, name, p, "0 would find every category in every message, 1 none")
}

/// A probability strictly between 0 and 1; `why` says what the ends would do.
fn bounded(cx: &Ctx<'_>, name: &str, p: &Spanned<f64>, why: &str) -> Result<f64, PolicyError> {
    let v = *p.get_ref();
    if !(v > 0.0 && v < 1.0) {
        return Err(cx.err(p.span(), format!("{name} must be between 0 and 1 ({why})")));
    }
    Ok(v)
}

/// Token patterns, guards and negations, each error at the string it is about.
fn compile_detector(
    cx: &Ctx<'_>,
    families: &Families,
    patterns: &[Spanned<String>],
    guards: &[Spanned<String>],
    negation: &[Spanned<String>],
) -> Result<Detector, PolicyError> {
    let parse = |list: &[Spanned<String>], what: &str| -> Result<Vec<TokenPattern>, PolicyError> {
        list.iter()
            .map(|p| {
                TokenPattern::parse(p.get_ref(), families)
                    .map_err(|m| cx.err(p.span(), format!("{what} {:?}: {m}", p.get_ref())))
            })
            .collect()
    };
    let mut negations = Vec::new();
    for n in negation {
        let words = n.get_ref();
        if let Some(name) = words.strip_prefix('@') {
            let fam = families.get(name).ok_or_else(|| {
                cx.err(n.span(), format!("unknown word family `@{name}`: define it under [signal_words]"))
            })?;
            negations.extend(fam.iter().cloned());
        } else {
            let w = stemmed_words(words);
            if w.is_empty() {
                return Err(cx.err(n.span(), format!("negation {words:?} has no letters or digits")));
            }
            negations.push(w);
        }
    }
    Ok(Detector::new(parse(patterns, "pattern")?, parse(guards, "guard")?, negations))
}

/// Phrases and regexes (either list may be empty).
fn compile_pattern_list(
    cx: &Ctx<'_>,
    phrases: &[Spanned<String>],
    regex: &[Spanned<String>],
) -> Result<Patterns, PolicyError> {
    let mut out = Patterns { phrases: Vec::new(), regex: Vec::new(), phrase_filter: None };
    for p in phrases {
        out.phrases.push(Phrase::new(p.get_ref()).ok_or_else(|| {
            cx.err(p.span(), format!("phrase {:?} has no letters or digits: it could never match", p.get_ref()))
        })?);
    }
    for r in regex {
        let re = regex::RegexBuilder::new(r.get_ref())
            .size_limit(1 << 20)
            .build()
            .map_err(|e| cx.err(r.span(), format!("invalid regex: {e}")))?;
        out.regex.push(re);
    }
    if !out.phrases.is_empty() {
        // An alternation of escaped literals matches exactly where one of them
        // occurs as a substring (the regex engine scans for all at once).
        let alternation: Vec<String> = out.phrases.iter().map(|p| regex::escape(p.normalized())).collect();
        out.phrase_filter = regex::RegexBuilder::new(&alternation.join("|")).size_limit(1 << 20).build().ok();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::normalize;
    use proptest::prelude::*;

    const DEMO: &str = include_str!("../../../../assets/demo/policy.toml");

    /// Parsed once: compiling the regexes is slow in debug builds.
    static POLICY: std::sync::LazyLock<Policy> =
        std::sync::LazyLock::new(|| Policy::parse("demo", DEMO).expect("demo policy"));

    /// `Patterns::find` without the phrase filter.
    fn reference_find(p: &Patterns, normalized: &str) -> Option<String> {
        if let Some(ph) = p.phrases.iter().find(|ph| ph.is_in(normalized)) {
            return Some(ph.original().to_string());
        }
        p.regex.iter().find(|r| r.is_match(normalized)).map(|r| r.as_str().to_string())
    }

    fn all_patterns(policy: &Policy) -> Vec<&Patterns> {
        policy.signals.iter().map(|s| &s.patterns).chain(policy.reply.promises.iter().map(|p| &p.patterns)).collect()
    }

    /// Every word of every demo phrase, plus some others: texts made of them hit
    /// phrases, partial phrases and overlaps.
    fn words() -> Vec<String> {
        let mut w: Vec<String> = all_patterns(&POLICY)
            .iter()
            .flat_map(|p| p.phrases.iter().flat_map(|ph| ph.normalized().split_whitespace().map(str::to_string)))
            .collect();
        w.extend(["order", "refund", "mug", "s", "wife", "the", "by", "friday"].map(String::from));
        w.sort();
        w.dedup();
        w
    }

    #[test]
    fn phrase_filter_is_built_and_finds_each_phrase() {
        for p in all_patterns(&POLICY) {
            assert_eq!(p.phrase_filter.is_some(), !p.phrases.is_empty());
            for ph in &p.phrases {
                let text = normalize(&format!("well, {} — really", ph.original()));
                assert_eq!(p.find(&text), reference_find(p, &text));
                assert!(p.find(&text).is_some(), "{:?} must be found", ph.original());
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn find_equals_the_unfiltered_search(picks in prop::collection::vec(any::<prop::sample::Index>(), 0..12)) {
            let words = words();
            let text: Vec<&str> = picks.iter().map(|i| words[i.index(words.len())].as_str()).collect();
            let text = normalize(&text.join(" "));
            for p in all_patterns(&POLICY) {
                prop_assert_eq!(p.find(&text), reference_find(p, &text));
            }
        }
    }
}
