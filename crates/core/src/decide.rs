//! The decision function: case + plan + trusted facts → a decision per step and
//! for the reply. Pure: everything it needs, time included, is passed in.
//!
//! Semantics, in the order they are applied to each step (every check that fires
//! adds a reason; the final outcome is the most restrictive of them all):
//!
//! 1. **Deny by default**: an action the policy does not name is `forbid`.
//! 2. **Schema**: unknown, missing or ill-typed parameters make the step `forbid`.
//! 3. **Base**: the action's own decision.
//! 4. **Identity**: an action needing a verification level (`matched`, `strong`) the
//!    customer has not reached is at most `recommend`. The level is a fact the engine
//!    derives from evidence ([`IdentityFacts`]), never the case's own claim.
//! 5. **Preconditions** on the order (status, ownership, refundable amount,
//!    currency): `forbid` when unmet or when the order facts are unknown. **Ownership**:
//!    every entity id a step names (order, customer, item, payment method) must belong
//!    to the case's customer, from trusted facts; `forbid` when it does not or cannot be
//!    shown. **Conflicts**: a write on an order that an earlier step of the same plan
//!    moves to another status is `forbid` (plan it again once that step has run).
//! 6. **Provenance**: a parameter lifted from untrusted text makes the step at least
//!    `confirm` — an untrusted value can never raise autonomy. Waived for an identity
//!    look-up (its values are what it checks) and for a read of an entity the facts show
//!    belongs to the verified customer.
//! 7. **Rules**: every matching rule's decision (money thresholds are per step and
//!    cumulative over the case and the order, earlier steps of the plan included).
//! 8. **Escalation signals** in the customer's text: a floor for every step. A customer's
//!    text in a language the signals do not read (`[signal_languages]`) is a floor for
//!    every write and the reply ([`crate::language`]).
//! 9. **Pauses**: a matching active pause is `forbid`, always.
//!
//! The planner's own risk opinion (`Step::planner_risk`) is never read.

use std::collections::BTreeMap;
// Writing into a String cannot fail.
use std::fmt::Write as _;

use jiff::Timestamp;
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::claims::{Cited, ClaimCheck, ClaimStatus, Known, check_claims};
use crate::digest::step_digest;
use crate::learned::SignalModel;
use crate::model::{Case, FlaggedSignal, IdentityLevel, IdentityStatus, Operator, Pause, Plan, Step};
use crate::money::{Currency, Money};
use crate::normalize::{identifier_skeleton, normalize};
use crate::policy::{ActionDef, Kind, Layer, Outcome, ParamType, Policy, PromiseCategory, Risk, Rule, SignalCategory};
use crate::validate::{PlanError, check_params, check_plan};

/// What the platform says about an order (structured, trusted; read by a connector).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderFacts {
    pub order_id: String,
    pub customer_id: String,
    pub status: String,
    pub currency: Currency,
    /// Total paid, as a decimal string.
    #[schemars(with = "String")]
    pub paid: Decimal,
    /// Total already refunded, as a decimal string.
    #[schemars(with = "String")]
    pub refunded: Decimal,
    /// The ids of the order's items, when the platform's read shows them (`None`: not
    /// known, so no step can show that an item id belongs to this order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item_ids: Option<Vec<String>>,
}

/// What the platform says about a customer account (structured, trusted; read by a
/// connector): what belongs to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerFacts {
    pub customer_id: String,
    /// The ids of the account's payment methods (cards, PayPal, gift cards).
    pub payment_method_ids: Vec<String>,
}

/// How the case's customer was verified, derived by the engine from evidence: the
/// channel's signed-in account, identity look-ups it ran, an agent's recorded check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdentityFacts {
    /// The account the evidence shows is writing (`None`: nothing shows one).
    #[serde(default)]
    pub customer_id: Option<String>,
    #[serde(default)]
    pub level: IdentityLevel,
    /// How, in words, one line per piece of evidence (or why it fell short).
    #[serde(default)]
    pub how: Vec<String>,
}

/// Where an earlier step stands; all of these count toward cumulative limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PriorState {
    /// Waiting for a countersignature.
    Pending,
    /// Approved, not yet executed.
    Approved,
    /// Executed; for refunds it is already in [`OrderFacts::refunded`].
    Executed,
}

/// An earlier money step on this case or this order (from the evidence log).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PriorStep {
    pub case_id: String,
    pub action: String,
    #[serde(default)]
    pub order_id: Option<String>,
    pub amount: Money,
    pub state: PriorState,
    /// Which recorded step this is (a simulation follows it through a draft policy);
    /// absent in facts recorded before these were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_id: Option<String>,
}

/// The trusted facts a decision needs besides the case and the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    pub now: Timestamp,
    pub operator: Operator,
    #[serde(default)]
    pub orders: BTreeMap<String, OrderFacts>,
    #[serde(default)]
    pub history: Vec<PriorStep>,
    #[serde(default)]
    pub pauses: Vec<Pause>,
    /// The accounts the plan's steps name (the case's customer first), as read.
    #[serde(default)]
    pub customers: BTreeMap<String, CustomerFacts>,
    /// How the case's customer was verified.
    #[serde(default)]
    pub identity: IdentityFacts,
    /// Whether each citation of the reply draft resolves, in the draft's order. The
    /// engine checks them (against the passages retrieval returned to the planner, or
    /// against the knowledge index for a plan that came from elsewhere); a citation with
    /// no fact here counts as unresolved.
    #[serde(default)]
    pub citations: Vec<CitationFact>,
    /// Set while this desktop belongs to a team and holds no fresh lease from the team
    /// service: it cannot know it has seen every pause, so the policy's `[cut_off]`
    /// floors apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut_off: Option<crate::team::CutOff>,
}

/// Whether one citation of the reply draft resolves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CitationFact {
    /// `article#anchor` as cited.
    pub label: String,
    pub resolved: bool,
    /// Why it does not resolve (empty when it does).
    #[serde(default)]
    pub detail: String,
    /// The cited passage's text as the knowledge index holds it (the whole article for a
    /// citation that names no section), when it resolves. Trusted: the engine reads it
    /// from the index, never from the draft's quote. The reply's claims are checked
    /// against it ([`crate::claims`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passage: Option<String>,
}

/// One reason behind a decision: which rule, what it decided, in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Reason {
    pub rule: String,
    pub decision: Outcome,
    pub text: String,
}

