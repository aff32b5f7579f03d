//! Earned autonomy: the record of each band, and the changes of the permission map it
//! proposes. Pure: the reviewed steps go in (the engine reads them from the log), records
//! and proposals come out.
//!
//! A **band** is (action, amount band, channel), kept per decision the steps got there:
//! the amount bands are the policy's (`[[autonomy.bands]]`), the channel the case's. Its
//! record counts each step a person answered — approved unchanged, edited first, or
//! rejected — or, for an `auto` band, each step that ran; and the steps that were later
//! reversed (the complaint re-opened at the source, or a lead recorded the reversal).
//!
//! Rubber stamps do not count: an approval given sooner than the policy's floor after the
//! decision is left out of the record (and shown apart). A band passes the loosening bar
//! with enough decisions, enough of them approved unchanged, by enough distinct people,
//! and few enough reversals in the window; it passes the tightening bar when it is often
//! rejected or reversed (tightening wins when both hold).
//!
//! A **proposal** is a draft of the policy with one change, written into the policy's own
//! text (comments and layout kept) with its version raised: a loosening moves the rules
//! (or the action's base decision) that held the band back out of that band and channel
//! alone; a tightening adds a rule. Nothing changes until an admin simulates the draft and
//! signs it as a new pack.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::evidence::{Event, StepOutcome, Verdict};
use crate::model::{Channel, Provenance};
use crate::money::Money;
use crate::policy::{AutonomyPolicy, Outcome, Policy};

/// The planner name of a plan revision an agent made by editing a waiting step.
pub const AGENT_EDIT: &str = "agent-edit";

/// How many sample cases a record names.
pub const SAMPLES: usize = 5;

/// What a person did with a step, or that it ran on its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Review {
    /// An `auto` step that ran.
    Ran,
    /// Countersigned as the planner proposed it, at `at`.
    Unchanged {
        by: String,
        at: Timestamp,
    },
    /// Changed by a person before it ran.
    Edited {
        by: String,
    },
    Rejected {
        by: String,
    },
}

/// One decided step, as the record counts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reviewed {
    pub case_id: String,
    pub plan_id: String,
    pub step_id: String,
    pub action: String,
    pub channel: Channel,
    pub money: Option<Money>,
    pub decision: Outcome,
    /// The checks that set the decision (`action.…`, `rule.…`, `signal.…`).
    pub deciding: Vec<String>,
    /// When it was decided.
    pub at: Timestamp,
    pub review: Review,
    /// When and why it was reversed after it ran, if it was.
    pub reversal: Option<(Timestamp, String)>,
}

/// An amount band: over `over` (exclusive) and up to `up_to` (inclusive); `None` is open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Band {
    pub over: Option<Money>,
    pub up_to: Option<Money>,
}

impl Band {
    /// `any amount`, `up to 10.00 USD`, `over 10.00 USD up to 25.00 USD`, `over 200.00 USD`.
    pub fn label(&self) -> String {
        match (&self.over, &self.up_to) {
            (None, None) => "any amount".into(),
            (None, Some(hi)) => format!("up to {hi}"),
            (Some(lo), None) => format!("over {lo}"),
            (Some(lo), Some(hi)) => format!("over {lo} up to {hi}"),
        }
    }
}

/// The band of a step of `action` for `money`, if the action is kept on record (`None`
/// also for a money action's step without a readable amount in the bands' currency).
pub fn band_of(autonomy: &AutonomyPolicy, action: &str, money: Option<&Money>) -> Option<Band> {
    band_at(autonomy, action, money).map(|(_, b)| b)
}

/// The band and its place among the action's bands (lowest first).
fn band_at(autonomy: &AutonomyPolicy, action: &str, money: Option<&Money>) -> Option<(usize, Band)> {
    let bounds = autonomy.bands.get(action)?;
    if bounds.is_empty() {
        return Some((0, Band { over: None, up_to: None }));
    }
    let m = money.filter(|m| bounds.first().is_some_and(|b| b.currency == m.currency))?;
    let i = bounds.iter().position(|b| m.amount <= b.amount).unwrap_or(bounds.len());
    Some((i, Band { over: i.checked_sub(1).and_then(|j| bounds.get(j)).cloned(), up_to: bounds.get(i).cloned() }))
}

/// (desk, plan, step).
type StepKey = (String, String, String);

