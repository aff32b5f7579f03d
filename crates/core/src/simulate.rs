//! Policy simulation: recorded decisions replayed through a draft policy, and what
//! would change. Pure, like [`crate::decide`]: the recorded inputs
//! ([`crate::evidence::DecisionInputs`]) go in, a per-step comparison comes out.
//!
//! **What "would change" means.** Decisions are replayed in the order they were
//! recorded, as if each case had been processed afresh under the draft with no person
//! acting in between differently from the record. One input is not a fixed fact but
//! follows from earlier decisions: the money history that cumulative limits and the
//! refundable amount count. It is carried over from the record and corrected for every
//! earlier step the draft decides otherwise:
//!
//! - a step the draft would not queue (`recommend`, `forbid`) leaves the history;
//! - a step the record did not queue that the draft would (`auto`, or waiting for a
//!   person) enters it, as approved or pending;
//! - a step that waited for a person and would run on its own counts as approved, also
//!   when the person then rejected it (it would have run before anyone could see it); a
//!   step that waited and then failed on the platform counts as well (the record does not
//!   tell it from a rejection here, so the simulation errs on the strict side).
//!
//! Replaying the policy a decision was recorded under gives that decision back. What a
//! draft changes in how money is counted (an action's `money_param` or `order_param`)
//! is not replayed: the recorded history was chosen under the recording policy's.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::Timestamp;
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::decide::{CaseScan, Facts, PlanDecision, PriorState, PriorStep, StepDecision, decide_scanned};
use crate::model::{Case, Plan};
use crate::money::{Currency, Money};
use crate::policy::{Outcome, Policy};

/// The format of a [`SimulationReport`].
pub const REPORT_FORMAT: &str = "countersign/simulation/v1";

/// How many sample cases a report names per change.
pub const SAMPLES: usize = 3;

/// One recorded decision with everything it read, as its evidence holds it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// When it was decided (the `decided` event's time).
    pub at: Timestamp,
    pub case: Case,
    pub plan: Plan,
    pub facts: Facts,
    pub decision: PlanDecision,
}

/// An event of a log as a simulation reads it.
#[derive(Debug, Clone)]
pub enum Logged {
    /// A revision of a case (`case_opened`, `case_received`).
    Case(Box<Case>),
    /// `plan_proposed`.
    Plan(Box<Plan>),
    /// `decided`, with what it read (absent in decisions recorded before inputs were kept).
    Decided { at: Timestamp, decision: Box<PlanDecision>, inputs: Option<Box<crate::evidence::DecisionInputs>> },
}

/// A recorded decision paired with the case and plan it names; its inputs are checked
/// against them ([`Candidate::check`]) before it is replayed.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub at: Timestamp,
    pub case: Case,
    pub plan: Plan,
    pub inputs: Box<crate::evidence::DecisionInputs>,
    pub decision: PlanDecision,
}

impl Candidate {
    /// Its inputs are the ones recorded for this case, plan and policy.
    pub fn holds(&self) -> bool {
        self.inputs.holds_for(&self.case, &self.plan, &self.decision.policy_hash)
    }

    /// The decision to replay, if its inputs hold.
    pub fn check(self, holds: bool) -> Result<Recorded, Unreplayable> {
        if !holds {
            return Err(Unreplayable {
                case_id: self.decision.case_id.clone(),
                plan_id: self.decision.plan_id.clone(),
                reason:
                    "its recorded inputs do not match the case and plan the log holds (run `countersign log verify`)"
                        .into(),
            });
        }
        Ok(Recorded {
            at: self.at,
            case: self.case,
            plan: self.plan,
            facts: self.inputs.facts,
            decision: self.decision,
        })
    }
}