/// The policy's decision on one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StepDecision {
    pub step_id: String,
    pub action: String,
    pub decision: Outcome,
    /// Every check that fired, most restrictive first.
    pub reasons: Vec<Reason>,
    pub rule_ids: Vec<String>,
    /// SHA-256 of the canonical (action, params): an approval binds to it.
    pub step_digest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<Layer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<Risk>,
    /// Who owns the outcome of this action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Roles that may countersign (empty unless `confirm` or `supervisor`).
    pub approver_roles: Vec<String>,
    /// Fields the context read for this step may include.
    pub may_read: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub money: Option<Money>,
}

/// A signal found in the customer's text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SignalHit {
    pub id: String,
    pub category: SignalCategory,
    pub matched: String,
    pub escalate: Outcome,
    pub reason: String,
}

/// A promise found in the reply draft.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PromiseHit {
    pub id: String,
    pub category: PromiseCategory,
    pub matched: String,
}

/// The policy's decision on sending the drafted reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReplyDecision {
    pub decision: Outcome,
    pub reasons: Vec<Reason>,
    pub rule_ids: Vec<String>,
    pub promises: Vec<PromiseHit>,
    pub unresolved_citations: Vec<String>,
    pub owner: String,
    pub approver_roles: Vec<String>,
    /// Each factual claim of the draft (amount, duration, date, claim phrase) and whether a
    /// cited passage states it ([`crate::claims`]).
    #[serde(default)]
    pub claims: Vec<ClaimCheck>,
}

/// The decisions on a whole plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PlanDecision {
    pub plan_id: String,
    pub case_id: String,
    pub policy_id: String,
    pub policy_version: u64,
    pub policy_hash: String,
    /// An escalation signal fired: a human takes the case over; nothing auto-runs.
    pub handoff: bool,
    pub signals: Vec<SignalHit>,
    /// Patterns' hits that the learned models set aside as the words' ordinary use
    /// (`[signal_model] patterns_min_probability`): shown with the decision, never escalated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set_aside: Vec<SignalHit>,
    pub steps: Vec<StepDecision>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<ReplyDecision>,
}

impl PlanDecision {
    /// Count of steps per outcome.
    pub fn tally(&self) -> BTreeMap<Outcome, usize> {
        let mut t = BTreeMap::new();
        for s in &self.steps {
            *t.entry(s.decision).or_insert(0) += 1;
        }
        t
    }
}

struct Acc {
    reasons: Vec<Reason>,
}

impl Acc {
    fn add(&mut self, rule: impl Into<String>, decision: Outcome, text: impl Into<String>) {
        self.reasons.push(Reason { rule: rule.into(), decision, text: text.into() });
    }

    fn finish(mut self) -> (Outcome, Vec<Reason>, Vec<String>) {
        // Stable sort: most restrictive first, then in the order they were found.
        self.reasons.sort_by_key(|r| std::cmp::Reverse(r.decision));
        let outcome = self.reasons.first().map_or(Outcome::Forbid, |r| r.decision);
        let mut ids = Vec::new();
        for r in &self.reasons {
            if !ids.contains(&r.rule) {
                ids.push(r.rule.clone());
            }
        }
        (outcome, self.reasons, ids)
    }
}

/// What the case's words give every decision of a plan: the signals (the planner's flags
/// included), and the languages the signals do not read that the customer wrote in.
struct Found<'a> {
    signals: &'a [SignalHit],
    unread: &'a [crate::language::UnreadText],
}

impl Found<'_> {
    /// `[signal_languages] unread`, when the customer wrote in a language the signals do
    /// not read: what they would have found there is unknown.
    fn language_floor(&self, acc: &mut Acc, policy: &Policy, when: &str) {
        let (Some(languages), false) = (&policy.signal_languages, self.unread.is_empty()) else { return };
        let written: Vec<&str> = self.unread.iter().map(|u| u.language.as_str()).collect();
        acc.add(
            "signals.language",
            languages.unread,
            format!(
                "The customer wrote in a language the escalation signals do not read (it reads as {}; they read {} \
                 only): a person reads the case {when}",
                written.join(" and "),
                languages.read_names()
            ),
        );
    }
}

/// A money step earlier in this plan, counted toward later steps' totals.
struct Counted {
    action: String,
    order_id: Option<String>,
    amount: Money,
    refund_like: bool,
}

/// A write earlier in this plan that moves its order to another status.
struct Moved {
    step_id: String,
    action: String,
    order_id: String,
}

/// What the steps before this one in the plan do.
struct Earlier<'a> {
    counted: &'a [Counted],
    moved: &'a [Moved],
}

/// The account the case is about: the one the case names (a claim: ownership against it
/// shows only that the ids agree; the identity check says whether it is verified), else
/// the one the evidence verified.
fn customer_of<'a>(case: &'a Case, facts: &'a Facts) -> Option<&'a str> {
    case.customer.as_ref().map(|c| c.id.as_str()).or(facts.identity.customer_id.as_deref())
}

/// The verification level the evidence shows for the case's customer.
fn identity_level(case: &Case, facts: &Facts) -> IdentityLevel {
    match (&facts.identity.customer_id, &case.customer) {
        (Some(verified), Some(claimed)) if *verified != claimed.id => IdentityLevel::None,
        (Some(_), _) => facts.identity.level,
        (None, _) => IdentityLevel::None,
    }
}

/// Decide every step of `plan` and its reply, scanning the case for signals first.
/// The engine scans a case once per revision and calls [`decide_scanned`].
pub fn decide(policy: &Policy, case: &Case, plan: &Plan, facts: &Facts) -> Result<PlanDecision, PlanError> {
    decide_scanned(policy, case, plan, facts, &CaseScan::new(policy, case))
}