/// Reads a log's events, one desk's in the order recorded, into the [`Reviewed`] steps
/// a record counts: the events of kinds [`Gather::KINDS`] (a `decided` one needs no
/// inputs). Several desks' logs go through one `Gather`, each under its own name.
#[derive(Debug, Default)]
pub struct Gather {
    /// (desk, case) → its channel, as last received.
    channels: BTreeMap<(String, String), Channel>,
    /// (desk, plan, step) → (seq, when decided, case, the decision): the latest.
    decided: BTreeMap<StepKey, (u64, Timestamp, String, crate::StepDecision)>,
    /// Steps a person wrote (an agent's edit): theirs, not the planner's.
    human: BTreeSet<StepKey>,
    /// The step an agent's edit replaced → who edited it.
    edited: BTreeMap<StepKey, String>,
    reviews: BTreeMap<StepKey, (Timestamp, Verdict, String)>,
    ran: BTreeMap<StepKey, (Timestamp, StepOutcome)>,
    reversed: BTreeMap<StepKey, (Timestamp, String)>,
    /// (desk, case) → the conversation's state at the source, in order.
    states: BTreeMap<(String, String), Vec<(Timestamp, String)>>,
}

impl Gather {
    /// The kinds a record reads.
    pub const KINDS: [&'static str; 8] = [
        "case_opened",
        "case_received",
        "decided",
        "plan_proposed",
        "review_decided",
        "step_finished",
        "step_reversed",
        "step_settled",
    ];

    /// One event of `desk`'s log (`seq`, recorded `at` by `actor`).
    pub fn add(&mut self, desk: &str, seq: u64, at: Timestamp, actor: &str, event: &Event) {
        let key = |plan: &str, step: &str| (desk.to_string(), plan.to_string(), step.to_string());
        match event {
            Event::CaseOpened { case } => {
                self.channels.insert((desk.to_string(), case.id.clone()), case.channel);
            }
            Event::CaseReceived { case, state, .. } => {
                self.channels.insert((desk.to_string(), case.id.clone()), case.channel);
                self.states.entry((desk.to_string(), case.id.clone())).or_default().push((at, state.clone()));
            }
            Event::Decided { decision, .. } => {
                for step in &decision.steps {
                    self.decided.insert(
                        key(&decision.plan_id, &step.step_id),
                        (seq, at, decision.case_id.clone(), step.clone()),
                    );
                }
            }
            Event::PlanProposed { plan } if plan.planner == AGENT_EDIT => {
                for step in plan.steps.iter().filter(|s| s.params.values().any(|p| p.source == Provenance::Agent)) {
                    self.human.insert(key(&plan.id, &step.id));
                    let replaced = self
                        .decided
                        .iter()
                        .filter(|((d, p, s), (at_seq, _, case, _))| {
                            d == desk && *p != plan.id && *s == step.id && *case == plan.case_id && *at_seq < seq
                        })
                        .max_by_key(|(_, (at_seq, ..))| *at_seq)
                        .map(|(k, _)| k.clone());
                    if let Some(k) = replaced {
                        self.edited.insert(k, actor.to_string());
                    }
                }
            }
            // What a person answered: the engine's ending of a review (an approval that
            // expired, a step decided again) is not an answer, and nobody rejects a step
            // once approved, so an approval stays the answer.
            Event::ReviewDecided { by_engine: true, .. } => {}
            Event::ReviewDecided { plan_id, step_id, verdict, by, .. } => {
                let k = key(plan_id, step_id);
                if !matches!(self.reviews.get(&k), Some((_, Verdict::Approved, _))) {
                    self.reviews.insert(k, (at, *verdict, by.id.clone()));
                }
            }
            Event::StepFinished { plan_id, step_id, outcome, .. } => {
                self.ran.insert(key(plan_id, step_id), (at, *outcome));
            }
            // A lead settled an unknown outcome by hand: applied is as good as succeeded.
            Event::StepSettled { plan_id, step_id, applied, .. } => {
                let outcome = if *applied { StepOutcome::Succeeded } else { StepOutcome::Failed };
                self.ran.insert(key(plan_id, step_id), (at, outcome));
            }
            Event::StepReversed { plan_id, step_id, reason } => {
                self.reversed.insert(key(plan_id, step_id), (at, format!("{actor} recorded: {reason}")));
            }
            _ => {}
        }
    }