/// Pair each decision of one log (its events by seq, oldest first) with the plan proposed
/// just before it and the revision of the case its inputs name; how many decisions carry
/// no inputs; and those that name a plan or case the log does not hold.
pub fn pair(log: Vec<(u64, Logged)>) -> (Vec<Candidate>, usize, Vec<Unreplayable>) {
    let mut cases: HashMap<String, Vec<(u64, String, Case)>> = HashMap::new();
    let mut plans: HashMap<(String, String), Vec<(u64, Plan)>> = HashMap::new();
    let mut decisions = Vec::new();
    for (seq, item) in log {
        match item {
            Logged::Case(case) => {
                cases.entry(case.id.clone()).or_default().push((seq, crate::evidence::case_digest(&case), *case));
            }
            Logged::Plan(plan) => plans.entry((plan.case_id.clone(), plan.id.clone())).or_default().push((seq, *plan)),
            Logged::Decided { at, decision, inputs } => decisions.push((seq, at, decision, inputs)),
        }
    }
    for revisions in cases.values_mut() {
        revisions.sort_by_key(|(seq, ..)| *seq);
    }
    for proposed in plans.values_mut() {
        proposed.sort_by_key(|(seq, _)| *seq);
    }
    decisions.sort_by_key(|(seq, ..)| *seq);
    let mut candidates = Vec::new();
    let mut without_inputs = 0;
    let mut unreplayable = Vec::new();
    for (seq, at, decision, inputs) in decisions {
        let Some(inputs) = inputs else {
            without_inputs += 1;
            continue;
        };
        let refuse = |reason: &str| Unreplayable {
            case_id: decision.case_id.clone(),
            plan_id: decision.plan_id.clone(),
            reason: reason.into(),
        };
        // The plan proposed just before it, and the revision of the case it names (a newer
        // one may have been recorded between the decision and its writing).
        let proposed = plans.get(&(decision.case_id.clone(), decision.plan_id.clone()));
        let Some(plan) = proposed.and_then(|p| p.iter().rev().find(|(s, _)| *s < seq)).map(|(_, p)| p.clone()) else {
            unreplayable.push(refuse("its plan is not in the log"));
            continue;
        };
        let case = match inputs.case {
            Some(ref case) => Some(case.clone()),
            None => cases
                .get(&decision.case_id)
                .and_then(|revs| revs.iter().rev().find(|(s, d, _)| *s < seq && *d == inputs.case_digest))
                .map(|(.., case)| case.clone()),
        };
        let Some(case) = case else {
            unreplayable.push(refuse("the case it decided on is not in the log"));
            continue;
        };
        candidates.push(Candidate { at, case, plan, inputs, decision: *decision });
    }
    (candidates, without_inputs, unreplayable)
}

/// One step, as recorded and as the draft decides it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SimulatedStep {
    pub case_id: String,
    pub plan_id: String,
    pub step_id: String,
    pub action: String,
    /// When the recorded decision was made.
    pub at: Timestamp,
    /// The step's amount, for a money step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub money: Option<Money>,
    pub before: Outcome,
    pub after: Outcome,
    /// The rules that set each outcome (the reasons at that outcome).
    pub rules_before: Vec<String>,
    pub rules_after: Vec<String>,
}

/// A recorded decision the draft cannot replay (its plan does not fit the case).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Unreplayable {
    pub case_id: String,
    pub plan_id: String,
    pub reason: String,
}

/// Something decided once per plan (its reply, its hand-off), as recorded and as the
/// draft decides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanChange<T> {
    pub case_id: String,
    pub plan_id: String,
    pub at: Timestamp,
    pub before: T,
    pub after: T,
}

impl<T> PlanChange<T> {
    fn of(r: &Recorded, before: T, after: T) -> PlanChange<T> {
        PlanChange { case_id: r.case.id.clone(), plan_id: r.plan.id.clone(), at: r.at, before, after }
    }
}

/// Every replayed step, every reply, in the order decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Simulation {
    /// When each replayed decision was recorded, in order.
    pub decided: Vec<Timestamp>,
    pub steps: Vec<SimulatedStep>,
    /// The reply of each plan that drafted one.
    pub replies: Vec<PlanChange<Outcome>>,
    /// Plans whose hand-off to a person would flip.
    pub handoffs: Vec<PlanChange<bool>>,
    pub unreplayable: Vec<Unreplayable>,
}

/// A step's money history entry, as the draft would have it.
struct Queued {
    case_id: String,
    plan_id: String,
    step_id: String,
    action: String,
    order_id: Option<String>,
    amount: Money,
    after: Outcome,
}