/// Decide every step of `plan` and its reply, with the signals already found in the
/// case (`scan`, made by [`CaseScan::new`] for this policy and this case's words). A scan
/// made for another policy or case is not trusted: the case is scanned again.
pub fn decide_scanned(
    policy: &Policy,
    case: &Case,
    plan: &Plan,
    facts: &Facts,
    scan: &CaseScan,
) -> Result<PlanDecision, PlanError> {
    check_plan(case, plan)?;

    let rescanned;
    let scan = if scan.is_for(policy, case) {
        scan
    } else {
        rescanned = CaseScan::new(policy, case);
        &rescanned
    };
    let signals = with_flagged(policy, plan, &scan.signals);
    let found = Found { signals: &signals, unread: &scan.unread };

    let mut counted: Vec<Counted> = Vec::new();
    let mut moved: Vec<Moved> = Vec::new();
    let mut steps = Vec::with_capacity(plan.steps.len());
    for step in &plan.steps {
        let earlier = Earlier { counted: &counted, moved: &moved };
        let d = decide_step(policy, case, plan, facts, &found, &earlier, step);
        if let Some(def) = policy.actions.get(&step.action)
            && def.changes_order_status
            && let Some(order_id) = order_of(def, step)
        {
            moved.push(Moved { step_id: step.id.clone(), action: step.action.clone(), order_id });
        }
        // Every earlier money step of the plan counts toward later totals, whatever
        // it was decided: counting only the runnable ones would let a stricter
        // decision on one step relax another (and splitting is suspect anyway).
        if let (Some(amount), Some(def)) = (d.money.clone(), policy.actions.get(&step.action)) {
            counted.push(Counted {
                action: step.action.clone(),
                order_id: order_of(def, step),
                amount,
                refund_like: def.preconditions.within_refundable,
            });
        }
        steps.push(d);
    }

    let reply = plan.reply.as_ref().map(|draft| decide_reply(policy, case, plan, facts, &found, draft));

    Ok(PlanDecision {
        plan_id: plan.id.clone(),
        case_id: case.id.clone(),
        policy_id: policy.id.clone(),
        policy_version: policy.version,
        policy_hash: policy.hash.clone(),
        handoff: !signals.is_empty(),
        signals,
        set_aside: scan.set_aside.clone(),
        steps,
        reply,
    })
}

/// The policy's escalation signals found in what the customer wrote (over the normal
/// form of the text, so look-alike letters and invisible characters hide nothing).
pub fn signals(policy: &Policy, case: &Case) -> Vec<SignalHit> {
    CaseScan::new(policy, case).signals
}

/// The signals found in some texts (the subject and the customer's messages, or one
/// message of an evaluation set): exact phrases and regexes over the whole normalised
/// text, token patterns clause by clause ([`crate::detect`]). Each text is read once.
pub fn scan_texts<'a>(policy: &Policy, texts: impl IntoIterator<Item = &'a str>) -> Vec<SignalHit> {
    scan(policy, texts).signals
}

/// What a scan of some texts found: the signals, and the patterns' hits the learned models
/// set aside.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scanned {
    pub signals: Vec<SignalHit>,
    /// Patterns' hits whose category the learned models give less than
    /// `[signal_model] patterns_min_probability` in these texts: the pattern's words taken
    /// in their ordinary sense ("the tent is a suicide mission in wind"). Never escalated.
    pub set_aside: Vec<SignalHit>,
}

/// A pattern's hit is set aside only in a text of at least this many words: on fewer, the
/// learned models are unsure ("I know where you live." is five words, and a threat). In
/// the labelled set, every false handoff the models set aside is in a message of 10 words
/// or more (docs/signals.md, step 32).
pub const SET_ASIDE_MIN_WORDS: usize = 10;

/// … and of at most this many: the labelled set's messages have at most 116 words, so the
/// models' reading of a longer text is untested, and in a long one (a pasted thread) a
/// sentence weighs little in the model's features and may lie past the windows the
/// encoder reads.
pub const SET_ASIDE_MAX_WORDS: usize = 150;

/// One of a case's texts, as far as setting a pattern's hit aside needs it.
struct TextForm {
    normalized: String,
    clauses: Vec<crate::detect::Clause>,
    /// The learned models read this text's words as the patterns do, and enough of them.
    read_alike: bool,
}

impl TextForm {
    fn of(text: &str) -> TextForm {
        let words = crate::learned::words_alike(text);
        TextForm {
            normalized: normalize(text),
            clauses: crate::detect::clauses(text),
            read_alike: words.is_some_and(|n| (SET_ASIDE_MIN_WORDS..=SET_ASIDE_MAX_WORDS).contains(&n)),
        }
    }
}

/// Whether the learned models read what a signal's patterns found, and enough of it, for
/// their word on its sense to count: every text that the signal finds on its own has
/// between [`SET_ASIDE_MIN_WORDS`] and [`SET_ASIDE_MAX_WORDS`] words, which the models
/// read as the patterns do ([`crate::learned::words_alike`]: not with a look-alike letter,
/// a symbol or a mark that the patterns see through, nor a word of another script); a hit
/// that no text makes on its own
/// (the words run from one message into the next) is kept.
fn models_read_it(signal: &crate::policy::Signal, forms: &[TextForm]) -> bool {
    let mut any = false;
    for form in forms {
        if signal.patterns.find(&form.normalized).or_else(|| signal.detector.find(&form.clauses)).is_some() {
            if !form.read_alike {
                return false;
            }
            any = true;
        }
    }
    any
}

/// [`scan_texts`], with the hits set aside. A pattern's hit is set aside when the policy
/// asks for it (`[signal_model] patterns_min_probability`, or the category's own), the
/// learned models read the case (an encoder that failed sets nothing aside), give the hit's
/// category less than that and do not find it (the encoder alone may), and read the words
/// the pattern found ([`models_read_it`]).
pub fn scan<'a>(policy: &Policy, texts: impl IntoIterator<Item = &'a str>) -> Scanned {
    let texts: Vec<&str> = texts.into_iter().collect();
    let mut normalized = String::new();
    let mut clauses = Vec::new();
    for &t in &texts {
        normalized.push_str(&normalize(t));
        clauses.extend(crate::detect::clauses(t));
    }
    let patterns: Vec<(&crate::policy::Signal, SignalHit)> = policy
        .signals
        .iter()
        .filter_map(|s| {
            let matched = s.patterns.find(&normalized).or_else(|| s.detector.find(&clauses))?;
            let hit = SignalHit {
                id: s.id.clone(),
                category: s.category,
                matched,
                escalate: s.escalate,
                reason: s.reason.clone(),
            };
            Some((s, hit))
        })
        .collect();
    let Some(learned) = &policy.signal_model else {
        return Scanned { signals: patterns.into_iter().map(|(_, h)| h).collect(), set_aside: Vec::new() };
    };
    let read = learned_findings(learned, &texts);
    // The categories whose every pattern's hit the models read as ordinary (a category is
    // set aside whole, so a stricter signal of it never gives way to a softer one).
    let mut aside: Vec<(SignalCategory, f64, f64)> = Vec::new();
    // Built on the first hit under its floor only (rare): the texts' forms, and the
    // categories already checked, each once.
    let mut forms: Option<Vec<TextForm>> = None;
    let mut checked: Vec<SignalCategory> = Vec::new();
    for (_, hit) in &patterns {
        let c = hit.category;
        let (Some(floor), Some(p)) = (learned.patterns_floor(c), read.probability(c)) else { continue };
        // A category the models find is never set aside (the encoder alone may find one
        // whose mean is under the floor).
        if p >= floor || checked.contains(&c) || read.finds(c) {
            continue;
        }
        checked.push(c);
        let forms = forms.get_or_insert_with(|| texts.iter().map(|t| TextForm::of(t)).collect());
        if patterns.iter().filter(|(_, h)| h.category == c).all(|(s, _)| models_read_it(s, forms)) {
            aside.push((c, p, floor));
        }
    }
    let mut out = Scanned::default();
    for (_, hit) in patterns {
        match aside.iter().find(|(c, _, _)| *c == hit.category) {
            Some(&(c, p, floor)) => {
                let reason = format!(
                    "{} (set aside: {} p = {p:.2} for {}, below {floor}: the words taken in their ordinary sense)",
                    hit.reason,
                    read.by,
                    c.as_str()
                );
                out.set_aside.push(SignalHit { reason, ..hit });
            }
            None => out.signals.push(hit),
        }
    }
    for (category, matched, p) in read.found {
        if out.signals.iter().any(|h| h.category == category) {
            continue;
        }
        let what = policy
            .signals
            .iter()
            .find(|s| s.category == category)
            .map_or("The learned model finds a signal", |s| s.reason.as_str());
        let reason = match p {
            Some(_) => format!("{what} ({matched})"),
            None => format!("{what} (the signal encoder could not read the case, so it counts as found)"),
        };
        out.signals.push(SignalHit {
            id: format!("model.{}", category.as_str()),
            category,
            matched,
            escalate: strictest_escalation(policy, category),
            reason,
        });
    }
    out
}