    /// Every executable step decided, with what a person did with it and whether it was
    /// reversed since (steps still waiting, expired or decided again are left out).
    pub fn finish(self) -> Vec<Reviewed> {
        let mut out = Vec::new();
        for ((desk, plan_id, step_id), (_, at, case_id, step)) in self.decided {
            let key = (desk.clone(), plan_id.clone(), step_id.clone());
            if !step.decision.executable() || self.human.contains(&key) {
                continue;
            }
            let Some(channel) = self.channels.get(&(desk.clone(), case_id.clone())).copied() else { continue };
            let review = if let Some(by) = self.edited.get(&key) {
                Review::Edited { by: by.clone() }
            } else if let Some((when, verdict, by)) = self.reviews.get(&key) {
                match verdict {
                    Verdict::Approved => Review::Unchanged { by: by.clone(), at: *when },
                    Verdict::Rejected => Review::Rejected { by: by.clone() },
                }
            } else if step.decision == Outcome::Auto && self.ran.contains_key(&key) {
                Review::Ran
            } else {
                continue;
            };
            let reversal = match self.ran.get(&key) {
                Some((done, StepOutcome::Succeeded)) => self
                    .reversed
                    .get(&key)
                    .cloned()
                    .or_else(|| reopened(self.states.get(&(desk.clone(), case_id.clone())), *done)),
                _ => None,
            };
            let mut deciding: Vec<String> = Vec::new();
            for r in step.reasons.iter().filter(|r| r.decision == step.decision) {
                if !deciding.contains(&r.rule) {
                    deciding.push(r.rule.clone());
                }
            }
            out.push(Reviewed {
                case_id,
                plan_id,
                step_id,
                action: step.action,
                channel,
                money: step.money,
                decision: step.decision,
                deciding,
                at,
                review,
                reversal,
            });
        }
        out
    }
}

/// The conversation was resolved after the step ran and then opened again at the source:
/// the complaint came back.
pub fn reopened(states: Option<&Vec<(Timestamp, String)>>, ran: Timestamp) -> Option<(Timestamp, String)> {
    let mut resolved = false;
    for (at, state) in states?.iter().filter(|(at, _)| *at >= ran) {
        if state == "resolved" {
            resolved = true;
        } else if resolved {
            return Some((*at, "the customer's conversation was re-opened after it ran".into()));
        }
    }
    None
}

/// A band's record at one decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct BandRecord {
    pub action: String,
    pub band: Band,
    pub band_label: String,
    pub channel: Channel,
    /// The decision these steps got.
    pub decision: Outcome,
    /// Steps counted (rubber stamps left out).
    pub decisions: u32,
    pub unchanged: u32,
    pub edited: u32,
    pub rejected: u32,
    /// `auto` steps that ran.
    pub ran: u32,
    /// Approvals given sooner than the floor: not counted.
    pub rubber_stamps: u32,
    /// Distinct people among the counted unchanged approvals.
    pub approvers: u32,
    /// Steps reversed within the policy's window (rubber-stamped ones too).
    pub reversals: u32,
    /// The checks that set the decision, with how many counted steps each held.
    pub deciding: BTreeMap<String, u32>,
    /// Cases of counted steps, newest first.
    pub samples: Vec<String>,
    /// Reversed steps' cases with why, newest first.
    pub reversed: Vec<ReversedCase>,
}

/// A case whose step was reversed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ReversedCase {
    pub case_id: String,
    pub why: String,
}

impl BandRecord {
    /// A stable name for the band (`refund_partial/over-25.00-USD-up-to-50.00-USD/email/confirm`).
    pub fn key(&self) -> String {
        let band = self.band_label.replace(' ', "-");
        format!("{}/{band}/{}/{}", self.action, self.channel, self.decision)
    }
}

