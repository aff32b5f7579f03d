//! Where a plan's values came from, as the engine knows it — never as a plan says.
//!
//! A plan from outside the engine (a plan file given to `decide` or `run`, a case file's
//! recorded plan, the demo's sample plans) is untrusted as a whole: every `source` it
//! declares for its values is ignored, and [`Engine::external_plan`] derives each one
//! again from the evidence of this case:
//!
//! - **`connector`** when the value is something this case's recorded reads returned: the
//!   responses of its planning reads (`planning_read`, outcome `read`), the responses of its
//!   read steps that ran (`step_finished`, succeeded, of an action the policy calls a read),
//!   and the facts of the case's own orders (`case.order_ids`) as read for this decision
//!   (what `context_read` records). The orders a plan merely names are read to decide it,
//!   but that read does not vouch for the id the plan gave: an order number typed by the
//!   customer stays untrusted until a read of the case returned it. A list or an object
//!   counts when each of its values does (an empty string, or null, is no value).
//! - **`agent`** when the agent's own edit recorded that value for that action's parameter
//!   (a plan revision of planner [`cases::AGENT_EDIT`] made by [`Engine::edit_step`], where
//!   the values the agent typed carry `agent`). A plan file cannot name that planner.
//! - **`policy`** never: neither the policy nor a plan file defines constants a plan could
//!   quote (the local planner's playbook amounts are the planner's own, and reach the
//!   engine through [`Engine::plan_case`], not through a file).
//! - anything else is **`model`**: untrusted, so the policy's provenance rule applies.
//!
//! Null values are made empty first ([`countersign_core::validate::without_nulls`]): an
//! optional parameter or address field that is null is left out, a required one that is
//! null is refused by the policy with a reason.
//!
//! The engine's own planners are checked, not re-derived ([`Engine::plan_case`]): the
//! engine ran the planner and recorded its reads itself, so a planner's claim stands only
//! when [`backed`] by that run's reads or the case's structured fields, and is lowered to
//! `model` otherwise. A planner may say less than the reads would allow (the local planner
//! marks a cancellation reason as the customer's words even when it equals a value some
//! read returned), never more.

use std::collections::BTreeMap;

use countersign_core::decide::OrderFacts;
use countersign_core::evidence::{Event, StepOutcome};
use countersign_core::model::{Case, Param, Plan, Provenance};
use countersign_core::policy::Kind;
use serde_json::Value;

use crate::{Engine, EngineError, cases};

/// Who vouches for the sources of a plan being recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The engine's own plans (a planner's, checked; an agent's edit), or a caller that
    /// vouches for them: sources as given.
    Engine,
    /// A plan from outside: every source derived again ([`Engine::external_plan`]).
    Outside,
}

/// What a case's evidence vouches for: values its reads returned, values the agent typed.
#[derive(Debug, Default)]
pub(crate) struct Vouched {
    /// Every response (or order's facts) a read of this case returned.
    reads: Vec<Value>,
    /// `(action, parameter, value)` the agent's own edits recorded.
    agent: Vec<(String, String, Value)>,
}

impl Vouched {
    fn source(&self, action: &str, name: &str, value: &Value) -> Provenance {
        if backed(value, &|leaf| self.reads.iter().any(|r| contains_value(r, leaf))) {
            Provenance::Connector
        } else if self.agent.iter().any(|(a, n, v)| a == action && n == name && v == value) {
            Provenance::Agent
        } else {
            Provenance::Model
        }
    }
}

impl Engine {
    /// A plan from outside the engine, made fit to decide: null values made empty, and
    /// every parameter's source derived from this case's evidence (see the module docs),
    /// whatever the plan declared. `orders` are the facts read for this decision (the
    /// case's own orders among them vouch for their values). Records nothing: the plan
    /// recorded is the derived one; a declared source it overrode is logged.
    pub(crate) fn external_plan(
        &self,
        case: &Case,
        plan: &Plan,
        orders: &BTreeMap<String, OrderFacts>,
    ) -> Result<Plan, EngineError> {
        let running = self.running();
        let vouched = self.vouched(case, orders)?;
        let mut plan = countersign_core::validate::without_nulls(&running.policy, plan);
        for step in &mut plan.steps {
            for (name, param) in &mut step.params {
                let derived = vouched.source(&step.action, name, &param.value);
                if derived != param.source {
                    tracing::info!(
                        case = %case.id, plan = %plan.id, step = %step.id, param = %name,
                        declared = param.source.as_str(), derived = derived.as_str(),
                        "a plan from outside the engine: source derived from the case's evidence"
                    );
                    *param = Param { value: param.value.clone(), source: derived };
                }
            }
        }
        Ok(plan)
    }

