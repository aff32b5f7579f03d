//! Deciding and recording a plan: the trusted facts (the orders a plan touches, earlier
//! money steps, pauses, citations), the policy's decision, and the evidence of it all in
//! one transaction.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use countersign_core::decide::{Facts, OrderFacts, PlanDecision, PriorState, PriorStep};
use countersign_core::evidence::{DecisionInputs, Event};
use countersign_core::model::{Case, Plan};
use countersign_core::{CaseScan, Outcome, decide_scanned};
use countersign_store::{EventFilter, NewStep, StepFilter};

use crate::provenance::Origin;
use crate::{DemoCase, Engine, EngineError, StepState, cases};

/// How many cases' scans the engine keeps (a full cache starts over).
const SCAN_CACHE_CASES: usize = 4096;

impl Engine {
    /// The trusted facts for deciding `plan` on `case`: the orders it touches (read
    /// through the connector), earlier money steps from the evidence log, active
    /// pauses, the knowledge articles that exist.
    pub fn gather_facts(&self, case: &Case, plan: &Plan) -> Result<Facts, EngineError> {
        self.gather_facts_for(case, plan, plan, None)
    }

    /// The facts for deciding `plan` (all of it, or one step of it again before it runs:
    /// then `only` names that step, `plan` holds just it, and the other steps of `whole`
    /// count as earlier money steps by their state). Identity look-ups are those of `whole`.
    pub(crate) fn gather_facts_for(
        &self,
        case: &Case,
        plan: &Plan,
        whole: &Plan,
        only: Option<&str>,
    ) -> Result<Facts, EngineError> {
        let running = self.running();
        let mut order_ids: BTreeSet<String> = case.order_ids.iter().cloned().collect();
        for step in &plan.steps {
            if let Some(def) = running.policy.actions.get(&step.action)
                && let Some(p) = def.order_param.as_ref().and_then(|p| step.params.get(p))
                && let Some(id) = p.value.as_str()
            {
                order_ids.insert(id.to_string());
            }
        }
        let mut orders = BTreeMap::new();
        for id in &order_ids {
            if let Some(f) = running.connector.order_facts(id)? {
                orders.insert(id.clone(), f);
            }
        }
        let identity = self.identity_facts(case, whole)?;
        // The account whose payment methods a step may name: the one the case names, else
        // the one the evidence verified (the policy's own rule). A connector that cannot
        // read accounts leaves it unknown, and the policy refuses any payment method it
        // cannot show is the customer's.
        let mut customers = BTreeMap::new();
        let account = case.customer.as_ref().map(|c| c.id.clone()).or_else(|| identity.customer_id.clone());
        if let Some(id) = account {
            match running.connector.customer_facts(&id) {
                Ok(Some(f)) => {
                    customers.insert(id, f);
                }
                Ok(None) | Err(countersign_connectors::ConnectorError::Unsupported { .. }) => {}
                // Unknown, so no payment method can be shown to be theirs: fail closed.
                Err(e) => tracing::warn!(customer = %id, error = %e, "the customer's account could not be read"),
            }
        }
        Ok(Facts {
            now: self.clock.now(),
            operator: self.operator.clone(),
            history: self.prior_money_steps(case, whole, only, &order_ids)?,
            orders,
            pauses: self.gate_pauses()?,
            customers,
            identity,
            citations: self.index_citations(plan)?,
            cut_off: self.cut_off(),
        })
    }