/// Each band's record over `steps`, in band order. Steps of actions the policy does not
/// keep on record, and steps `recommend` or `forbid`, are not counted.
pub fn record(autonomy: &AutonomyPolicy, steps: &[Reviewed], now: Timestamp) -> Vec<BandRecord> {
    type Key = (String, usize, Channel, Outcome);
    let floor = SignedDuration::from_secs(i64::from(autonomy.review_floor_secs));
    let since = now - SignedDuration::from_hours(24 * i64::from(autonomy.window_days));
    let mut records: BTreeMap<Key, (BandRecord, BTreeSet<String>)> = BTreeMap::new();
    let mut ordered: Vec<&Reviewed> = steps.iter().collect();
    ordered.sort_by_key(|s| std::cmp::Reverse(s.at));
    for s in ordered {
        if !s.decision.executable() {
            continue;
        }
        let Some((place, band)) = band_at(autonomy, &s.action, s.money.as_ref()) else {
            continue;
        };
        let key = (s.action.clone(), place, s.channel, s.decision);
        let (r, people) = records.entry(key).or_insert_with(|| {
            let rec = BandRecord {
                action: s.action.clone(),
                band_label: band.label(),
                band,
                channel: s.channel,
                decision: s.decision,
                decisions: 0,
                unchanged: 0,
                edited: 0,
                rejected: 0,
                ran: 0,
                rubber_stamps: 0,
                approvers: 0,
                reversals: 0,
                deciding: BTreeMap::new(),
                samples: Vec::new(),
                reversed: Vec::new(),
            };
            (rec, BTreeSet::new())
        });
        // A reversal counts whoever let the step through, however fast.
        if let Some((at, why)) = &s.reversal
            && *at >= since
        {
            r.reversals += 1;
            if r.reversed.len() < SAMPLES {
                r.reversed.push(ReversedCase { case_id: s.case_id.clone(), why: why.clone() });
            }
        }
        match &s.review {
            Review::Unchanged { at, .. } if at.duration_since(s.at) < floor => {
                r.rubber_stamps += 1;
                continue;
            }
            Review::Unchanged { by, .. } => {
                r.unchanged += 1;
                people.insert(by.clone());
            }
            Review::Edited { .. } => r.edited += 1,
            Review::Rejected { .. } => r.rejected += 1,
            Review::Ran => r.ran += 1,
        }
        r.decisions += 1;
        for d in &s.deciding {
            *r.deciding.entry(d.clone()).or_default() += 1;
        }
        if r.samples.len() < SAMPLES && !r.samples.contains(&s.case_id) {
            r.samples.push(s.case_id.clone());
        }
        r.approvers = u32::try_from(people.len()).unwrap_or(u32::MAX);
    }
    records.into_values().map(|(r, _)| r).collect()
}

/// Which way a proposal moves a band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Loosen,
    Tighten,
}

/// Does the band pass a bar, and why: the bar's terms as the record meets them.
pub fn assess(autonomy: &AutonomyPolicy, r: &BandRecord) -> Option<(Direction, String)> {
    let t = autonomy.tighten;
    let pct = |n: u32| u64::from(n) * 100;
    let of = |p: u32| u64::from(p) * u64::from(r.decisions);
    let window = autonomy.window_days;
    if r.decision <= Outcome::Confirm {
        if r.reversals >= t.min_reversals {
            return Some((
                Direction::Tighten,
                format!("{} reversed in the last {window} days (the bar is {})", r.reversals, t.min_reversals),
            ));
        }
        if r.decisions >= t.min_decisions && r.rejected > 0 && pct(r.rejected) >= of(t.min_rejected_pct) {
            return Some((
                Direction::Tighten,
                format!(
                    "{} of {} rejected (the bar is {} % of at least {})",
                    r.rejected, r.decisions, t.min_rejected_pct, t.min_decisions
                ),
            ));
        }
    }
    let l = autonomy.loosen;
    let loosens = matches!(r.decision, Outcome::Confirm | Outcome::Supervisor)
        && r.decisions >= l.min_decisions
        && pct(r.unchanged) >= of(l.min_unchanged_pct)
        && r.approvers >= l.min_approvers
        && r.reversals <= l.max_reversals;
    loosens.then(|| {
        (
            Direction::Loosen,
            format!(
                "{} of {} approved unchanged by {} people, {} reversed in the last {window} days \
                 (the bar: ≥ {} decisions, ≥ {} % unchanged, ≥ {} people, ≤ {} reversed); \
                 {} rubber stamps not counted",
                r.unchanged,
                r.decisions,
                r.approvers,
                r.reversals,
                l.min_decisions,
                l.min_unchanged_pct,
                l.min_approvers,
                l.max_reversals,
                r.rubber_stamps
            ),
        )
    })
}