/// Replay `recorded` (in the order decided) through `draft`.
pub fn simulate(draft: &Policy, recorded: &[Recorded]) -> Simulation {
    let mut out = Simulation::default();
    // Each replayed step's (recorded, draft) outcome, by (case, plan, step).
    let mut outcomes: HashMap<(String, String, String), (Outcome, Outcome)> = HashMap::new();
    // Steps the record did not queue and the draft would: they join later histories.
    let mut joined: Vec<Queued> = Vec::new();
    let mut joined_by_case: HashMap<String, Vec<usize>> = HashMap::new();
    let mut joined_by_order: HashMap<String, Vec<usize>> = HashMap::new();
    let mut scans: HashMap<String, (String, CaseScan)> = HashMap::new();

    for r in recorded {
        let orders = plan_orders(draft, &r.case, &r.plan);
        let mut facts = r.facts.clone();
        facts.history = history(&r.facts.history, &outcomes, |h| {
            !(h.case_id == r.case.id && h.plan_id.as_deref() == Some(r.plan.id.as_str()))
        });
        // A step already in the recorded history is there (corrected above), never twice.
        let present: BTreeSet<(&str, &str, &str)> = facts
            .history
            .iter()
            .filter_map(|h| Some((h.case_id.as_str(), h.plan_id.as_deref()?, h.step_id.as_deref()?)))
            .collect();
        let mut added = Vec::new();
        let mut seen = BTreeSet::new();
        for &i in joined_by_case
            .get(&r.case.id)
            .into_iter()
            .flatten()
            .chain(orders.iter().filter_map(|o| joined_by_order.get(o)).flatten())
        {
            let q = &joined[i];
            if (q.case_id == r.case.id && q.plan_id == r.plan.id)
                || !seen.insert(i)
                || present.contains(&(q.case_id.as_str(), q.plan_id.as_str(), q.step_id.as_str()))
            {
                continue;
            }
            added.push(PriorStep {
                case_id: q.case_id.clone(),
                action: q.action.clone(),
                order_id: q.order_id.clone(),
                amount: q.amount.clone(),
                state: if q.after == Outcome::Auto { PriorState::Approved } else { PriorState::Pending },
                plan_id: Some(q.plan_id.clone()),
                step_id: Some(q.step_id.clone()),
            });
        }
        facts.history.extend(added);

        let digest = crate::evidence::case_digest(&r.case);
        // One scan per revision of a case's words, as the engine keeps them.
        if scans.get(&r.case.id).is_none_or(|(d, _)| *d != digest) {
            scans.insert(r.case.id.clone(), (digest, CaseScan::new(draft, &r.case)));
        }
        let scan = &scans[&r.case.id].1;
        let decided = match decide_scanned(draft, &r.case, &r.plan, &facts, scan) {
            Ok(d) => d,
            Err(e) => {
                out.unreplayable.push(Unreplayable {
                    case_id: r.case.id.clone(),
                    plan_id: r.plan.id.clone(),
                    reason: e.to_string(),
                });
                continue;
            }
        };
        out.decided.push(r.at);
        for (before, after) in r.decision.steps.iter().zip(&decided.steps) {
            let key = (r.case.id.clone(), r.plan.id.clone(), before.step_id.clone());
            outcomes.insert(key, (before.decision, after.decision));
            let money = after.money.clone().or_else(|| before.money.clone());
            // It joins later histories where the record may lack it: not queued then, or
            // waiting for a person who may have turned it down.
            let joins = queued(after.decision)
                && (!queued(before.decision) || (before.decision != Outcome::Auto && after.decision == Outcome::Auto));
            if joins && let Some(amount) = money.clone() {
                let step = r.plan.steps.iter().find(|s| s.id == after.step_id);
                let order_id = step.and_then(|s| step_order(draft, s));
                let i = joined.len();
                joined_by_case.entry(r.case.id.clone()).or_default().push(i);
                if let Some(o) = &order_id {
                    joined_by_order.entry(o.clone()).or_default().push(i);
                }
                joined.push(Queued {
                    case_id: r.case.id.clone(),
                    plan_id: r.plan.id.clone(),
                    step_id: after.step_id.clone(),
                    action: after.action.clone(),
                    order_id,
                    amount,
                    after: after.decision,
                });
            }
            out.steps.push(SimulatedStep {
                case_id: r.case.id.clone(),
                plan_id: r.plan.id.clone(),
                step_id: before.step_id.clone(),
                action: before.action.clone(),
                at: r.at,
                money,
                before: before.decision,
                after: after.decision,
                rules_before: deciding_rules(before),
                rules_after: deciding_rules(after),
            });
        }
        if let (Some(b), Some(a)) = (&r.decision.reply, &decided.reply) {
            out.replies.push(PlanChange::of(r, b.decision, a.decision));
        }
        if r.decision.handoff != decided.handoff {
            out.handoffs.push(PlanChange::of(r, r.decision.handoff, decided.handoff));
        }
    }
    out
}

/// Whether a step with this outcome enters the step queue (and so the money history).
fn queued(o: Outcome) -> bool {
    matches!(o, Outcome::Auto | Outcome::Confirm | Outcome::Supervisor)
}