    /// Money steps of earlier plans on this case or on these orders, from the step
    /// queue: waiting ones count as pending, approved (or in flight) ones as approved,
    /// executed ones as executed. Rejected, expired, invalidated, failed and
    /// not-applied steps do not count.
    fn prior_money_steps(
        &self,
        case: &Case,
        plan: &Plan,
        only: Option<&str>,
        orders: &BTreeSet<String>,
    ) -> Result<Vec<PriorStep>, EngineError> {
        let running = self.running();
        let counted =
            vec![StepState::Waiting, StepState::Approved, StepState::Running, StepState::Unknown, StepState::Succeeded];
        let mut out = Vec::new();
        // Only the policy's money actions, on this case or these orders (and steps queued
        // before the store kept their order, sorted out below).
        let filter = StepFilter {
            states: counted,
            actions: self
                .running()
                .policy
                .actions
                .iter()
                .filter(|(_, d)| d.money_param.is_some())
                .map(|(a, _)| a.clone())
                .collect(),
            touching: Some(countersign_store::Touching {
                case_id: case.id.clone(),
                orders: orders.iter().cloned().collect(),
                order_params: self
                    .running()
                    .policy
                    .actions
                    .iter()
                    .filter(|(_, d)| d.money_param.is_some())
                    .map(|(a, d)| (a.clone(), d.order_param.clone().unwrap_or_default()))
                    .collect(),
            }),
            ..StepFilter::default()
        };
        if filter.actions.is_empty() {
            return Ok(out);
        }
        for rec in self.store.steps(&filter)? {
            // The plan being decided counts its own steps; a step decided again counts
            // the rest of its plan as earlier steps.
            if rec.plan_id == plan.id && rec.case_id == case.id && only.is_none_or(|s| s == rec.step_id) {
                continue;
            }
            // An action this policy does not know matches none of its limits.
            let Some(def) = running.policy.actions.get(&rec.action) else { continue };
            let Some(money_param) = &def.money_param else { continue };
            // A money step that cannot be read back is refused, never skipped: skipping it
            // would let a limit pass on the amounts that happen to be readable.
            let unreadable = |why: String| EngineError::Unreadable {
                message: format!(
                    "step {} of plan {} (case {}) in the step queue cannot be read ({why}), so the money limits \
                     over earlier steps cannot be checked; nothing is decided until it is (run `countersign log verify`)",
                    rec.step_id, rec.plan_id, rec.case_id
                ),
            };
            let step = serde_json::from_value::<countersign_core::Step>(rec.step.clone())
                .map_err(|e| unreadable(e.to_string()))?;
            let value = |p: &Option<String>| p.as_ref().and_then(|p| step.params.get(p)).map(|p| p.value.clone());
            // An optional amount left out moves no money.
            let Some(amount) = value(&def.money_param) else { continue };
            let amount =
                countersign_core::Money::from_json(&amount).map_err(|e| unreadable(format!("{money_param}: {e}")))?;
            let order_id = value(&def.order_param).and_then(|v| v.as_str().map(str::to_string));
            if rec.case_id == case.id || order_id.as_ref().is_some_and(|o| orders.contains(o)) {
                out.push(PriorStep {
                    case_id: rec.case_id.clone(),
                    action: rec.action.clone(),
                    order_id,
                    amount,
                    state: match rec.state {
                        StepState::Waiting => PriorState::Pending,
                        StepState::Succeeded => PriorState::Executed,
                        _ => PriorState::Approved,
                    },
                    plan_id: Some(rec.plan_id.clone()),
                    step_id: Some(rec.step_id.clone()),
                });
            }
        }
        Ok(out)
    }

    /// What the policy's escalation signals find in a case's words: scanned once per case
    /// revision (its subject and customer messages) and policy, then read by every decision
    /// on it. A case whose words changed, or a new policy, is scanned again.
    pub fn case_scan(&self, case: &Case) -> Arc<CaseScan> {
        let running = self.running();
        // A poisoned lock only means another thread panicked mid-insert; the map is still
        // a cache of valid scans.
        let mut scans = self.scans.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(s) = scans.get(&case.id).filter(|s| s.is_for(&running.policy, case)) {
            return Arc::clone(s);
        }
        let scan = Arc::new(CaseScan::new(&running.policy, case));
        if scans.len() >= SCAN_CACHE_CASES {
            scans.clear();
        }
        scans.insert(case.id.clone(), Arc::clone(&scan));
        scan
    }