/// A proposed change of the permission map, as a draft of the policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Proposal {
    /// The band's key ([`BandRecord::key`]).
    pub key: String,
    pub direction: Direction,
    pub record: BandRecord,
    pub from: Outcome,
    pub to: Outcome,
    /// Why: the bar's terms as the record meets them.
    pub why: String,
    /// What the draft changes, one line each.
    pub changes: Vec<String>,
    /// What the change leaves as it is (checks other than the permission map's).
    pub leaves: Vec<String>,
    /// The draft policy's text (`None` when the change cannot be written; see `blocked`).
    pub draft: Option<String>,
    /// Why no draft could be written.
    pub blocked: Option<String>,
}

/// The proposals for every band that passes a bar, each a draft of `source` (the text of
/// `policy`) with one change.
pub fn propose(policy: &Policy, source: &str, records: &[BandRecord]) -> Vec<Proposal> {
    let Some(autonomy) = &policy.autonomy else { return Vec::new() };
    let mut out = Vec::new();
    for r in records {
        let Some((direction, why)) = assess(autonomy, r) else { continue };
        let to = match direction {
            Direction::Loosen if r.decision == Outcome::Supervisor => Outcome::Confirm,
            Direction::Loosen => Outcome::Auto,
            Direction::Tighten if r.decision == Outcome::Auto => Outcome::Confirm,
            Direction::Tighten => Outcome::Supervisor,
        };
        // A record made under an earlier policy may ask for what the policy in force
        // already does (a change signed since): nothing to propose.
        let done = match direction {
            Direction::Loosen => !edit::holds_at(policy, r),
            Direction::Tighten => edit::holds_at_least(policy, r, to),
        };
        if done {
            continue;
        }
        let leaves: Vec<String> = r
            .deciding
            .iter()
            .filter(|(id, _)| !(id.starts_with("rule.") || id.starts_with("action.")))
            .map(|(id, n)| format!("{id} held {n} of these steps at {}: the change leaves it", r.decision))
            .collect();
        let written = match direction {
            Direction::Loosen => edit::loosen(policy, source, r, to),
            Direction::Tighten => edit::tighten(policy, source, r, to, &why),
        };
        let (changes, draft, blocked) = match written {
            Ok((changes, draft)) => (changes, Some(draft), None),
            Err(why) => (Vec::new(), None, Some(why)),
        };
        out.push(Proposal {
            key: r.key(),
            direction,
            record: r.clone(),
            from: r.decision,
            to,
            why,
            changes,
            leaves,
            draft,
            blocked,
        });
    }
    out
}

mod edit {
    //! The draft's text: the policy's own TOML, edited in place.

    use toml_edit::{Array, ArrayOfTables, DocumentMut, Item, Table, value};

    use super::BandRecord;
    use crate::model::Channel;
    use crate::policy::{Outcome, Policy, Rule};

    type Written = Result<(Vec<String>, String), String>;

    /// The rule covers the band's action on the band's channel.
    fn covers(rule: &Rule, r: &BandRecord) -> bool {
        rule.actions.contains(&r.action) && rule.channels.as_ref().is_none_or(|c| c.contains(&r.channel))
    }

    /// Does the policy in force still hold the band at its recorded decision, by the
    /// action's own decision or a rule the record names?
    pub(super) fn holds_at(policy: &Policy, r: &BandRecord) -> bool {
        r.deciding.keys().any(|id| {
            if let Some(name) = id.strip_prefix("action.") {
                name == r.action && policy.actions.get(name).is_some_and(|d| d.decision == r.decision)
            } else if let Some(rule_id) = id.strip_prefix("rule.") {
                policy.rules.iter().any(|x| x.id == rule_id && x.decision == r.decision && covers(x, r))
            } else {
                false
            }
        })
    }

    /// Does the policy in force hold every step of the band at `to` or stricter already,
    /// by the action's own decision or a rule with no other condition?
    pub(super) fn holds_at_least(policy: &Policy, r: &BandRecord, to: Outcome) -> bool {
        if policy.actions.get(&r.action).is_some_and(|d| d.decision >= to) {
            return true;
        }
        policy.rules.iter().any(|x| {
            let plain = x.stores.is_none()
                && x.platforms.is_none()
                && x.tenants.is_none()
                && x.roles.is_none()
                && x.identity.is_none()
                && x.case_total_over.is_none()
                && x.order_total_over.is_none();
            let from_bottom = match (&x.amount_over, &r.band.over) {
                (None, _) => true,
                (Some(limit), Some(lo)) => limit.currency == lo.currency && limit.amount <= lo.amount,
                (Some(_), None) => false,
            };
            x.decision >= to && plain && covers(x, r) && from_bottom
        })
    }