/// What the learned models made of a case's texts.
struct LearnedRead {
    /// The categories found, with what matched and the probability (none: the encoder
    /// failed, and the category counts as found).
    found: Vec<(SignalCategory, String, Option<f64>)>,
    /// Each category's highest probability over the texts: the mean of the model's and the
    /// encoder's with the encoder, the model's without. None when the encoder failed (then
    /// nothing is set aside).
    probabilities: Option<Vec<(SignalCategory, f64)>>,
    /// Whose probability that is, for a reason: "the learned model and encoder: mean".
    by: &'static str,
}

impl LearnedRead {
    fn probability(&self, category: SignalCategory) -> Option<f64> {
        self.probabilities.as_ref()?.iter().find(|(c, _)| *c == category).map(|(_, p)| *p)
    }

    fn finds(&self, category: SignalCategory) -> bool {
        self.found.iter().any(|(c, _, _)| *c == category)
    }
}

/// The categories the learned models find in a case's texts, each read on its own as they
/// were trained ([`crate::learned::text_groups`]: ordinary words in another message must not
/// dilute a message that says it), with what matched and the probability. A category counts
/// when the model's probability reaches `[signal_model]`'s threshold; with
/// `[signal_model.encoder]`, when the mean of the model's and the encoder's reaches the
/// encoder's threshold instead (on unseen writers it found more than the model alone at
/// about the same false handoffs; docs/signals.md); a category with a threshold of its own
/// (`[signal_model.categories.<category>] min_probability`) is found at that one; and with
/// the encoder's `alone_min_probability`, whenever the encoder alone is that sure. An encoder
/// that cannot be loaded or read a text fails closed: each of its categories counts, with no
/// probability.
// Probabilities, never money.
#[allow(clippy::float_arithmetic)]
fn learned_findings(learned: &crate::policy::LearnedSignals, texts: &[&str]) -> LearnedRead {
    let model: &SignalModel = learned.model;
    let categories = model.categories();
    let groups = crate::learned::text_groups(texts);
    let mut best = vec![0.0_f64; categories.len()];
    let mut best_mean = vec![0.0_f64; categories.len()];
    let mut best_encoder = vec![0.0_f64; categories.len()];
    let mut failed: Option<String> = None;
    let encoder = learned.encoder.map(|_| crate::learned::encoder());
    // Where each of the model's categories is in the encoder's output.
    let at: Vec<Option<usize>> = match &encoder {
        Some(Ok(e)) => categories.iter().map(|c| e.categories().iter().position(|n| n == c.as_str())).collect(),
        _ => vec![None; categories.len()],
    };
    if let Some(Err(e)) = &encoder {
        failed = Some(e.to_string());
    }
    if let (Some(Ok(_)), Some(j)) = (&encoder, at.iter().position(Option::is_none)) {
        failed = Some(format!("it gives no probability for {}", categories[j].as_str()));
    }
    for g in &groups {
        let p = model.probabilities(g);
        let q = match &encoder {
            Some(Ok(_)) => match crate::learned::encoder_probabilities(g) {
                Ok(q) if q.iter().all(|v| v.is_finite()) => Some(q),
                Ok(_) => {
                    failed = Some("it gave a probability that is not a number".into());
                    None
                }
                Err(e) => {
                    failed = Some(e);
                    None
                }
            },
            _ => None,
        };
        for (j, &pj) in p.iter().enumerate() {
            best[j] = best[j].max(pj);
            if let (Some(q), Some(k)) = (&q, at[j]) {
                best_mean[j] = best_mean[j].max((pj + q[k]) / 2.0);
                best_encoder[j] = best_encoder[j].max(q[k]);
            }
        }
    }
    let alone = learned.encoder.and_then(|e| e.alone_min_probability);
    let mut out = Vec::new();
    for (j, &category) in categories.iter().enumerate() {
        match (&encoder, &failed) {
            (None, _) if best[j] >= learned.found_at(category) => {
                out.push((category, format!("learned model: p = {:.2}", best[j]), Some(best[j])));
            }
            (Some(_), Some(e)) => out.push((category, format!("the signal encoder failed: {e}"), None)),
            (Some(_), None) if best_mean[j] >= learned.found_at(category) => {
                out.push((
                    category,
                    format!("learned model and encoder: mean p = {:.2}", best_mean[j]),
                    Some(best_mean[j]),
                ));
            }
            (Some(_), None) if alone.is_some_and(|a| best_encoder[j] >= a) => {
                out.push((
                    category,
                    format!(
                        "encoder alone: p = {:.3} (mean with the learned model {:.2})",
                        best_encoder[j], best_mean[j]
                    ),
                    Some(best_encoder[j]),
                ));
            }
            _ => {}
        }
    }
    let (probabilities, by) = match (&encoder, &failed) {
        (None, _) => (Some(categories.iter().copied().zip(best).collect()), "the learned model:"),
        (Some(_), Some(_)) => (None, ""),
        (Some(_), None) => {
            (Some(categories.iter().copied().zip(best_mean).collect()), "the learned model and encoder: mean")
        }
    };
    LearnedRead { found: out, probabilities, by }
}