/// The recorded history, corrected for the earlier steps the draft decides otherwise.
fn history(
    recorded: &[PriorStep],
    outcomes: &HashMap<(String, String, String), (Outcome, Outcome)>,
    keep: impl Fn(&PriorStep) -> bool,
) -> Vec<PriorStep> {
    let mut out = Vec::with_capacity(recorded.len());
    for h in recorded.iter().filter(|h| keep(h)) {
        let replayed = match (&h.plan_id, &h.step_id) {
            (Some(p), Some(s)) => outcomes.get(&(h.case_id.clone(), p.clone(), s.clone())),
            _ => None,
        };
        match replayed {
            Some((_, after)) if !queued(*after) => {}
            Some((before, Outcome::Auto)) if *before != Outcome::Auto && h.state == PriorState::Pending => {
                out.push(PriorStep { state: PriorState::Approved, ..h.clone() });
            }
            _ => out.push(h.clone()),
        }
    }
    out
}

/// The orders a plan's money history is read for: the case's, and those its steps name.
fn plan_orders(policy: &Policy, case: &Case, plan: &Plan) -> BTreeSet<String> {
    let mut orders: BTreeSet<String> = case.order_ids.iter().cloned().collect();
    orders.extend(plan.steps.iter().filter_map(|s| step_order(policy, s)));
    orders
}

fn step_order(policy: &Policy, step: &crate::model::Step) -> Option<String> {
    let def = policy.actions.get(&step.action)?;
    step.params.get(def.order_param.as_ref()?)?.value.as_str().map(str::to_string)
}

/// The rules whose reasons set the step's outcome.
fn deciding_rules(d: &StepDecision) -> Vec<String> {
    let mut rules: Vec<String> = Vec::new();
    for r in d.reasons.iter().filter(|r| r.decision == d.decision) {
        if !rules.contains(&r.rule) {
            rules.push(r.rule.clone());
        }
    }
    rules
}

/// The policy a report was made for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PolicyRef {
    pub id: String,
    pub version: u64,
    /// `sha256:` of the policy's source.
    pub hash: String,
}

/// A sample of a change: which case, plan and step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Sample {
    pub case_id: String,
    pub plan_id: String,
    pub step_id: String,
}

/// Steps that move from one outcome to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Move {
    pub from: Outcome,
    pub to: Outcome,
    pub steps: usize,
    /// Their amounts, per currency.
    pub money: Vec<Money>,
    /// Up to [`SAMPLES`] of them, the first decided first.
    pub samples: Vec<Sample>,
}

/// One action's steps and how they move.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ActionChanges {
    pub action: String,
    pub steps: usize,
    pub changed: usize,
    pub moves: Vec<Move>,
}

/// One rule: how often it sets a step's outcome before and after, and the moves where it
/// starts or stops setting it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RuleChanges {
    pub rule: String,
    /// Steps whose outcome it set under the recorded policies.
    pub sets_before: usize,
    /// Steps whose outcome it sets under the draft.
    pub sets_after: usize,
    /// Changed steps whose outcome it now sets (and did not).
    pub starts: Vec<Move>,
    /// Changed steps whose outcome it no longer sets.
    pub stops: Vec<Move>,
}

/// What a draft policy would change over the recorded decisions: the report an admin
/// reads before signing, and whose hash `policy sign --simulation` puts in the pack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SimulationReport {
    pub format: String,
    pub draft: PolicyRef,
    /// The recorded decisions replayed: those at or after `since` (all when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    pub since: Option<Timestamp>,
    pub decisions: usize,
    pub steps: usize,
    pub changed: usize,
    /// Per action, the actions with a change first.
    pub actions: Vec<ActionChanges>,
    /// Per rule that sets an outcome before or after.
    pub rules: Vec<RuleChanges>,
    /// Money in steps that waited for a person, or did not run, and would run on their own.
    pub money_without_a_human: Vec<Money>,
    /// Money in steps that ran on their own and would now wait or be refused.
    pub money_no_longer_automatic: Vec<Money>,
    /// The replies' decisions that move.
    pub replies: Vec<Move>,
    /// Plans that would now go to a person (`to_person`) or no longer (`from_person`).
    pub handoffs_to_person: usize,
    pub handoffs_from_person: usize,
    /// Recorded decisions that carry no inputs (made before they were kept): not replayed.
    pub without_inputs: usize,
    pub unreplayable: Vec<Unreplayable>,
}