    fn channels(list: impl IntoIterator<Item = Channel>) -> Array {
        list.into_iter().map(Channel::as_str).collect()
    }

    fn open(policy: &Policy, source: &str) -> Result<DocumentMut, String> {
        let mut doc: DocumentMut = source.parse().map_err(|e| format!("the policy's text cannot be edited: {e}"))?;
        doc["policy"]["version"] = value(i64::try_from(policy.version + 1).unwrap_or(i64::MAX));
        Ok(doc)
    }

    fn rules(doc: &mut DocumentMut) -> Result<&mut ArrayOfTables, String> {
        if doc.get("rules").is_none() {
            doc["rules"] = Item::ArrayOfTables(ArrayOfTables::new());
        }
        doc["rules"].as_array_of_tables_mut().ok_or_else(|| "the policy's `rules` is not a list of [[rules]]".into())
    }

    /// An id no rule, signal, promise or claim of the policy has.
    fn fresh_id(policy: &Policy, taken: &[String], base: &str) -> String {
        let used = |id: &str| {
            policy.rules.iter().any(|r| r.id == id)
                || policy.signals.iter().any(|s| s.id == id)
                || policy.reply.promises.iter().any(|p| p.id == id)
                || policy.reply.claims.iter().any(|c| c.id == id)
                || taken.iter().any(|t| t == id)
        };
        let mut id = base.to_string();
        let mut n = 2;
        while used(&id) {
            id = format!("{base}-{n}");
            n += 1;
        }
        id
    }

    fn new_rule(id: &str, reason: &str, action: &str, decision: Outcome) -> Table {
        let mut t = Table::new();
        t["id"] = value(id);
        t["reason"] = value(reason);
        t["actions"] = value(Array::from_iter([action]));
        t["decision"] = value(decision.as_str());
        t
    }

    fn finish(policy: &Policy, doc: DocumentMut, changes: Vec<String>) -> Written {
        let text = doc.to_string();
        // The draft must be a policy this app loads, or it is no proposal.
        Policy::parse("draft", &text).map_err(|e| format!("the draft would not load: {e}"))?;
        let mut changes = changes;
        changes.push(format!("version {} → {}", policy.version, policy.version + 1));
        Ok((changes, text))
    }