/// A signal added to what the policy's patterns found (a planner's flag, the learned model)
/// escalates as strictly as the policy's strictest signal of its category, `supervisor` when
/// the policy has none.
fn strictest_escalation(policy: &Policy, category: SignalCategory) -> Outcome {
    policy.signals.iter().filter(|s| s.category == category).map(|s| s.escalate).max().unwrap_or(Outcome::Supervisor)
}

/// The detector's signals plus the planner's flags. A flag adds a signal of its category
/// when the detector found none (escalating as strictly as the policy's strictest signal of
/// that category, `supervisor` when it has none); it can never remove or soften one.
fn with_flagged(policy: &Policy, plan: &Plan, found: &[SignalHit]) -> Vec<SignalHit> {
    add_flagged(policy, &plan.signals, &plan.planner, found)
}

/// `found` plus what `planner` flagged, as a decision counts them ([`with_flagged`]).
pub fn add_flagged(policy: &Policy, flags: &[FlaggedSignal], planner: &str, found: &[SignalHit]) -> Vec<SignalHit> {
    let mut out = found.to_vec();
    for f in flags {
        if out.iter().any(|h| h.category == f.category) {
            continue;
        }
        let escalate = strictest_escalation(policy, f.category);
        let why = f.reason.trim();
        out.push(SignalHit {
            id: format!("planner.{}", f.category),
            category: f.category,
            matched: format!("flagged by the planner ({planner})"),
            escalate,
            reason: if why.is_empty() {
                format!("The planner flagged {}", f.category)
            } else {
                format!("The planner flagged {}: {why}", f.category)
            },
        });
    }
    out
}

/// What a policy's signals found in one case's words: made once per case revision (the
/// engine keeps it), read by every decision on that revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseScan {
    policy_hash: String,
    case_id: String,
    /// The subject and the customer's messages that were scanned.
    words: Vec<String>,
    pub signals: Vec<SignalHit>,
    /// The patterns' hits the learned models set aside ([`Scanned::set_aside`]).
    pub set_aside: Vec<SignalHit>,
    /// The languages the signals do not read that the customer wrote in
    /// (`[signal_languages]`; empty without it).
    pub unread: Vec<crate::language::UnreadText>,
    /// Made by a policy that turns the signal encoder on while the encoder could not be
    /// loaded (so it failed closed).
    without_encoder: bool,
}

impl CaseScan {
    pub fn new(policy: &Policy, case: &Case) -> CaseScan {
        if policy.uses_encoder() {
            // Loaded first (once per process), so that this scan counts as made with it.
            let _ = crate::learned::encoder();
        }
        let loaded_before = crate::learned::encoder_loaded();
        let Scanned { signals, set_aside } = scan(policy, case.customer_text());
        CaseScan {
            policy_hash: policy.hash.clone(),
            case_id: case.id.clone(),
            words: case.customer_text().map(str::to_string).collect(),
            signals,
            set_aside,
            unread: policy.signal_languages.as_ref().map(|l| l.unread_texts(case.customer_text())).unwrap_or_default(),
            // Loaded both before and after the scan: it read the encoder. Otherwise it may
            // have failed closed, and is made again once the encoder is loaded.
            without_encoder: policy.uses_encoder() && !(loaded_before && crate::learned::encoder_loaded()),
        }
    }

    /// Prepare the scans of many cases at once (an inbox): the texts the signal encoder will
    /// read, read ahead together in batches ([`crate::learned::encoder_read_ahead`]), which
    /// is several times quicker than one by one. Nothing to do for a policy without it.
    pub fn read_ahead(policy: &Policy, cases: &[&Case]) {
        if !policy.uses_encoder() {
            return;
        }
        let texts: Vec<String> =
            cases.iter().flat_map(|c| crate::learned::text_groups(&c.customer_text().collect::<Vec<_>>())).collect();
        crate::learned::encoder_read_ahead(&texts);
    }

    /// Made by this policy for these words of this case. Comparing the words is far
    /// cheaper than scanning them, and it keeps a stale scan (an earlier revision of the
    /// case) from counting. A scan that failed closed for want of the encoder is not kept
    /// once the encoder is loaded (its base fetched while the app runs).
    pub fn is_for(&self, policy: &Policy, case: &Case) -> bool {
        self.policy_hash == policy.hash
            && self.case_id == case.id
            && !(self.without_encoder && crate::learned::encoder_loaded())
            && self.words.iter().map(String::as_str).eq(case.customer_text())
    }
}

fn order_of(def: &ActionDef, step: &Step) -> Option<String> {
    def.order_param.as_ref().and_then(|p| step.params.get(p)).and_then(|p| p.value.as_str()).map(str::to_string)
}