impl SimulationReport {
    /// The report of `sim` over the draft, counting decisions at or after `since`.
    pub fn new(draft: &Policy, sim: &Simulation, since: Option<Timestamp>, without_inputs: usize) -> SimulationReport {
        let counted = |at: &Timestamp| since.is_none_or(|s| *at >= s);
        let steps: Vec<&SimulatedStep> = sim.steps.iter().filter(|s| counted(&s.at)).collect();
        let decisions = sim.decided.iter().filter(|at| counted(at)).count();

        let mut actions: BTreeMap<&str, (usize, Moves)> = BTreeMap::new();
        let mut rules: BTreeMap<&str, (usize, usize, Moves, Moves)> = BTreeMap::new();
        let mut without_a_human = Totals::default();
        let mut no_longer_automatic = Totals::default();
        for s in &steps {
            let entry = actions.entry(&s.action).or_default();
            entry.0 += 1;
            for r in &s.rules_before {
                rules.entry(r).or_default().0 += 1;
            }
            for r in &s.rules_after {
                rules.entry(r).or_default().1 += 1;
            }
            if s.before == s.after {
                continue;
            }
            entry.1.add(s);
            for r in s.rules_after.iter().filter(|r| !s.rules_before.contains(r)) {
                rules.entry(r).or_default().2.add(s);
            }
            for r in s.rules_before.iter().filter(|r| !s.rules_after.contains(r)) {
                rules.entry(r).or_default().3.add(s);
            }
            if let Some(m) = &s.money {
                if s.after == Outcome::Auto {
                    without_a_human.add(m);
                } else if s.before == Outcome::Auto {
                    no_longer_automatic.add(m);
                }
            }
        }
        let mut actions: Vec<ActionChanges> = actions
            .into_iter()
            .map(|(action, (n, moves))| ActionChanges {
                action: action.to_string(),
                steps: n,
                changed: moves.changed(),
                moves: moves.into_vec(),
            })
            .collect();
        actions.sort_by(|a, b| b.changed.cmp(&a.changed).then_with(|| a.action.cmp(&b.action)));
        let mut replies = Moves::default();
        for r in sim.replies.iter().filter(|r| r.before != r.after && counted(&r.at)) {
            let sample = Sample { case_id: r.case_id.clone(), plan_id: r.plan_id.clone(), step_id: "reply".into() };
            replies.add_raw(r.before, r.after, None, sample);
        }
        SimulationReport {
            format: REPORT_FORMAT.into(),
            draft: PolicyRef { id: draft.id.clone(), version: draft.version, hash: draft.hash.clone() },
            since,
            decisions,
            steps: steps.len(),
            changed: steps.iter().filter(|s| s.before != s.after).count(),
            actions,
            rules: rules
                .into_iter()
                .map(|(rule, (before, after, starts, stops))| RuleChanges {
                    rule: rule.to_string(),
                    sets_before: before,
                    sets_after: after,
                    starts: starts.into_vec(),
                    stops: stops.into_vec(),
                })
                .collect(),
            money_without_a_human: without_a_human.into_vec(),
            money_no_longer_automatic: no_longer_automatic.into_vec(),
            replies: replies.into_vec(),
            handoffs_to_person: sim.handoffs.iter().filter(|h| counted(&h.at) && h.after).count(),
            handoffs_from_person: sim.handoffs.iter().filter(|h| counted(&h.at) && !h.after).count(),
            without_inputs,
            unreplayable: sim.unreplayable.clone(),
        }
    }

    /// `sha256:` of the report's canonical JSON: what a signed pack names.
    pub fn digest(&self) -> String {
        crate::digest::sha256_hex(crate::digest::canonical_json(self).as_bytes())
    }
}

/// Amounts summed per currency.
#[derive(Default)]
struct Totals(BTreeMap<Currency, Decimal>);

impl Totals {
    fn add(&mut self, m: &Money) {
        *self.0.entry(m.currency.clone()).or_default() += m.amount;
    }

    fn into_vec(self) -> Vec<Money> {
        self.0.into_iter().map(|(currency, amount)| Money { amount, currency }).collect()
    }
}

/// Moves keyed by (from, to), with their money and samples.
#[derive(Default)]
struct Moves(BTreeMap<(Outcome, Outcome), (usize, Totals, Vec<Sample>)>);

impl Moves {
    fn add(&mut self, s: &SimulatedStep) {
        let sample = Sample { case_id: s.case_id.clone(), plan_id: s.plan_id.clone(), step_id: s.step_id.clone() };
        self.add_raw(s.before, s.after, s.money.as_ref(), sample);
    }

    fn add_raw(&mut self, from: Outcome, to: Outcome, money: Option<&Money>, sample: Sample) {
        let entry = self.0.entry((from, to)).or_default();
        entry.0 += 1;
        if let Some(m) = money {
            entry.1.add(m);
        }
        if entry.2.len() < SAMPLES {
            entry.2.push(sample);
        }
    }

    fn changed(&self) -> usize {
        self.0.values().map(|(n, _, _)| n).sum()
    }

    fn into_vec(self) -> Vec<Move> {
        self.0
            .into_iter()
            .map(|((from, to), (steps, money, samples))| Move { from, to, steps, money: money.into_vec(), samples })
            .collect()
    }
}