    /// Decide and record a plan from outside the engine (a plan file), its sources derived
    /// again. Like [`Engine::process`], a plan already recorded for the case is not
    /// recorded again: its recorded decision is returned when the plan holds the same steps
    /// (sources aside, since the recorded ones are derived), and another plan under that
    /// id is a conflict.
    pub(crate) fn process_outside(
        &self,
        case: &Case,
        plan: &Plan,
    ) -> Result<countersign_core::decide::PlanDecision, EngineError> {
        let running = self.running();
        self.check_external(plan)?;
        if let Some(decision) = self.recorded_decision(&case.id, &plan.id)? {
            let given = countersign_core::validate::without_nulls(&running.policy, plan);
            let recorded = self.case_plans(&case.id)?.into_iter().find(|(p, _)| p.id == plan.id).map(|(p, _)| p);
            if recorded.is_some_and(|r| same_values(&r, &given)) {
                return Ok(decision);
            }
            return Err(EngineError::Conflict {
                message: format!(
                    "plan {} of case {} was already recorded with other steps: a changed plan needs a new id",
                    plan.id, case.id
                ),
            });
        }
        self.process_with(case, plan, None, Origin::Outside)
    }

    /// Refuses what an outside plan may not claim before anything is read or recorded.
    pub(crate) fn check_external(&self, plan: &Plan) -> Result<(), EngineError> {
        if plan.planner == cases::AGENT_EDIT {
            return Err(EngineError::BadInput {
                message: format!(
                    "plan {} names the planner `{}`, which only the agent's own edits in the engine may carry",
                    plan.id,
                    cases::AGENT_EDIT
                ),
            });
        }
        Ok(())
    }

    /// What this case's evidence vouches for.
    fn vouched(&self, case: &Case, orders: &BTreeMap<String, OrderFacts>) -> Result<Vouched, EngineError> {
        let running = self.running();
        let mut out = Vouched::default();
        for id in &case.order_ids {
            if let Some(facts) = orders.get(id) {
                out.reads
                    .push(serde_json::to_value(facts).map_err(|e| EngineError::BadInput { message: e.to_string() })?);
            }
        }
        for e in self.case_events(&case.id, "planning_read")? {
            if let Event::PlanningRead { outcome, response: Some(response), .. } = e.event
                && outcome == "read"
            {
                out.reads.push(response);
            }
        }
        // The plans of the case: which action each step was, and what the agent typed.
        let mut actions: BTreeMap<(String, String), String> = BTreeMap::new();
        for e in self.case_events(&case.id, "plan_proposed")? {
            let Event::PlanProposed { plan } = e.event else { continue };
            for step in &plan.steps {
                actions.insert((plan.id.clone(), step.id.clone()), step.action.clone());
                if plan.planner == cases::AGENT_EDIT {
                    for (name, p) in &step.params {
                        if p.source == Provenance::Agent {
                            out.agent.push((step.action.clone(), name.clone(), p.value.clone()));
                        }
                    }
                }
            }
        }
        for e in self.case_events(&case.id, "step_finished")? {
            let Event::StepFinished { plan_id, step_id, outcome: StepOutcome::Succeeded, response, .. } = e.event
            else {
                continue;
            };
            let is_read = actions
                .get(&(plan_id, step_id))
                .and_then(|a| running.policy.actions.get(a))
                .is_some_and(|def| def.kind == Kind::Read);
            if is_read {
                out.reads.push(response);
            }
        }
        Ok(out)
    }
}

/// The same steps (ids, actions, parameter values) and reply, whatever their sources.
fn same_values(a: &Plan, b: &Plan) -> bool {
    let values = |p: &Plan| -> Vec<(String, String, BTreeMap<String, Value>)> {
        p.steps
            .iter()
            .map(|s| {
                (s.id.clone(), s.action.clone(), s.params.iter().map(|(k, v)| (k.clone(), v.value.clone())).collect())
            })
            .collect()
    };
    values(a) == values(b) && a.reply == b.reply
}

/// Does `value` come from what `known` recognises? A list or an object is backed when each
/// of its values is; an empty string or a null is no value and needs no backing.
pub(crate) fn backed(value: &Value, known: &dyn Fn(&Value) -> bool) -> bool {
    match value {
        Value::Array(items) => !items.is_empty() && items.iter().all(|v| backed(v, known)),
        Value::Object(m) => !m.is_empty() && m.values().all(|v| v.is_null() || backed(v, known)),
        Value::String(s) if s.is_empty() => true,
        v => known(v),
    }
}

/// Is `needle` somewhere in `haystack` (the whole of it, a field, an element, at any depth)?
pub(crate) fn contains_value(haystack: &Value, needle: &Value) -> bool {
    if haystack == needle {
        return true;
    }
    match haystack {
        Value::Object(m) => m.values().any(|v| contains_value(v, needle)),
        Value::Array(a) => a.iter().any(|v| contains_value(v, needle)),
        _ => false,
    }
}