fn decide_step(
    policy: &Policy,
    case: &Case,
    plan: &Plan,
    facts: &Facts,
    found: &Found<'_>,
    earlier: &Earlier<'_>,
    step: &Step,
) -> StepDecision {
    let counted = earlier.counted;
    let mut acc = Acc { reasons: Vec::with_capacity(8) };
    let digest = step_digest(step);
    // 1. Deny by default.
    let Some(def) = policy.actions.get(&step.action) else {
        let hint = look_alike(policy, &step.action)
            .map(|known| format!(" (it looks like {known:?} but is not the same name)"))
            .unwrap_or_default();
        acc.add(
            "builtin.deny-default",
            Outcome::Forbid,
            format!("action {:?} is not in the policy, so it is denied by default{hint}", step.action),
        );
        pause_checks(&mut acc, policy, case, plan, facts, &step.action);
        return step_decision(policy, step, digest, acc, None, None);
    };

    // 2. Schema.
    let (issues, money) = check_params(policy, def, step);
    for issue in &issues {
        acc.add(issue.rule_id(), Outcome::Forbid, issue.to_string());
    }

    // 3. Base decision.
    acc.add(format!("action.{}", def.name), def.decision, format!("{} is `{}` in this policy", def.name, def.decision));

    // 4. Identity.
    let level = identity_level(case, facts);
    if level < def.identity {
        let how = if facts.identity.how.is_empty() {
            "nothing in the evidence verifies who is writing".to_string()
        } else {
            facts.identity.how.join("; ")
        };
        acc.add(
            "builtin.identity",
            Outcome::Recommend,
            format!(
                "{} needs a {} verification of the customer, and the evidence shows {} ({how})",
                def.name, def.identity, level
            ),
        );
    }

    // 5. Preconditions on the order and the customer acted on.
    let customer = customer_of(case, facts);
    if def.preconditions.customer_owned && issues.is_empty() {
        let target = def.customer_param.as_ref().and_then(|p| step.params.get(p)).and_then(|p| p.value.as_str());
        match (customer, target) {
            (Some(c), Some(t)) if c == t => {}
            (Some(c), t) => acc.add(
                "precondition.customer-owned",
                Outcome::Forbid,
                format!("{} would act on customer {:?}, not this case's customer ({c})", def.name, t.unwrap_or("?")),
            ),
            (None, _) => acc.add(
                "precondition.customer-owned",
                Outcome::Forbid,
                format!("{} acts on a customer account, but the customer has not been identified", def.name),
            ),
        }
    }
    if def.preconditions.needs_order() && issues.is_empty() {
        preconditions(&mut acc, def, customer, facts, counted, step, money.as_ref());
    }
    if issues.is_empty() {
        ownership(&mut acc, def, customer, facts, step);
        conflicts(&mut acc, def, earlier.moved, step);
    }

    // 6. Provenance.
    let verified = (level >= IdentityLevel::Matched).then_some(customer).flatten();
    for (name, param) in &step.params {
        let Some(spec) = def.params.get(name) else {
            continue;
        };
        if def.identity_lookup || (def.kind == Kind::Read && proven_owned(spec.ty, &param.value, verified, facts)) {
            continue;
        }
        if !param.source.is_trusted() && !spec.untrusted_ok {
            acc.add(
                "builtin.provenance",
                Outcome::Confirm,
                format!(
                    "parameter {name:?} came from untrusted text ({}); it cannot raise autonomy, so a person must check it",
                    param.source.as_str()
                ),
            );
        }
    }

    // 7. Rules.
    for rule in &policy.rules {
        if let Some(text) = rule_matches(rule, def, case, level, facts, counted, step, money.as_ref()) {
            acc.add(format!("rule.{}", rule.id), rule.decision, format!("{}{text}", rule.reason));
        }
    }

    // 8. Escalation signals, and a text in a language they do not read (a write only: a
    // read changes nothing).
    for s in found.signals {
        acc.add(
            format!("signal.{}", s.id),
            s.escalate,
            format!("{} (matched {:?}): handed off to a human", s.reason, s.matched),
        );
    }
    if def.kind == Kind::Write {
        found.language_floor(&mut acc, policy, "before this step runs");
    }

    // 9. Pauses, and the floors of a desktop cut off from its team.
    pause_checks(&mut acc, policy, case, plan, facts, &step.action);
    cut_off_checks(&mut acc, policy, facts, def.kind == Kind::Write, def.money_param.is_some());

    step_decision(policy, step, digest, acc, Some(def), money)
}

/// The decision on a step from every reason found; `def` is `None` for an action
/// the policy does not name.
fn step_decision(
    policy: &Policy,
    step: &Step,
    step_digest: String,
    acc: Acc,
    def: Option<&ActionDef>,
    money: Option<Money>,
) -> StepDecision {
    let (decision, reasons, rule_ids) = acc.finish();
    StepDecision {
        step_id: step.id.clone(),
        action: step.action.clone(),
        decision,
        reasons,
        rule_ids,
        step_digest,
        layer: def.map(|d| d.layer),
        kind: def.map(|d| d.kind),
        risk: def.map(|d| d.risk),
        owner: def.map(|d| d.owner.clone()),
        approver_roles: if def.is_some() { policy.approvers(decision).to_vec() } else { Vec::new() },
        may_read: def.map(|d| d.reads.clone()).unwrap_or_default(),
        money,
    }
}

fn pause_checks(acc: &mut Acc, policy: &Policy, case: &Case, plan: &Plan, facts: &Facts, action: &str) {
    for p in &facts.pauses {
        let workflow = policy.actions.get(action).and_then(|d| d.workflow.as_deref());
        let workflows: Vec<&str> = std::iter::once(plan.intent.as_str()).chain(workflow).collect();
        if p.covers(case, &workflows, action) {
            acc.add(
                format!("pause.{}", p.id),
                Outcome::Forbid,
                format!(
                    "paused: {} {:?} paused by {} at {} ({})",
                    p.scope.as_str(),
                    p.value,
                    p.set_by,
                    p.set_at,
                    p.reason
                ),
            );
        }
    }
}

/// A desktop without a fresh team lease cannot know it has seen every pause: writes and
/// money steps take at least the policy's `[cut_off]` decisions (`builtin.cut_off`).
fn cut_off_checks(acc: &mut Acc, policy: &Policy, facts: &Facts, write: bool, money: bool) {
    let Some(cut) = &facts.cut_off else { return };
    let floors = [(write, policy.cut_off.write_floor(cut), "a write"), (money, policy.cut_off.money, "a money step")];
    for (applies, floor, what) in floors {
        if applies {
            acc.add(
                "builtin.cut_off",
                floor,
                format!("{what} is at least `{floor}` while this desktop is cut off from its team ({})", cut.reason),
            );
        }
    }
}

/// A known action whose confusable skeleton equals `name`'s, if any.
fn look_alike<'a>(policy: &'a Policy, name: &str) -> Option<&'a str> {
    let target = identifier_skeleton(name.trim());
    let folded = normalize(name);
    // Each known name's forms were computed once, when the policy was parsed.
    policy
        .actions
        .iter()
        .find(|(_, d)| d.name_skeleton == target || d.name_normalized == folded)
        .map(|(k, _)| k.as_str())
}