    /// Read ahead, together, what the scans of `cases` not scanned yet will need
    /// ([`CaseScan::read_ahead`]): an inbox's first listing.
    pub(crate) fn read_ahead<'a>(&self, cases: impl Iterator<Item = &'a Case>) {
        let running = self.running();
        let unscanned: Vec<&Case> = {
            let scans = self.scans.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            cases.filter(|c| !scans.get(&c.id).is_some_and(|s| s.is_for(&running.policy, c))).collect()
        };
        if !unscanned.is_empty() {
            CaseScan::read_ahead(&running.policy, &unscanned);
        }
    }

    /// The policy's decision on a plan from outside the engine (a plan file): its sources
    /// are derived again from the case's evidence ([`crate::provenance`]). Records nothing.
    pub fn decide(&self, case: &Case, plan: &Plan) -> Result<PlanDecision, EngineError> {
        let running = self.running();
        self.check_external(plan)?;
        let facts = self.gather_facts(case, plan)?;
        let plan = self.external_plan(case, plan, &facts.orders)?;
        Ok(decide_scanned(&running.policy, case, &plan, &facts, &self.case_scan(case))?)
    }

    /// Decide a plan and record the evidence: the case (first time only), the
    /// context read, the plan, the decisions, and a review request per step that
    /// waits for a countersignature — in one transaction.
    ///
    /// Idempotent per plan: a plan already recorded for this case is not decided or
    /// recorded again; its recorded decision is returned. A plan id is bound to its steps:
    /// the same id with other steps (another amount, another order) is a conflict, never
    /// a way to reuse an earlier decision or approval.
    ///
    /// The plan's sources are taken as given: this is the path of the engine's own plans
    /// (a planner's, checked by [`Engine::plan_case`]; an agent's edit) and of callers that
    /// vouch for theirs. A plan from a file goes through [`Engine::submit_plan`], which
    /// derives its sources again.
    pub fn process(&self, case: &Case, plan: &Plan) -> Result<PlanDecision, EngineError> {
        self.process_with(case, plan, None, Origin::Engine)
    }

    /// [`Engine::process`], with the reply's citation facts given (from a planning run)
    /// instead of resolved against the index.
    pub(crate) fn process_with(
        &self,
        case: &Case,
        plan: &Plan,
        citations: Option<Vec<countersign_core::decide::CitationFact>>,
        origin: Origin,
    ) -> Result<PlanDecision, EngineError> {
        let running = self.running();
        if let Some(recorded) = self.recorded_decision(&case.id, &plan.id)? {
            let same = recorded.steps.len() == plan.steps.len()
                && recorded
                    .steps
                    .iter()
                    .zip(&plan.steps)
                    .all(|(d, s)| d.step_id == s.id && d.step_digest == countersign_core::digest::step_digest(s))
                // A flag the recorded decision did not have is a stricter plan, never the
                // earlier decision reused.
                && plan.signals.iter().all(|f| recorded.signals.iter().any(|h| h.category == f.category));
            if !same {
                return Err(EngineError::Conflict {
                    message: format!(
                        "plan {} of case {} was already recorded with other steps: a changed plan needs a new id",
                        plan.id, case.id
                    ),
                });
            }
            return Ok(recorded);
        }
        let mut facts = self.gather_facts(case, plan)?;
        let outside;
        let plan = match origin {
            Origin::Engine => plan,
            Origin::Outside => {
                outside = self.external_plan(case, plan, &facts.orders)?;
                &outside
            }
        };
        if let Some(c) = citations {
            facts.citations = c;
        }
        let decision = decide_scanned(&running.policy, case, plan, &facts, &self.case_scan(case))?;
        let seen = !self
            .store
            .list_events(&EventFilter {
                case_id: Some(case.id.clone()),
                kind: Some("case_opened".into()),
                limit: Some(1),
                ..EventFilter::default()
            })?
            .is_empty();
        // The decision's inputs name the case the log holds, or carry it when the log's
        // last word on the case is another (a case file edited between two runs).
        let keep_case = seen && self.last_recorded_case(&case.id)?.as_ref() != Some(case);
        let mut events = Vec::new();
        if !seen {
            events.push(Event::CaseOpened { case: case.clone() });
        }
        let fields: BTreeSet<String> = decision.steps.iter().flat_map(|s| s.may_read.iter().cloned()).collect();
        events.push(Event::ContextRead {
            orders: facts.orders.values().cloned().collect::<Vec<OrderFacts>>(),
            fields: fields.into_iter().collect(),
            customers: facts.customers.values().cloned().collect(),
            identity: Some(facts.identity.clone()),
        });
        events.push(Event::PlanProposed { plan: plan.clone() });
        let inputs = DecisionInputs::new(case, plan, facts.clone(), &decision.policy_hash, keep_case);
        events.push(Event::Decided { decision: decision.clone(), inputs: Some(Box::new(inputs)) });
        for s in &decision.steps {
            if matches!(s.decision, Outcome::Confirm | Outcome::Supervisor) {
                events.push(Event::ReviewRequested {
                    plan_id: plan.id.clone(),
                    step_id: s.step_id.clone(),
                    step_digest: s.step_digest.clone(),
                    decision: s.decision,
                    approver_roles: s.approver_roles.clone(),
                });
            }
        }
        let actor = self.operator.id.clone();
        let mut queued = Vec::new();
        for (s, step) in decision.steps.iter().zip(&plan.steps) {
            let state = match s.decision {
                Outcome::Auto => StepState::Approved,
                Outcome::Confirm | Outcome::Supervisor => StepState::Waiting,
                Outcome::Recommend | Outcome::Forbid => continue,
            };
            let order_param = running.policy.actions.get(&step.action).and_then(|d| d.order_param.as_ref());
            queued.push(NewStep {
                plan_id: plan.id.clone(),
                step_id: s.step_id.clone(),
                case_id: case.id.clone(),
                action: s.action.clone(),
                step: serde_json::to_value(step).map_err(|e| EngineError::BadInput { message: e.to_string() })?,
                step_digest: s.step_digest.clone(),
                policy_hash: decision.policy_hash.clone(),
                decision: s.decision.as_str().to_string(),
                approver_roles: s.approver_roles.clone(),
                state,
                decided_at: facts.now,
                order_id: order_param
                    .and_then(|p| step.params.get(p))
                    .and_then(|p| p.value.as_str())
                    .map(str::to_string),
                order_param: order_param.cloned(),
            });
        }
        let batch = events
            .iter()
            .map(|e| {
                let who = match e {
                    Event::PlanProposed { plan } if plan.planner == cases::AGENT_EDIT => actor.clone(),
                    Event::PlanProposed { plan } => format!("planner:{}", plan.planner),
                    Event::Decided { .. } => "policy".to_string(),
                    _ => actor.clone(),
                };
                self.new_event(Some(&case.id), &who, e)
            })
            .collect();
        self.store.writer().record(batch, queued)?;
        Ok(decision)
    }

    /// The case as this log last recorded it (`case_opened`, or a newer `case_received`).
    pub(crate) fn last_recorded_case(&self, case_id: &str) -> Result<Option<Case>, EngineError> {
        let mut last: Option<(u64, Case)> = None;
        for kind in ["case_opened", "case_received"] {
            for e in self.case_events(case_id, kind)? {
                let case = match e.event {
                    Event::CaseOpened { case } | Event::CaseReceived { case, .. } => case,
                    _ => continue,
                };
                if last.as_ref().is_none_or(|(seq, _)| e.seq > *seq) {
                    last = Some((e.seq, case));
                }
            }
        }
        Ok(last.map(|(_, c)| c))
    }

    /// The decision recorded for a plan of a case, if it was processed before.
    pub fn recorded_decision(&self, case_id: &str, plan_id: &str) -> Result<Option<PlanDecision>, EngineError> {
        Ok(self.case_events(case_id, "decided")?.into_iter().rev().find_map(|e| match e.event {
            Event::Decided { decision, .. } if decision.plan_id == plan_id => Some(decision),
            _ => None,
        }))
    }

    /// Run every sample case of the workspace through the pipeline: the planner
    /// proposes (here: the plans recorded with the cases), the policy decides,
    /// the evidence is recorded.
    pub fn demo(&self) -> Result<Vec<DemoCase>, EngineError> {
        let running = self.running();
        let samples = running.workspace.sample_cases()?;
        let mut out = Vec::new();
        for (path, file) in samples {
            let plan = file.plan;
            let decision = self.process_outside(&file.case, &plan)?;
            out.push(DemoCase {
                file: path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                case_id: file.case.id.clone(),
                channel: file.case.channel.to_string(),
                customer_says: file.case.customer_text().last().unwrap_or_default().to_string(),
                intent: plan.intent.clone(),
                decision,
            });
        }
        Ok(out)
    }
}