    /// Move what held the band at its decision out of its band and channel: each rule
    /// that did gets the channel taken out, and a copy for the channel alone whose amount
    /// threshold is the band's top; an action whose base decision did gets `to` as its
    /// base and rules that keep the old decision everywhere else. Only a band at a rule's
    /// threshold (or the lowest band) can be moved so: a band above it must wait for the
    /// bands below it.
    pub(super) fn loosen(policy: &Policy, source: &str, r: &BandRecord, to: Outcome) -> Written {
        let from = r.decision;
        let c = r.channel;
        if policy.currencies.len() > 1 && policy.actions.get(&r.action).is_some_and(|d| d.money_param.is_some()) {
            // An amount threshold holds one currency: a band moved so would free the
            // action's amounts in the others.
            return Err(format!(
                "this policy accepts {} currencies, and an amount band holds one: change it by hand",
                policy.currencies.len()
            ));
        }
        let mut doc = open(policy, source)?;
        let mut changes = Vec::new();
        let mut added: Vec<Table> = Vec::new();
        let mut taken = Vec::new();
        let mut moved = 0;
        for id in r.deciding.keys() {
            if let Some(name) = id.strip_prefix("action.") {
                let Some(def) = policy.actions.get(name).filter(|d| d.name == r.action && d.decision == from) else {
                    continue;
                };
                if r.band.over.is_some() {
                    return Err(format!(
                        "{} is `{from}` for every amount: the band {} can move only after the bands below it",
                        def.name, r.band_label
                    ));
                }
                doc["actions"][name]["decision"] = value(to.as_str());
                changes.push(format!("actions.{name}: decision {from} → {to}"));
                let reason = format!("{name} stays `{from}` outside what it earned ({} on {c})", r.band_label);
                let others: Vec<Channel> = Channel::ALL.into_iter().filter(|x| *x != c).collect();
                let keep = fresh_id(policy, &taken, &format!("earned.{name}.others"));
                let mut t = new_rule(&keep, &reason, name, from);
                t["channels"] = value(channels(others));
                changes.push(format!("new rule {keep}: {name} stays {from} on every other channel"));
                taken.push(keep);
                added.push(t);
                if let Some(hi) = &r.band.up_to {
                    let keep = fresh_id(policy, &taken, &format!("earned.{name}.{c}.above"));
                    let mut t = new_rule(&keep, &reason, name, from);
                    t["channels"] = value(channels([c]));
                    t["amount_over"] = value(hi.to_string());
                    changes.push(format!("new rule {keep}: {name} stays {from} on {c} over {hi}"));
                    taken.push(keep);
                    added.push(t);
                }
                moved += 1;
            } else if let Some(rule_id) = id.strip_prefix("rule.") {
                let Some(rule) = policy.rules.iter().find(|x| x.id == rule_id && x.decision == from && covers(x, r))
                else {
                    continue;
                };
                if rule.amount_over.as_ref().map(|m| &m.amount) != r.band.over.as_ref().map(|m| &m.amount) {
                    return Err(format!(
                        "rule {rule_id} holds amounts {}: the band {} can move only after the bands below it",
                        rule.amount_over.as_ref().map_or("of any size".into(), |m| format!("over {m}")),
                        r.band_label
                    ));
                }
                let list = rules(&mut doc)?;
                let at = list
                    .iter()
                    .position(|t| t.get("id").and_then(Item::as_str) == Some(rule_id))
                    .ok_or_else(|| format!("rule {rule_id} is not in the policy's text"))?;
                split_rule(policy, &mut taken, list, at, rule, r, &mut changes, &mut added)?;
                moved += 1;
            }
        }
        if moved == 0 {
            return Err(format!(
                "nothing in the permission map holds the band at `{from}` now (its steps were held by {})",
                r.deciding.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        let list = rules(&mut doc)?;
        for mut t in added {
            t.decor_mut().set_prefix(format!(
                "\n# Proposed from the record of {} {} on {c} ({from} → {to}).\n",
                r.action, r.band_label
            ));
            list.push(t);
        }
        finish(policy, doc, changes)
    }

    /// A copy of `rule` with a new id, for `actions`, with every condition but `channels`.
    fn copy_rule(rule: &Rule, id: &str, actions: &[&str]) -> Table {
        let mut t = Table::new();
        t["id"] = value(id);
        t["reason"] = value(rule.reason.as_str());
        t["actions"] = value(actions.iter().copied().collect::<Array>());
        t["decision"] = value(rule.decision.as_str());
        let set = |t: &mut Table, key: &str, v: Option<&std::collections::BTreeSet<String>>| {
            if let Some(v) = v {
                t[key] = value(v.iter().map(String::as_str).collect::<Array>());
            }
        };
        set(&mut t, "stores", rule.stores.as_ref());
        set(&mut t, "platforms", rule.platforms.as_ref());
        set(&mut t, "tenants", rule.tenants.as_ref());
        set(&mut t, "roles", rule.roles.as_ref());
        if let Some(i) = rule.identity {
            t["identity"] = value(match i {
                crate::model::IdentityStatus::Verified => "verified",
                crate::model::IdentityStatus::Unverified => "unverified",
            });
        }
        for (key, m) in [
            ("amount_over", &rule.amount_over),
            ("case_total_over", &rule.case_total_over),
            ("order_total_over", &rule.order_total_over),
        ] {
            if let Some(m) = m {
                t[key] = value(m.to_string());
            }
        }
        t
    }

    /// Take the band's action on the band's channel out of `rule` (the table at `at` in
    /// `list`): the rule keeps its other actions, and the action keeps the rule on every
    /// other channel and, on this one, above the band (its totals kept too).
    #[allow(clippy::too_many_arguments)]
    fn split_rule(
        policy: &Policy,
        taken: &mut Vec<String>,
        list: &mut ArrayOfTables,
        at: usize,
        rule: &Rule,
        r: &BandRecord,
        changes: &mut Vec<String>,
        added: &mut Vec<Table>,
    ) -> Result<(), String> {
        let c = r.channel;
        let a = r.action.as_str();
        let mut id_for = |base: String| {
            let id = fresh_id(policy, taken, &base);
            taken.push(id.clone());
            id
        };
        let others: Vec<&str> = rule.actions.iter().map(String::as_str).filter(|x| *x != a).collect();
        let rest: Vec<Channel> = match &rule.channels {
            None => Channel::ALL.into_iter().filter(|x| *x != c).collect(),
            Some(set) => set.iter().copied().filter(|x| *x != c).collect(),
        };
        let keeps_totals = rule.case_total_over.is_some() || rule.order_total_over.is_some();
        if keeps_totals && !others.is_empty() {
            // Its totals add up every action it names: split, each part would count its
            // own actions alone.
            return Err(format!(
                "rule {} holds {a} by totals it adds up with {}: change it by hand",
                rule.id,
                others.join(", ")
            ));
        }
        if r.band.up_to.is_none() && !keeps_totals && rest.is_empty() && others.is_empty() {
            return Err(format!(
                "rule {} covers only {a} on {c} and nothing more: remove it by hand if that is meant",
                rule.id
            ));
        }
        // The original: its other actions stay as they are; for this action alone it is
        // narrowed to the other channels (or goes).
        let original = list.get_mut(at).ok_or_else(|| format!("rule {} is not in the policy's text", rule.id))?;
        let mut narrowed = None;
        if others.is_empty() {
            if rest.is_empty() {
                list.remove(at);
                changes.push(format!("rule {}: removed (it held {a} on {c} alone)", rule.id));
            } else {
                original["channels"] = value(channels(rest));
                changes.push(format!("rule {}: no longer on {c}", rule.id));
            }
        } else {
            original["actions"] = value(others.iter().copied().collect::<Array>());
            changes.push(format!("rule {}: no longer for {a}", rule.id));
            if !rest.is_empty() {
                let id = id_for(format!("{}.{a}", rule.id));
                let mut t = copy_rule(rule, &id, &[a]);
                t["channels"] = value(channels(rest));
                changes.push(format!("new rule {id}: {} for {a} on every channel but {c}", rule.id));
                narrowed = Some(t);
            }
        }
        added.extend(narrowed);
        // On this channel, the rule for this action from the band's top up.
        if r.band.up_to.is_some() || keeps_totals {
            let base = if others.is_empty() { format!("{}.{c}", rule.id) } else { format!("{}.{a}.{c}", rule.id) };
            let id = id_for(base);
            let mut t = copy_rule(rule, &id, &[a]);
            t["channels"] = value(channels([c]));
            match &r.band.up_to {
                Some(hi) => {
                    t["amount_over"] = value(hi.to_string());
                    changes.push(format!("new rule {id}: {} for {a} on {c} only over {hi} (its totals kept)", rule.id));
                }
                None => {
                    t.remove("amount_over");
                    changes.push(format!("new rule {id}: {} for {a} on {c} only on its totals", rule.id));
                }
            }
            added.push(t);
        }
        Ok(())
    }

    /// A rule that holds the band's action on its channel, from the band's bottom up, at
    /// the stricter decision.
    pub(super) fn tighten(policy: &Policy, source: &str, r: &BandRecord, to: Outcome, why: &str) -> Written {
        let c = r.channel;
        let mut doc = open(policy, source)?;
        let id = fresh_id(policy, &[], &format!("earned.{}.{c}.tighten", r.action));
        let reason = format!("{} on {c} was {why}: it now needs `{to}`", r.action);
        let mut t = new_rule(&id, &reason, &r.action, to);
        t["channels"] = value(channels([c]));
        if let Some(lo) = &r.band.over {
            t["amount_over"] = value(lo.to_string());
        }
        t.decor_mut().set_prefix(format!(
            "\n# Proposed from the record of {} {} on {c} ({} → {to}).\n",
            r.action, r.band_label, r.decision
        ));
        let scope = match &r.band.over {
            Some(lo) => format!("over {lo}"),
            None => "at any amount".into(),
        };
        rules(&mut doc)?.push(t);
        finish(policy, doc, vec![format!("new rule {id}: {} on {c} {scope} is {to}", r.action)])
    }
}