fn preconditions(
    acc: &mut Acc,
    def: &ActionDef,
    customer: Option<&str>,
    facts: &Facts,
    counted: &[Counted],
    step: &Step,
    money: Option<&Money>,
) {
    let pc = &def.preconditions;
    let Some(order_id) = order_of(def, step) else {
        return;
    };
    let Some(order) = facts.orders.get(&order_id) else {
        acc.add(
            "precondition.order-known",
            Outcome::Forbid,
            format!("order {order_id} could not be read from the platform, so its preconditions cannot be checked"),
        );
        return;
    };
    if let Some(allowed) = &pc.order_status
        && !allowed.contains(&order.status)
    {
        acc.add(
            "precondition.order-status",
            Outcome::Forbid,
            format!(
                "{} needs the order to be {}; order {order_id} is {:?}",
                def.name,
                allowed.join(" or "),
                order.status
            ),
        );
    }
    if pc.order_owned {
        let not_owned = match customer {
            Some(c) if c == order.customer_id => None,
            Some(c) => Some(format!("order {order_id} does not belong to this case's customer ({c})")),
            None => {
                Some(format!("the customer is not identified, so ownership of order {order_id} cannot be established"))
            }
        };
        if let Some(why) = not_owned {
            acc.add("precondition.order-owned", Outcome::Forbid, why);
        }
    }
    let Some(money) = money else { return };
    if pc.currency_matches_order && money.currency != order.currency {
        acc.add(
            "precondition.currency",
            Outcome::Forbid,
            format!("amount is in {} but order {order_id} was paid in {}", money.currency, order.currency),
        );
    }
    if pc.within_refundable {
        let in_flight: Decimal = facts
            .history
            .iter()
            .filter(|h| h.order_id.as_deref() == Some(order_id.as_str()) && h.state != PriorState::Executed)
            .filter(|h| h.amount.currency == order.currency)
            .map(|h| h.amount.amount)
            .chain(
                counted
                    .iter()
                    .filter(|c| c.refund_like && c.order_id.as_deref() == Some(order_id.as_str()))
                    .filter(|c| c.amount.currency == order.currency)
                    .map(|c| c.amount.amount),
            )
            .sum();
        let refundable = order.paid - order.refunded - in_flight;
        if money.amount > refundable {
            acc.add(
                "precondition.refundable",
                Outcome::Forbid,
                format!(
                    "{} is more than order {order_id} can still refund ({} {} paid, {} refunded, {} pending)",
                    money, order.paid, order.currency, order.refunded, in_flight
                ),
            );
        }
    }
}

/// Every entity id the step names must belong to the case's customer, shown by trusted
/// facts. Orders and customers under the action's own `order_owned` / `customer_owned`
/// preconditions are checked there.
fn ownership(acc: &mut Acc, def: &ActionDef, customer: Option<&str>, facts: &Facts, step: &Step) {
    let order = order_of(def, step).and_then(|id| facts.orders.get(&id));
    for (name, param) in &step.params {
        let Some(spec) = def.params.get(name).filter(|s| s.owned) else { continue };
        let ids: Vec<&str> = match &param.value {
            serde_json::Value::String(s) => vec![s.as_str()],
            serde_json::Value::Array(items) => items.iter().filter_map(serde_json::Value::as_str).collect(),
            _ => continue,
        };
        let mut refuse = |rule: &str, text: String| acc.add(rule, Outcome::Forbid, text);
        let Some(me) = customer else {
            refuse(
                "ownership.customer-unknown",
                format!("{name} names an account's entity, but the case's customer is not identified"),
            );
            continue;
        };
        match spec.ty {
            ParamType::CustomerId if !def.preconditions.customer_owned => {
                for id in ids.iter().filter(|id| **id != me) {
                    refuse("ownership.customer", format!("{name} {id:?} is not this case's customer ({me})"));
                }
            }
            ParamType::OrderId if !def.preconditions.order_owned => {
                for id in ids {
                    match facts.orders.get(id) {
                        Some(o) if o.customer_id == me => {}
                        Some(_) => refuse(
                            "ownership.order",
                            format!("order {id} does not belong to this case's customer ({me})"),
                        ),
                        None => refuse(
                            "ownership.order",
                            format!("order {id} could not be read, so it cannot be shown to belong to {me}"),
                        ),
                    }
                }
            }
            ParamType::ItemId | ParamType::ItemIds => {
                let known = order.and_then(|o| o.item_ids.as_ref().map(|items| (o, items)));
                match known {
                    Some((o, items)) => {
                        for id in ids.iter().filter(|id| !items.iter().any(|i| i == *id)) {
                            refuse("ownership.item", format!("item {id} is not on order {}", o.order_id));
                        }
                    }
                    None => refuse(
                        "ownership.item",
                        format!("the items of this step's order are not known, so {name} cannot be shown to be on it"),
                    ),
                }
            }
            ParamType::PaymentMethodId => match facts.customers.get(me) {
                Some(c) => {
                    for id in ids.iter().filter(|id| !c.payment_method_ids.iter().any(|m| m == *id)) {
                        refuse(
                            "ownership.payment-method",
                            format!("payment method {id} is not one of {me}'s payment methods"),
                        );
                    }
                }
                None => refuse(
                    "ownership.payment-method",
                    format!("{me}'s payment methods could not be read, so {name} cannot be shown to be theirs"),
                ),
            },
            _ => {}
        }
    }
}

/// A write on an order that an earlier step of this plan moves to another status:
/// whatever held when the plan was made may not hold after that step.
fn conflicts(acc: &mut Acc, def: &ActionDef, moved: &[Moved], step: &Step) {
    if def.kind != Kind::Write {
        return;
    }
    let Some(order_id) = order_of(def, step) else { return };
    for m in moved.iter().filter(|m| m.order_id == order_id) {
        acc.add(
            "builtin.conflict",
            Outcome::Forbid,
            format!(
                "step {} ({}) earlier in this plan moves order {order_id} to another status; {} on the same order \
                 must be planned again once that step has run",
                m.step_id, m.action, def.name
            ),
        );
    }
}

/// Is `value` (a read's order or customer id) shown by trusted facts to belong to the
/// verified customer? Then where the planner took it from does not matter: the read
/// cannot reach anyone else's data.
fn proven_owned(ty: ParamType, value: &serde_json::Value, verified: Option<&str>, facts: &Facts) -> bool {
    let (Some(me), Some(id)) = (verified, value.as_str()) else { return false };
    match ty {
        ParamType::OrderId => facts.orders.get(id).is_some_and(|o| o.customer_id == me),
        ParamType::CustomerId => id == me,
        _ => false,
    }
}

/// `Some(detail)` when every condition of `rule` holds for this step.
#[allow(clippy::too_many_arguments)]
fn rule_matches(
    rule: &Rule,
    def: &ActionDef,
    case: &Case,
    level: IdentityLevel,
    facts: &Facts,
    counted: &[Counted],
    step: &Step,
    money: Option<&Money>,
) -> Option<String> {
    if !rule.actions.contains(&def.name) {
        return None;
    }
    if rule.channels.as_ref().is_some_and(|s| !s.contains(&case.channel))
        || rule.stores.as_ref().is_some_and(|s| !s.contains(&case.store))
        || rule.platforms.as_ref().is_some_and(|s| !s.contains(&case.platform))
        || rule.tenants.as_ref().is_some_and(|s| !s.contains(&case.tenant))
        || rule.roles.as_ref().is_some_and(|s| !s.contains(&facts.operator.role))
    {
        return None;
    }
    if let Some(want) = rule.identity {
        // A rule's `verified` means the evidence verified the customer at least by a
        // matched look-up; what the case claims plays no part.
        let have = if level >= IdentityLevel::Matched { IdentityStatus::Verified } else { IdentityStatus::Unverified };
        if have != want {
            return None;
        }
    }
    let mut detail = String::new();
    let money_rule = rule.amount_over.is_some() || rule.case_total_over.is_some() || rule.order_total_over.is_some();
    if money_rule {
        // A money rule on a step whose amount is invalid does not match; the step
        // is already forbidden by the schema check.
        let m = money?;
        let mut any = false;
        if let Some(limit) = &rule.amount_over
            && m.currency == limit.currency
            && m.amount > limit.amount
        {
            any = true;
            let _ = write!(detail, " ({m} is over {limit} per step)");
        }
        if let Some(limit) = &rule.case_total_over {
            let total = cumulative(rule, facts, counted, m, |h| h.case_id == case.id, |_| true);
            if m.currency == limit.currency && total > limit.amount {
                any = true;
                let _ = write!(detail, " (case total {total} {} is over {limit})", m.currency);
            }
        }
        if let Some(limit) = &rule.order_total_over {
            let order_id = order_of(def, step);
            let total = cumulative(
                rule,
                facts,
                counted,
                m,
                |h| h.order_id.is_some() && h.order_id == order_id,
                |c| c.order_id.is_some() && c.order_id == order_id,
            );
            if m.currency == limit.currency && total > limit.amount {
                any = true;
                let _ = write!(detail, " (order total {total} {} is over {limit})", m.currency);
            }
        }
        // Thresholds are alternatives: any one exceeded makes the rule match.
        if !any {
            return None;
        }
    }
    Some(detail)
}

/// This step's amount plus every earlier amount (history and this plan) of the
/// rule's actions, in the same currency, selected by the filters.
fn cumulative(
    rule: &Rule,
    facts: &Facts,
    counted: &[Counted],
    this: &Money,
    history_filter: impl Fn(&PriorStep) -> bool,
    plan_filter: impl Fn(&Counted) -> bool,
) -> Decimal {
    let prior: Decimal = facts
        .history
        .iter()
        .filter(|h| rule.actions.contains(&h.action) && h.amount.currency == this.currency && history_filter(h))
        .map(|h| h.amount.amount)
        .sum();
    let in_plan: Decimal = counted
        .iter()
        .filter(|c| rule.actions.contains(&c.action) && c.amount.currency == this.currency && plan_filter(c))
        .map(|c| c.amount.amount)
        .sum();
    prior + in_plan + this.amount
}

fn decide_reply(
    policy: &Policy,
    case: &Case,
    plan: &Plan,
    facts: &Facts,
    found: &Found<'_>,
    draft: &crate::model::ReplyDraft,
) -> ReplyDecision {
    let rp = &policy.reply;
    let mut acc = Acc { reasons: Vec::new() };
    acc.add("reply.base", rp.decision, format!("sending a reply is `{}` in this policy", rp.decision));

    let mut unresolved = Vec::new();
    for (i, c) in draft.citations.iter().enumerate() {
        match facts.citations.get(i) {
            Some(f) if f.resolved => {}
            found => {
                let (label, detail) = match found {
                    Some(f) => (f.label.clone(), f.detail.clone()),
                    None => {
                        (c.article_id.clone(), format!("{} was not checked against the knowledge base", c.article_id))
                    }
                };
                acc.add(
                    "reply.citation-unresolved",
                    rp.unresolved_citation,
                    format!("the draft's citation does not resolve: {detail}"),
                );
                unresolved.push(label);
            }
        }
    }

    let text = normalize(&draft.text);
    let mut promises = Vec::new();
    for p in &rp.promises {
        if let Some(matched) = p.patterns.find(&text) {
            acc.add(format!("reply.promise.{}", p.id), p.decision, format!("{} (found {matched:?})", p.reason));
            promises.push(PromiseHit { id: p.id.clone(), category: p.category, matched });
        }
    }
    let claims = reply_claims(policy, plan, facts, draft);
    for c in &claims {
        let rule = match c.status {
            ClaimStatus::Supported => continue,
            ClaimStatus::Unsupported => "reply.claim-unsupported",
            ClaimStatus::Contradicted => "reply.claim-contradicted",
        };
        acc.add(rule, rp.unsupported_claim, format!("{:?} in \"{}\": {}", c.claim, c.sentence, c.reason));
    }
    for s in found.signals {
        acc.add(format!("signal.{}", s.id), s.escalate, format!("{}: the reply goes to a human", s.reason));
    }
    found.language_floor(&mut acc, policy, "before the reply is sent");
    pause_checks(&mut acc, policy, case, plan, facts, "send_reply");
    cut_off_checks(&mut acc, policy, facts, true, false);

    let (decision, reasons, rule_ids) = acc.finish();
    ReplyDecision {
        decision,
        reasons,
        rule_ids,
        promises,
        unresolved_citations: unresolved,
        owner: rp.owner.clone(),
        approver_roles: policy.approvers(decision).to_vec(),
        claims,
    }
}

/// The draft's claims checked against the passages it cites that resolve (their text as
/// the engine read it from the index) and the amounts the case's data carries: the
/// plan's money steps and the orders' totals.
fn reply_claims(policy: &Policy, plan: &Plan, facts: &Facts, draft: &crate::model::ReplyDraft) -> Vec<ClaimCheck> {
    let cited: Vec<Cited<'_>> = (0..draft.citations.len())
        .filter_map(|i| {
            let f = facts.citations.get(i).filter(|f| f.resolved)?;
            Some(Cited { marker: i + 1, label: &f.label, text: f.passage.as_deref()? })
        })
        .collect();
    let mut known = Vec::new();
    for step in &plan.steps {
        let Some(p) =
            policy.actions.get(&step.action).and_then(|d| d.money_param.as_ref()).and_then(|p| step.params.get(p))
        else {
            continue;
        };
        if let Ok(m) = Money::from_json(&p.value) {
            let source = format!("step {} ({})", step.id, step.action);
            known.push(Known { currency: m.currency.to_string(), amount: m.amount, source });
        }
    }
    for o in facts.orders.values() {
        for (amount, what) in [(o.paid, "paid"), (o.refunded, "refunded"), (o.paid - o.refunded, "refundable")] {
            let source = format!("order {} ({what})", o.order_id);
            known.push(Known { currency: o.currency.to_string(), amount, source });
        }
    }
    check_claims(&policy.reply.claims, &draft.text, &cited, &known)
}
