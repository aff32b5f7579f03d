//! The executor: runs approved steps through the connector, with evidence around
//! every call, and reconciles steps a crash left unfinished.
//!
//! Order of operations for one step (each arrow a durable write before the next):
//!
//! 1. checks: the step is `approved`; decided under the loaded policy; the approval has
//!    not expired; the stored step still has the digest the approval bound to, and so do
//!    the plan, the decision and the approval in the (hash-chained) evidence log, so a
//!    step row edited in the database runs nothing; no active pause covers it; decided
//!    again on the facts read now (the order, the account, earlier money steps, the
//!    customer's verification): stricter than its approval, or refused now, it is
//!    invalidated and does not run (a page a person must see while reading them ends the
//!    step as in 2);
//! 2. for writes: the before-state read (if it stops on a page a person must see — a
//!    login or verification page, a page that does not match — the step ends there,
//!    `approved → failed` with `step_finished` holding what the connector saw; nothing
//!    was started or sent);
//! 3. `approved → running` with `step_started` (the idempotency key, derived from the
//!    change — the case, the action and its values — and the attempt, not from the plan;
//!    the before-state) — durable before anything goes out, and refused in the same
//!    transaction if a pause covering the step was set meanwhile. The same change on the
//!    case does not start while another attempt of it is running or unknown, nor again
//!    once it succeeded;
//! 4. the call (with `Idempotency-Key`); for writes, the after-state read and the outcome
//!    check against what the action promises;
//! 5. `running → succeeded | failed` with `step_finished` (redacted request/response).
//!
//! A write whose answer is lost (timeout, broken connection) leaves the platform's state
//! unknown: the step goes `unknown`, never final after one read. [`Engine::reconcile`]
//! reads the target first; where the change does not show and the platform honours keys,
//! it sends the same request again under the same key (only as the step could run now:
//! not paused, its approval alive, decided again no stricter); elsewhere it waits out a
//! settling window before `not_applied`. A write answered with a server error or a
//! malformed body reached the platform, so its after-state is read before the step is
//! called failed, and such a step is retried only where the key makes a second
//! application impossible. On restart, [`Engine::recover`] reconciles every step left
//! `running` or `unknown`. Besides that settling send under the step's own key, only the
//! connector retries, and only reads and writes the platform makes idempotent.

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use countersign_connectors::{CallRecord, ConnectorError, ExpectationError, Sent, SubmitGate};
use countersign_core::Outcome;
use countersign_core::decide::StepDecision;
use countersign_core::evidence::{Event, NotAppliedBy, StepOutcome, Verdict};
use countersign_core::model::{Case, Plan, Step};
use countersign_core::policy::Kind;
use countersign_store::{PauseGuard, StepFilter, StepRecord, StepState, StepUpdate, StoreError};
use jiff::Timestamp;

use crate::{Engine, EngineError, ErrorCode};

/// The reason of the review the engine ends when a step's approval expired before it ran
/// (the team's facets tell an expiry from a step decided again by it).
pub const APPROVAL_EXPIRED: &str = "the approval expired before the step ran";

/// What happened to one step.
#[derive(Debug, Clone, Serialize)]
pub struct StepRun {
    pub plan_id: String,
    pub step_id: String,
    pub action: String,
    pub state: StepState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why the step did not run, when it was refused before starting (`Paused`,
    /// `ApprovalStale`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<ErrorCode>,
}

impl StepRun {
    /// Where `record`'s step stands now (`state`), and why when it did not succeed.
    fn of(record: &StepRecord, state: StepState, error: Option<String>) -> StepRun {
        StepRun {
            plan_id: record.plan_id.clone(),
            step_id: record.step_id.clone(),
            action: record.action.clone(),
            state,
            error,
            code: None,
        }
    }
}

/// Open while no active pause covers the step; asked by the connector right before its
/// point of no return. A pause that cannot be read closes it: when in doubt, do not submit.
struct PauseGate<'a> {
    engine: &'a Engine,
    case: &'a Case,
    intent: &'a str,
    action: &'a str,
    step_id: &'a str,
    /// What the step was decided (a desk cut off from its team since may not run it).
    decision: &'a str,
}

impl SubmitGate for PauseGate<'_> {
    fn may_submit(&self) -> Result<(), String> {
        match self.engine.paused(self.case, self.intent, self.action, self.step_id) {
            Ok(None) => {}
            Ok(Some(paused)) => return Err(paused.to_string()),
            Err(e) => return Err(format!("the pauses could not be read ({e})")),
        }
        match self.engine.cut_off_refusal(self.action, self.decision) {
            Some(why) => Err(why),
            None => Ok(()),
        }
    }
}

/// The idempotency key a write carries: the change (the case and the step's digest —
/// its action and parameters), not the plan that proposed it, so the same change planned
/// again, decided again or retried carries the same key while an earlier attempt may still
/// land. `attempt` moves on only once the platform's own answer showed the earlier attempt
/// did not apply (its refusal is what the platform keeps under the old key).
pub fn idempotency_key(case_id: &str, step_digest: &str, attempt: u32) -> String {
    let mut h = Sha256::new();
    let attempt = attempt.to_string();
    for part in [case_id, step_digest, attempt.as_str()] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    format!("cs-{}", &hex::encode(h.finalize())[..40])
}

pub(crate) fn params_of(step: &Step) -> Map<String, Value> {
    step.params.iter().map(|(k, p)| (k.clone(), p.value.clone())).collect()
}

/// What the evidence log holds about a queued step: its case and plan, the decision on
/// it, and the latest approval of it (digest and time).
pub(crate) struct Recorded {
    pub(crate) case: Case,
    pub(crate) plan: Plan,
    pub(crate) decided: Option<StepDecision>,
    approval: Option<(String, Timestamp)>,
}

/// The durable boundaries of a step's run (and the browser connector's submit click),
/// where the fault suite kills the process (`COUNTERSIGN_FAULT_AT=NAME`).
pub use countersign_connectors::fault::FAULT_POINTS;
use countersign_connectors::fault::point as fault_point;

/// A refusal that is about the key (reused for another request, or still in progress),
/// not about the change: it says nothing of whether the first attempt applied.
fn refuses_the_key(e: &ConnectorError) -> bool {
    match e {
        ConnectorError::Rejected { code, .. } | ConnectorError::PageRefused { code, .. } => {
            code.contains("idempotency") || code.contains("in_progress")
        }
        _ => false,
    }
}

fn is_write_action(policy: &countersign_core::Policy, action: &str) -> bool {
    policy.actions.get(action).is_some_and(|d| d.kind == Kind::Write)
}

fn stale(message: String) -> EngineError {
    EngineError::ApprovalStale { message }
}

impl Engine {
    /// Run every approved step of a case, in the order they were decided.
    pub fn run_approved(&self, case_id: &str) -> Result<Vec<StepRun>, EngineError> {
        let steps = self.store.steps(&StepFilter {
            case_id: Some(case_id.to_string()),
            states: vec![StepState::Approved],
            ..StepFilter::default()
        })?;
        let mut out = Vec::new();
        for s in steps {
            out.push(match self.execute(&s.plan_id, &s.step_id) {
                Ok(run) => run,
                Err(e) => StepRun {
                    plan_id: s.plan_id.clone(),
                    step_id: s.step_id.clone(),
                    action: s.action.clone(),
                    state: self.state_of(&s.plan_id, &s.step_id).unwrap_or(s.state),
                    error: Some(e.to_string()),
                    code: Some(e.code()),
                },
            });
        }
        Ok(out)
    }

    fn state_of(&self, plan_id: &str, step_id: &str) -> Option<StepState> {
        self.store.step(plan_id, step_id).ok().flatten().map(|s| s.state)
    }

    /// The case, plan, decision and approval recorded for a step (from the evidence log).
    pub(crate) fn recorded(&self, record: &StepRecord) -> Result<Recorded, EngineError> {
        let events = self.log_case(&record.case_id)?;
        let mut case = None;
        let mut plan = None;
        let mut decided = None;
        let mut approval = None;
        let ours = |p: &str, s: &str| p == record.plan_id && s == record.step_id;
        for e in events {
            match e.event {
                Event::CaseOpened { case: c } => case = Some(c),
                Event::PlanProposed { plan: p } if p.id == record.plan_id => plan = Some(p),
                Event::Decided { decision, .. } if decision.plan_id == record.plan_id => {
                    decided = decision.steps.into_iter().find(|s| s.step_id == record.step_id);
                }
                Event::ReviewDecided { plan_id, step_id, step_digest, verdict, .. } if ours(&plan_id, &step_id) => {
                    approval = (verdict == Verdict::Approved).then_some((step_digest, e.at));
                }
                // Retried without its approval: only a countersignature given after counts.
                Event::StepRetried { plan_id, step_id, under_approval: false, .. } if ours(&plan_id, &step_id) => {
                    approval = None;
                }
                _ => {}
            }
        }
        match (case, plan) {
            (Some(case), Some(plan)) => Ok(Recorded { case, plan, decided, approval }),
            _ => Err(EngineError::Conflict {
                message: format!("the evidence for case {} lacks its case or plan {}", record.case_id, record.plan_id),
            }),
        }
    }

    /// The step row is a working copy; the evidence log is the record. The step about to
    /// run must be the one the plan proposed, the policy decided and (unless `auto`) a
    /// person approved — all by digest.
    fn check_binding(&self, record: &StepRecord, digest: &str, recorded: &Recorded) -> Result<(), EngineError> {
        let step_id = &record.step_id;
        let proposed = recorded.plan.steps.iter().find(|s| &s.id == step_id);
        if proposed.is_none_or(|s| countersign_core::digest::step_digest(s) != digest) {
            return Err(stale(format!(
                "step {step_id} differs from the plan recorded in the evidence log: it does not run"
            )));
        }
        let Some(decided) = recorded.decided.as_ref().filter(|d| d.step_digest == digest) else {
            return Err(stale(format!("no recorded decision binds to step {step_id} as it stands: it does not run")));
        };
        match decided.decision {
            Outcome::Auto => Ok(()),
            Outcome::Confirm | Outcome::Supervisor => match &recorded.approval {
                Some((d, _)) if d == digest => Ok(()),
                _ => Err(stale(format!("no recorded approval binds to step {step_id} as it stands: it does not run"))),
            },
            Outcome::Recommend | Outcome::Forbid => {
                Err(stale(format!("step {step_id} was decided {}: it never runs", decided.decision.as_str())))
            }
        }
    }

    /// A stored step that must be in `state`, with the step as it was decided.
    fn step_in(&self, plan_id: &str, step_id: &str, state: StepState) -> Result<(StepRecord, Step), EngineError> {
        let record = self
            .store
            .step(plan_id, step_id)?
            .ok_or_else(|| EngineError::NotFound { message: format!("no step {step_id} in plan {plan_id}") })?;
        if record.state != state {
            return Err(EngineError::Conflict {
                message: format!(
                    "step {step_id} of plan {plan_id} is {}, not {}",
                    record.state.as_str(),
                    state.as_str()
                ),
            });
        }
        let step: Step = serde_json::from_value(record.step.clone())
            .map_err(|e| EngineError::Conflict { message: format!("stored step {step_id} is unreadable: {e}") })?;
        Ok((record, step))
    }

    /// Execute one approved step.
    pub fn execute(&self, plan_id: &str, step_id: &str) -> Result<StepRun, EngineError> {
        let current = self.running();
        let now = self.clock.now();
        let (record, step) = self.step_in(plan_id, step_id, StepState::Approved)?;
        let digest = countersign_core::digest::step_digest(&step);
        if digest != record.step_digest {
            return Err(stale(format!("step {step_id} no longer matches the digest its approval bound to")));
        }
        if record.policy_hash != current.policy.hash {
            self.finish_review(&record, StepState::Invalidated, "decided under another policy version")?;
            return Err(stale(format!(
                "step {step_id} was decided under another policy version: decide the plan again"
            )));
        }
        let recorded = self.recorded(&record)?;
        self.check_binding(&record, &digest, &recorded)?;
        // The approval's time in the evidence log counts too: a row whose expiry was
        // pushed back does not outlive the approval.
        let expired = record.approval_expires_at.is_some_and(|t| t < now)
            || recorded.approval.as_ref().is_some_and(|(_, at)| *at + self.approval_ttl < now);
        if expired && record.decision != Outcome::Auto.as_str() {
            self.finish_review(&record, StepState::Expired, APPROVAL_EXPIRED)?;
            return Err(stale(format!("the approval of step {step_id} expired")));
        }
        let Recorded { case, plan, decided, .. } = recorded;
        if let Some(e) = self.paused(&case, &plan.intent, &record.action, step_id)? {
            return Err(e);
        }
        let redecided = match self.decide_again(&record, &case, &plan, &step, decided.as_ref()) {
            Ok(d) => d,
            // The facts are read on the platform's pages too: one a person must see (a
            // login or verification page) ends the step there, with what it saw.
            Err(EngineError::Connector(e)) if e.evidence().is_some() => {
                return self.stopped_before_start(&record, e, "reading the facts to decide the step again");
            }
            Err(e) => return Err(e),
        };

        // Set on a retry; otherwise the change's newest key (a new plan of the same change
        // carries it too).
        let change = countersign_core::digest::change_digest(&step);
        let key = match record.idempotency_key.clone() {
            Some(key) => key,
            None => idempotency_key(&record.case_id, &change, self.key_attempts(&record.case_id, &change)?),
        };
        if let Some(other) = self.same_change(&record, &change, &[StepState::Running, StepState::Unknown])? {
            return Err(EngineError::Conflict {
                message: format!(
                    "an earlier attempt of the same change (step {} of plan {}) is {} and may still land: it settles first \
                     (reconciled by the executor, or settled by a team lead)",
                    other.step_id,
                    other.plan_id,
                    other.state.as_str()
                ),
            });
        }
        if is_write_action(&current.policy, &record.action)
            && let Some(done) = self.same_change(&record, &change, &[StepState::Succeeded])?
        {
            return Err(EngineError::Conflict {
                message: format!(
                    "the same change already succeeded on this case (step {} of plan {}): it is not made twice",
                    done.step_id, done.plan_id
                ),
            });
        }
        let is_write = current.policy.actions.get(&record.action).is_some_and(|d| d.kind == Kind::Write);
        let params = params_of(&step);
        // The before-state is read first and recorded in the durable `started` event,
        // so a crash during the call can still be reconciled against it.
        let before = if is_write {
            match current.connector.read_state(&record.action, &params) {
                Ok(b) => b,
                Err(e) if e.evidence().is_some() => return self.stopped_before_start(&record, e, "before-state read"),
                Err(e) => return Err(EngineError::Connector(e)),
            }
        } else {
            None
        };
        let request = current.connector.describe_call(&record.action, &params, is_write.then_some(key.as_str())).ok();
        // Again right before the start: a team pause taken in while the facts were read
        // is recorded here, so the start's transaction (which re-reads the stored pauses)
        // sees it too.
        if let Some(e) = self.paused(&case, &plan.intent, &record.action, step_id)? {
            return Err(e);
        }
        let started = self.transition_by(
            &self.operator.id,
            &record,
            StepState::Running,
            StepUpdate { idempotency_key: Some(key.clone()), ..StepUpdate::default() },
            self.clock.now(),
            Event::StepStarted {
                plan_id: plan_id.into(),
                step_id: step_id.into(),
                step_digest: record.step_digest.clone(),
                idempotency_key: key.clone(),
                before: before.clone(),
                request: request.and_then(|r| serde_json::to_value(r).ok()),
                redecided: Some(redecided),
            },
            Some(PauseGuard {
                case: case.clone(),
                workflows: self.workflows(&plan.intent, &record.action),
                action: record.action.clone(),
            }),
        );
        if let Err(e) = started {
            // A pause set between the check above and the start wins: the start was refused
            // in the transaction that would have recorded it.
            if let EngineError::Store(StoreError::StepConflict { .. }) = &e
                && let Some(paused) = self.paused(&case, &plan.intent, &record.action, step_id)?
            {
                return Err(paused);
            }
            return Err(e);
        }
        fault_point("after-step-started");
        let running = StepRecord { state: StepState::Running, ..record.clone() };
        let before = before.unwrap_or(Value::Null);

        // The gate re-checks pauses right before a connector's point of no return (a
        // browser's submit click), so a pause set mid-flow still stops the step.
        let gate = PauseGate {
            engine: self,
            case: &case,
            intent: &plan.intent,
            action: &record.action,
            step_id,
            decision: &record.decision,
        };
        let call = current.connector.call_gated(&record.action, &params, is_write.then_some(key.as_str()), &gate);
        fault_point("after-call");
        let run = self.finish_call(call, &running, &params, before, is_write);
        fault_point("after-step-finished");
        run
    }

    /// Record how the call ended (reading the after-state of a write) and settle an
    /// uncertain write.
    fn finish_call(
        &self,
        call: Result<CallRecord, ConnectorError>,
        running: &StepRecord,
        params: &Map<String, Value>,
        before: Value,
        is_write: bool,
    ) -> Result<StepRun, EngineError> {
        let current = self.running();
        let (plan_id, step_id, action) = (running.plan_id.as_str(), running.step_id.as_str(), running.action.as_str());
        match call {
            Ok(call) if !is_write => {
                // A read changes nothing: what it read is its after-state.
                let after = call.response.clone();
                self.finish_with(running, StepOutcome::Succeeded, before, after, Some(&call), None)
            }
            Ok(call) => match current.connector.read_state(action, params) {
                Ok(after) => {
                    let check = current.connector.check_expectation(action, params, Some(&before), after.as_ref());
                    let (outcome, error) = match check {
                        Ok(()) => (StepOutcome::Succeeded, None),
                        Err(e) => (
                            StepOutcome::Failed,
                            Some(format!("the platform answered but the outcome check failed: {e}")),
                        ),
                    };
                    self.finish_with(running, outcome, before, after.unwrap_or(Value::Null), Some(&call), error)
                }
                Err(e) => {
                    // Accepted, but the result cannot be seen yet: unknown until a read shows it.
                    let error = format!("the platform accepted the write but its state could not be read after: {e}");
                    self.finish_with(running, StepOutcome::Unknown, before, Value::Null, Some(&call), Some(error))?;
                    self.settle_soon(plan_id, step_id)
                }
            },
            // Never sent (a connection refused, a submit never clicked): it cannot have
            // applied, and says so.
            Err(e @ ConnectorError::WriteLost { sent: Sent::No, .. }) => {
                self.finish_error(running, StepOutcome::Failed, before, e)
            }
            Err(e @ (ConnectorError::Timeout | ConnectorError::Transport(_) | ConnectorError::WriteLost { .. }))
                if is_write =>
            {
                // It may or may not have been applied: find out by reading, never by retrying.
                self.finish_error(running, StepOutcome::Unknown, before, e)?;
                self.settle_soon(plan_id, step_id)
            }
            Err(
                e @ (ConnectorError::ServerError { .. }
                | ConnectorError::MalformedResponse { .. }
                | ConnectorError::Unconfirmed { .. }),
            ) if is_write => self.settle_failed_write(running, params, before, &e),
            Err(e @ ConnectorError::NeedsHuman { .. }) => {
                let run = self.finish_error(running, StepOutcome::NeedsHuman, before, e)?;
                Ok(StepRun { code: Some(ErrorCode::NeedsHuman), ..run })
            }
            Err(e @ ConnectorError::StoppedBeforeSubmit { .. }) => {
                let run = self.finish_error(running, StepOutcome::Failed, before, e)?;
                Ok(StepRun { code: Some(ErrorCode::Paused), ..run })
            }
            Err(e) => self.finish_error(running, StepOutcome::Failed, before, e),
        }
    }

    /// Decide the step again on facts read now, just before it runs: the orders and the
    /// account it names, earlier money steps (the rest of its plan by their state), the
    /// pauses, the customer's verification. Stricter than the decision it was approved
    /// under, or refused now (a precondition no longer holds: an earlier step changed the
    /// order), it does not run: it is invalidated with the reasons, to be planned again.
    fn decide_again(
        &self,
        record: &StepRecord,
        case: &Case,
        plan: &Plan,
        step: &Step,
        decided: Option<&StepDecision>,
    ) -> Result<StepDecision, EngineError> {
        let current = self.running();
        let single = Plan { steps: vec![step.clone()], reply: None, ..plan.clone() };
        let facts = self.gather_facts_for(case, &single, plan, Some(&record.step_id))?;
        let now =
            countersign_core::decide::decide_scanned(&current.policy, case, &single, &facts, &self.case_scan(case))?;
        let Some(again) = now.steps.into_iter().next() else {
            return Err(stale(format!("step {} could not be decided again: it does not run", record.step_id)));
        };
        let was = decided.map_or(Outcome::Forbid, |d| d.decision);
        if again.decision > was || !again.decision.executable() {
            let why: Vec<&str> =
                again.reasons.iter().filter(|r| r.decision == again.decision).map(|r| r.text.as_str()).collect();
            let reason = format!(
                "decided again before it ran: {} now (it was {}): {}",
                again.decision.as_str(),
                was.as_str(),
                why.join("; ")
            );
            self.finish_review(record, StepState::Invalidated, &reason)?;
            return Err(stale(format!("step {} did not run: {reason}", record.step_id)));
        }
        Ok(again)
    }

    /// The before-state read stopped on a page a person must see (a login or verification
    /// page, a page that does not match): nothing was started or sent. The step ends there
    /// like one the call stopped (`approved → failed`, `step_finished` with the outcome and
    /// what the connector saw: URL, screenshot by blob hash), so the timeline says why.
    fn stopped_before_start(
        &self,
        record: &StepRecord,
        e: ConnectorError,
        moment: &str,
    ) -> Result<StepRun, EngineError> {
        let needs_human = matches!(e, ConnectorError::NeedsHuman { .. });
        let outcome = if needs_human { StepOutcome::NeedsHuman } else { StepOutcome::Failed };
        let Some(evidence) = e.evidence().cloned() else { return Err(EngineError::Connector(e)) };
        let response = serde_json::json!({ "evidence": evidence });
        let error = Some(format!("{moment}: {e}"));
        let stopped_at = Some(moment.to_owned());
        let ended = Ended {
            outcome,
            before: Value::Null,
            after: Value::Null,
            request: Value::Null,
            response,
            error,
            stopped_at,
            not_applied: Some(NotAppliedBy::NothingSent),
        };
        let run = self.finish_recorded(record, ended)?;
        Ok(StepRun { code: needs_human.then_some(ErrorCode::NeedsHuman), ..run })
    }

    /// The workflows a step belongs to: its plan's intent and its action's workflow.
    fn workflows(&self, intent: &str, action: &str) -> Vec<String> {
        let current = self.running();
        let workflow = current.policy.actions.get(action).and_then(|d| d.workflow.clone());
        std::iter::once(intent.to_string()).chain(workflow).collect()
    }

    /// `Paused` if an active pause covers the step.
    pub(crate) fn paused(
        &self,
        case: &Case,
        intent: &str,
        action: &str,
        step_id: &str,
    ) -> Result<Option<EngineError>, EngineError> {
        let workflows = self.workflows(intent, action);
        let workflows: Vec<&str> = workflows.iter().map(String::as_str).collect();
        Ok(self.gate_pauses()?.iter().find(|p| p.covers(case, &workflows, action)).map(|p| EngineError::Paused {
            message: format!(
                "{} {:?} is paused by {} ({}): step {step_id} did not run",
                p.scope.as_str(),
                p.value,
                p.set_by,
                p.reason
            ),
        }))
    }

    /// A write the platform answered with a server error or a body that is not what it
    /// promised: the request arrived, so whether it applied is read, not assumed.
    fn settle_failed_write(
        &self,
        running: &StepRecord,
        params: &Map<String, Value>,
        before: Value,
        error: &ConnectorError,
    ) -> Result<StepRun, EngineError> {
        let current = self.running();
        // What the connector saw (a browser's pages before and after the submit) stays.
        let response = error.evidence().map_or(Value::Null, |e| serde_json::json!({ "evidence": e }));
        let (outcome, after, note) = match current.connector.read_state(&running.action, params) {
            Ok(after) => {
                match current.connector.check_expectation(&running.action, params, Some(&before), after.as_ref()) {
                    Ok(()) => (
                        StepOutcome::Succeeded,
                        after,
                        format!("{error}; but the after-state shows the change was applied"),
                    ),
                    Err(_) => {
                        (StepOutcome::Failed, after, format!("{error} (the after-state shows it was not applied)"))
                    }
                }
            }
            Err(read) => (StepOutcome::Unknown, None, format!("{error}; the state could not be read after ({read})")),
        };
        let after = after.unwrap_or(Value::Null);
        let ended = Ended {
            outcome,
            before,
            after,
            request: Value::Null,
            response,
            error: Some(note),
            stopped_at: None,
            not_applied: None,
        };
        let run = self.finish_recorded(running, ended)?;
        if outcome == StepOutcome::Unknown { self.settle_soon(&running.plan_id, &running.step_id) } else { Ok(run) }
    }

    /// The step ends with the connector's `error` and no call record (nothing read after).
    fn finish_error(
        &self,
        record: &StepRecord,
        outcome: StepOutcome,
        before: Value,
        error: ConnectorError,
    ) -> Result<StepRun, EngineError> {
        // The platform's own refusal, or a stop before anything was submitted: known not
        // to have applied.
        let not_applied = match &error {
            ConnectorError::Rejected { .. } | ConnectorError::PageRefused { .. } => Some(NotAppliedBy::PlatformRefused),
            ConnectorError::StoppedBeforeSubmit { .. } | ConnectorError::WriteLost { sent: Sent::No, .. } => {
                Some(NotAppliedBy::NothingSent)
            }
            // A page that stopped the step with the submit never under way.
            e if e
                .evidence()
                .is_some_and(|ev| ev["submitted"] == Value::Bool(false) && ev["submitting"] != Value::Bool(true)) =>
            {
                Some(NotAppliedBy::NothingSent)
            }
            _ => None,
        };
        // What the connector saw before it stopped (pages, screenshots) is the response,
        // with whether a write whose answer never came had gone out.
        let mut response = error.evidence().map_or(Value::Null, |evidence| serde_json::json!({ "evidence": evidence }));
        if let ConnectorError::WriteLost { sent, .. } = &error {
            response["request_sent"] = serde_json::to_value(sent).unwrap_or(Value::Null);
        }
        let ended = Ended {
            outcome,
            before,
            after: Value::Null,
            request: Value::Null,
            response,
            error: Some(error.to_string()),
            stopped_at: None,
            not_applied,
        };
        self.finish_recorded(record, ended)
    }

    fn finish_with(
        &self,
        record: &StepRecord,
        outcome: StepOutcome,
        before: Value,
        after: Value,
        call: Option<&CallRecord>,
        error: Option<String>,
    ) -> Result<StepRun, EngineError> {
        let (request, response) = match call {
            Some(c) => {
                let mut response = serde_json::json!({"status": c.status, "body": c.response, "attempts": c.attempts, "duration_ms": c.duration_ms});
                if let Some(evidence) = &c.evidence {
                    response["evidence"] = evidence.clone();
                }
                (serde_json::to_value(&c.request).unwrap_or(Value::Null), response)
            }
            None => (Value::Null, Value::Null),
        };
        self.finish_recorded(
            record,
            Ended { outcome, before, after, request, response, error, stopped_at: None, not_applied: None },
        )
    }

    fn finish_recorded(&self, record: &StepRecord, ended: Ended) -> Result<StepRun, EngineError> {
        let to = match ended.outcome {
            StepOutcome::Succeeded => StepState::Succeeded,
            StepOutcome::Unknown => StepState::Unknown,
            StepOutcome::Failed | StepOutcome::NeedsHuman => StepState::Failed,
        };
        self.finish_as(record, to, ended)
    }

    /// Moves the step to `to`, recording how it ended (`step_finished`).
    fn finish_as(&self, record: &StepRecord, to: StepState, ended: Ended) -> Result<StepRun, EngineError> {
        let Ended { outcome, before, after, request, response, error, stopped_at, not_applied } = ended;
        self.transition(
            record,
            to,
            StepUpdate::default(),
            self.clock.now(),
            Event::StepFinished {
                plan_id: record.plan_id.clone(),
                step_id: record.step_id.clone(),
                outcome,
                before,
                after,
                request,
                response,
                error: error.clone(),
                stopped_at,
                not_applied,
            },
        )?;
        Ok(StepRun::of(record, to, error))
    }

    /// Ends a review the engine's way (`by_engine`: no person's answer).
    fn finish_review(&self, record: &StepRecord, to: StepState, reason: &str) -> Result<(), EngineError> {
        let current = self.running();
        self.transition(
            record,
            to,
            StepUpdate::default(),
            self.clock.now(),
            Event::ReviewDecided {
                plan_id: record.plan_id.clone(),
                step_id: record.step_id.clone(),
                step_digest: record.step_digest.clone(),
                policy_hash: current.policy.hash.clone(),
                verdict: Verdict::Rejected,
                by: self.operator.clone(),
                reason: reason.to_string(),
                grant: None,
                by_engine: true,
            },
        )
    }

    /// After a restart: every step left `running` is marked `unknown` and reconciled by
    /// a read. Returns what became of each.
    ///
    /// Only a process that has the workspace to itself may do this: the desktop app and
    /// the command line share a workspace's data folder, and a step another live process is
    /// running is not a crash's. So while another engine holds the folder open, recovery
    /// is left to the last one (or the next start) and nothing is touched.
    pub fn recover(&self) -> Result<Vec<StepRun>, EngineError> {
        let Some(_alone) = self.presence.alone() else {
            tracing::info!("another process has this workspace open: steps it may be running are left to it");
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for s in self.store.steps(&StepFilter { states: vec![StepState::Running], ..StepFilter::default() })? {
            self.finish_with(
                &s,
                StepOutcome::Unknown,
                Value::Null,
                Value::Null,
                None,
                Some("the step started but never finished (the app stopped)".into()),
            )?;
            out.push(self.reconcile(&s.plan_id, &s.step_id)?);
        }
        for s in self.store.steps(&StepFilter { states: vec![StepState::Unknown], ..StepFilter::default() })? {
            if !out.iter().any(|r: &StepRun| r.plan_id == s.plan_id && r.step_id == s.step_id) {
                out.push(self.reconcile(&s.plan_id, &s.step_id)?);
            }
        }
        // Replies recorded as sent whose post may not have landed: settled the same way
        // (same key, or the thread read back), never posted blindly a second time.
        if let Err(e) = self.deliver_pending_replies() {
            tracing::warn!(error = %e, "replies waiting for delivery could not be settled now; they stay pending");
        }
        Ok(out)
    }

    /// The before-state recorded in the step's latest `step_started` event.
    fn recorded_before(&self, record: &StepRecord) -> Result<Option<Value>, EngineError> {
        Ok(self
            .case_events(&record.case_id, "step_started")?
            .into_iter()
            .rev()
            .find_map(|e| match e.event {
                Event::StepStarted { plan_id, step_id, before, .. }
                    if plan_id == record.plan_id && step_id == record.step_id =>
                {
                    Some(before.filter(|v| !v.is_null()))
                }
                _ => None,
            })
            .flatten())
    }

    /// Settle an `unknown` write: where the platform honours idempotency keys, by sending
    /// the same request again under the same key (it answers the first result, or applies
    /// it once); elsewhere by reading the target: the change shown → `succeeded`; not
    /// shown → still `unknown` (the request may yet land) until the target has stayed as it
    /// was before the step for the settling window, then `not_applied`. A read that fails,
    /// or an answer that does not come, leaves it `unknown` for a later try (the next start
    /// tries again), or for a team lead to settle by hand.
    pub fn reconcile(&self, plan_id: &str, step_id: &str) -> Result<StepRun, EngineError> {
        let current = self.running();
        let (record, step) = self.step_in(plan_id, step_id, StepState::Unknown)?;
        let params = params_of(&step);
        let is_write = current.policy.actions.get(&record.action).is_some_and(|d| d.kind == Kind::Write);
        let before = self.recorded_before(&record)?;
        // The step stays `unknown` (for a later try, or for a person), saying why.
        let still_unknown = |why: String| StepRun {
            plan_id: plan_id.into(),
            step_id: step_id.into(),
            action: record.action.clone(),
            state: StepState::Unknown,
            error: Some(why),
            code: None,
        };
        if !is_write {
            let settled = Settled {
                to: StepState::NotApplied,
                after: None,
                call: None,
                error: Some("a read that did not finish is not repeated automatically".into()),
                how: "read",
                not_applied: Some(NotAppliedBy::NothingSent),
            };
            return self.record_settled(&record, settled);
        }
        // Read first: a change that shows is settled without sending anything.
        let after = match current.connector.read_state(&record.action, &params) {
            Ok(after) => after,
            Err(e) => return Ok(still_unknown(format!("could not reconcile yet: {e}"))),
        };
        if current.connector.check_expectation(&record.action, &params, before.as_ref(), after.as_ref()).is_ok() {
            let settled =
                Settled { to: StepState::Succeeded, after, call: None, error: None, how: "read", not_applied: None };
            return self.record_settled(&record, settled);
        }
        let key = record.idempotency_key.clone().filter(|_| current.connector.honours_idempotency(&record.action));
        // Where it may not be sent again now, it is read back like on a platform without keys.
        let resend = match key {
            Some(key) => match self.may_send_again(&record, &step)? {
                Ok(()) => Some(key),
                Err(why) => {
                    tracing::info!(plan = plan_id, step = step_id, why, "an unknown write is not sent again");
                    None
                }
            },
            None => None,
        };
        if let Some(key) = resend {
            // Sent again under its key, it may apply now: only as the step may run now
            // (not paused, its approval alive, no stricter decision), through the gate.
            let rec = self.recorded(&record)?;
            let gate = PauseGate {
                engine: self,
                case: &rec.case,
                intent: &rec.plan.intent,
                action: &record.action,
                step_id,
                decision: &record.decision,
            };
            let sent = current.connector.call_gated(&record.action, &params, Some(&key), &gate);
            fault_point("after-settling-send");
            let call = match sent {
                Ok(call) => call,
                // The platform's own refusal of the request under its key (not a complaint
                // about the key itself, which says nothing of the first attempt).
                Err(e @ (ConnectorError::Rejected { .. } | ConnectorError::PageRefused { .. }))
                    if !refuses_the_key(&e) =>
                {
                    let settled = Settled {
                        to: StepState::NotApplied,
                        after: None,
                        call: None,
                        error: Some(format!("sent again under the same key, the platform refused it: {e}")),
                        how: "sent again under the same key",
                        not_applied: Some(NotAppliedBy::PlatformRefused),
                    };
                    return self.record_settled(&record, settled);
                }
                Err(e) => return Ok(still_unknown(format!("sent again under the same key, no answer yet: {e}"))),
            };
            let after = match current.connector.read_state(&record.action, &params) {
                Ok(after) => after,
                Err(e) => {
                    return Ok(still_unknown(format!("the platform answered, but its state could not be read: {e}")));
                }
            };
            let check = current.connector.check_expectation(&record.action, &params, before.as_ref(), after.as_ref());
            let (to, error) = match check {
                Ok(()) => (StepState::Succeeded, None),
                Err(e) => (StepState::Failed, Some(format!("the platform answered but the outcome check failed: {e}"))),
            };
            let settled =
                Settled { to, after, call: Some(call), error, how: "sent again under the same key", not_applied: None };
            return self.record_settled(&record, settled);
        }
        match current.connector.check_expectation(&record.action, &params, before.as_ref(), after.as_ref()) {
            Ok(()) => {
                let settled = Settled {
                    to: StepState::Succeeded,
                    after,
                    call: None,
                    error: None,
                    how: "read",
                    not_applied: None,
                };
                self.record_settled(&record, settled)
            }
            Err(e @ ExpectationError::Unmet { .. }) => {
                let started = self.started_at(&record)?;
                let waited = started.map(|t| self.clock.now().duration_since(t));
                let window = self.settle_window;
                let unchanged = after == before;
                if unchanged && waited.is_some_and(|w| w >= window) {
                    let settled = Settled {
                        to: StepState::NotApplied,
                        after,
                        call: None,
                        error: Some(format!("not applied: {e}; the target stayed as it was for {window:#}")),
                        how: "read",
                        not_applied: Some(NotAppliedBy::Unchanged),
                    };
                    self.record_settled(&record, settled)
                } else if unchanged {
                    Ok(still_unknown(format!(
                        "not applied so far ({e}); the platform takes no idempotency key and the request may yet land: \
                         it settles as not applied once the target has stayed as it was for {window:#}"
                    )))
                } else {
                    Ok(still_unknown(format!(
                        "the target changed, but not as the step would change it ({e}): a team lead settles it by hand"
                    )))
                }
            }
            // Without what the check needs, the step stays unknown for a person.
            Err(e) => Ok(still_unknown(format!("cannot reconcile automatically: {e}"))),
        }
    }

    /// May an unknown write be sent again under its key now? As it could run now: decided
    /// under the policy loaded, its approval (unless `auto`) alive, decided again on fresh
    /// facts no stricter. `Err` says why not.
    fn may_send_again(&self, record: &StepRecord, step: &Step) -> Result<Result<(), String>, EngineError> {
        let current = self.running();
        if record.policy_hash != current.policy.hash {
            return Ok(Err("it was decided under another policy version".into()));
        }
        let recorded = self.recorded(record)?;
        let was = recorded.decided.as_ref().map_or(Outcome::Forbid, |d| d.decision);
        let now = self.clock.now();
        let alive =
            |(digest, at): &(String, Timestamp)| *digest == record.step_digest && *at + self.approval_ttl >= now;
        if was != Outcome::Auto && !recorded.approval.as_ref().is_some_and(alive) {
            return Ok(Err("its approval expired".into()));
        }
        let single = Plan { steps: vec![step.clone()], reply: None, ..recorded.plan.clone() };
        let facts = self.gather_facts_for(&recorded.case, &single, &recorded.plan, Some(&record.step_id))?;
        let scan = self.case_scan(&recorded.case);
        let decision =
            countersign_core::decide::decide_scanned(&current.policy, &recorded.case, &single, &facts, &scan)?;
        match decision.steps.first() {
            Some(again) if again.decision <= was && again.decision.executable() => Ok(Ok(())),
            Some(again) => Ok(Err(format!("it is decided {} now (it was {})", again.decision.as_str(), was.as_str()))),
            None => Ok(Err("it could not be decided again".into())),
        }
    }

    /// [`Engine::reconcile`] at once, then with back-off for a few seconds while it stays
    /// `unknown` (a platform slow to apply, or to answer).
    fn settle_soon(&self, plan_id: &str, step_id: &str) -> Result<StepRun, EngineError> {
        let mut run = self.reconcile(plan_id, step_id)?;
        for wait_ms in [250, 500, 1000] {
            if run.state != StepState::Unknown {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(wait_ms));
            run = self.reconcile(plan_id, step_id)?;
        }
        Ok(run)
    }

    fn record_settled(&self, record: &StepRecord, settled: Settled) -> Result<StepRun, EngineError> {
        let Settled { to, after, call, error, how, not_applied } = settled;
        let outcome = if to == StepState::Succeeded { StepOutcome::Succeeded } else { StepOutcome::Failed };
        let mut response = serde_json::json!({ "reconciled": true, "how": how });
        let request = match &call {
            Some(c) => {
                response["status"] = c.status.into();
                response["body"] = c.response.clone();
                serde_json::to_value(&c.request).unwrap_or(Value::Null)
            }
            None => Value::Null,
        };
        let after = after.unwrap_or(Value::Null);
        self.finish_as(
            record,
            to,
            Ended { outcome, before: Value::Null, after, request, response, error, stopped_at: None, not_applied },
        )
    }

    /// When the step's latest attempt started (its `step_started` event).
    fn started_at(&self, record: &StepRecord) -> Result<Option<Timestamp>, EngineError> {
        Ok(self.case_events(&record.case_id, "step_started")?.into_iter().rev().find_map(|e| match &e.event {
            Event::StepStarted { plan_id, step_id, .. } if *plan_id == record.plan_id && *step_id == record.step_id => {
                Some(e.at)
            }
            _ => None,
        }))
    }

    /// Another step of the same case asking the platform for the same change (the same
    /// action and values, whatever their provenance) in one of `states`.
    fn same_change(
        &self,
        record: &StepRecord,
        change: &str,
        states: &[StepState],
    ) -> Result<Option<StepRecord>, EngineError> {
        let filter =
            StepFilter { case_id: Some(record.case_id.clone()), states: states.to_vec(), ..StepFilter::default() };
        Ok(self.store.steps(&filter)?.into_iter().find(|s| {
            !(s.plan_id == record.plan_id && s.step_id == record.step_id)
                && serde_json::from_value::<Step>(s.step.clone())
                    .is_ok_and(|other| countersign_core::digest::change_digest(&other) == change)
        }))
    }

    /// How many times a change on this case has taken a new key (the attempt its newest
    /// key was made for).
    fn key_attempts(&self, case_id: &str, change: &str) -> Result<u32, EngineError> {
        let keys: std::collections::BTreeSet<String> = self
            .case_events(case_id, "step_retried")?
            .into_iter()
            .filter_map(|e| match e.event {
                Event::StepRetried { idempotency_key, fresh_key: true, .. } => Some(idempotency_key),
                _ => None,
            })
            .collect();
        let mut attempt = 0;
        while keys.contains(&idempotency_key(case_id, change, attempt + 1)) {
            attempt += 1;
        }
        Ok(attempt)
    }

    /// A team lead settles an `unknown` step by hand, from what they saw on the platform,
    /// with a reason (recorded). Only a roster member in a role that countersigns
    /// supervisor steps, proving it with their passphrase: a role claimed at the seat is
    /// not proof.
    pub fn settle_step(
        &self,
        plan_id: &str,
        step_id: &str,
        applied: bool,
        reason: &str,
        proof: &crate::Proof,
    ) -> Result<StepRun, EngineError> {
        let current = self.running();
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(EngineError::BadInput {
                message: "say what you saw on the platform: a reason is required".into(),
            });
        }
        let (record, _) = self.step_in(plan_id, step_id, StepState::Unknown)?;
        let who = self.prove(&crate::review::Proving::step(&record), proof)?;
        let leads = current.policy.approvers(Outcome::Supervisor);
        if !leads.contains(&who.role) {
            return Err(EngineError::NotPermitted {
                message: format!("settling a step by hand is for {} ({} is {})", leads.join(" or "), who.id, who.role),
            });
        }
        let to = if applied { StepState::Succeeded } else { StepState::NotApplied };
        let event =
            Event::StepSettled { plan_id: plan_id.into(), step_id: step_id.into(), applied, reason: reason.into() };
        self.transition_by(&who.id, &record, to, StepUpdate::default(), self.clock.now(), event, None)?;
        Ok(StepRun::of(&record, to, (!applied).then(|| format!("settled as not applied by {}: {reason}", who.id))))
    }

    /// How the step's latest attempt is known not to have applied, if it is.
    fn last_not_applied(&self, record: &StepRecord) -> Result<Option<NotAppliedBy>, EngineError> {
        let ours = |p: &str, s: &str| p == record.plan_id && s == record.step_id;
        let mut last = None;
        for e in self.log_case(&record.case_id)? {
            match e.event {
                Event::StepFinished { plan_id, step_id, not_applied, .. } if ours(&plan_id, &step_id) => {
                    last = not_applied;
                }
                Event::StepSettled { plan_id, step_id, applied, .. } if ours(&plan_id, &step_id) => {
                    last = (!applied).then_some(NotAppliedBy::ByHand);
                }
                _ => {}
            }
        }
        Ok(last)
    }

    /// Try a failed or not-applied step again (a step that asked for a person ended
    /// `failed`). It is decided again now: stricter than before, it is not retried here
    /// (plan the case again); otherwise it runs under its approval when that still holds
    /// (an `auto` step, or an approval of the same step not yet expired), else it waits
    /// for a new countersignature. The idempotency key stays the change's unless the
    /// platform's own answer showed the earlier attempt did not apply. A step left
    /// `unknown` is never retried: it settles first.
    pub fn retry_step(&self, plan_id: &str, step_id: &str) -> Result<StepRun, EngineError> {
        let active = self.running();
        let record = self
            .store
            .step(plan_id, step_id)?
            .ok_or_else(|| EngineError::NotFound { message: format!("no step {step_id} in plan {plan_id}") })?;
        if !matches!(record.state, StepState::Failed | StepState::NotApplied) {
            let why = if record.state == StepState::Unknown {
                "its outcome is unknown and it may still land: it settles first (or a team lead settles it)"
            } else {
                "only a failed or not-applied step is tried again"
            };
            return Err(EngineError::Conflict {
                message: format!("step {step_id} is {}: {why}", record.state.as_str()),
            });
        }
        let step: Step = serde_json::from_value(record.step.clone())
            .map_err(|e| EngineError::Conflict { message: format!("stored step {step_id} is unreadable: {e}") })?;
        if record.policy_hash != active.policy.hash {
            return Err(stale(format!("step {step_id} was decided under another policy version: plan the case again")));
        }
        // Only the plan in force: a plan the case was planned again past is not revived.
        let in_force = self.case_plans(&record.case_id)?.pop().map(|(p, _)| p.id);
        if in_force.as_deref() != Some(plan_id) {
            return Err(stale(format!(
                "the case was planned again since (plan {} is in force): step {step_id} of plan {plan_id} is not tried again",
                in_force.unwrap_or_default()
            )));
        }
        let recorded = self.recorded(&record)?;
        let single = Plan { steps: vec![step.clone()], reply: None, ..recorded.plan.clone() };
        let facts = self.gather_facts_for(&recorded.case, &single, &recorded.plan, Some(step_id))?;
        let decision = countersign_core::decide::decide_scanned(
            &active.policy,
            &recorded.case,
            &single,
            &facts,
            &self.case_scan(&recorded.case),
        )?;
        let Some(again) = decision.steps.into_iter().next() else {
            return Err(stale(format!("step {step_id} could not be decided again")));
        };
        let was = recorded.decided.as_ref().map_or(Outcome::Forbid, |d| d.decision);
        if again.decision > was || !again.decision.executable() {
            let why: Vec<&str> =
                again.reasons.iter().filter(|r| r.decision == again.decision).map(|r| r.text.as_str()).collect();
            return Err(stale(format!(
                "step {step_id} is decided {} now (it was {}): {}; plan the case again",
                again.decision.as_str(),
                was.as_str(),
                why.join("; ")
            )));
        }
        let now = self.clock.now();
        let approval_holds = was == Outcome::Auto
            || recorded
                .approval
                .as_ref()
                .is_some_and(|(digest, at)| *digest == record.step_digest && *at + self.approval_ttl >= now);
        let change = countersign_core::digest::change_digest(&step);
        let attempts = self.key_attempts(&record.case_id, &change)?;
        let current =
            record.idempotency_key.clone().unwrap_or_else(|| idempotency_key(&record.case_id, &change, attempts));
        let not_applied = self.last_not_applied(&record)?;
        // A write that failed after reaching the platform (a 5xx, an answer the check could
        // not confirm) may have applied: tried again only where the same key makes a second
        // application impossible.
        if not_applied.is_none()
            && is_write_action(&active.policy, &record.action)
            && !active.connector.honours_idempotency(&record.action)
        {
            return Err(EngineError::Conflict {
                message: format!(
                    "step {step_id} reached the platform and may have applied, and this platform takes no idempotency \
                     key: check the platform, then plan the case again if it did not"
                ),
            });
        }
        let fresh_key = not_applied == Some(NotAppliedBy::PlatformRefused);
        let (key, key_reason) = if fresh_key {
            (
                idempotency_key(&record.case_id, &change, attempts + 1),
                "a new key: the platform's own answer showed the earlier attempt did not apply",
            )
        } else {
            (current, "the same key: the earlier attempt is not known from the platform's own answer to have failed")
        };
        let to = if approval_holds { StepState::Approved } else { StepState::Waiting };
        let event = Event::StepRetried {
            plan_id: plan_id.into(),
            step_id: step_id.into(),
            decision: again,
            under_approval: approval_holds,
            idempotency_key: key.clone(),
            fresh_key,
            key_reason: key_reason.into(),
        };
        let update = StepUpdate { idempotency_key: Some(key), ..StepUpdate::default() };
        self.transition(&record, to, update, now, event)?;
        if to == StepState::Approved {
            return self.execute(plan_id, step_id);
        }
        Ok(StepRun {
            plan_id: plan_id.into(),
            step_id: step_id.into(),
            action: record.action,
            state: to,
            error: None,
            code: None,
        })
    }
}

/// How an unknown step settled.
struct Settled {
    to: StepState,
    after: Option<Value>,
    call: Option<CallRecord>,
    error: Option<String>,
    how: &'static str,
    not_applied: Option<NotAppliedBy>,
}

/// How a step ended, as its `step_finished` event records it.
struct Ended {
    outcome: StepOutcome,
    before: Value,
    after: Value,
    request: Value,
    response: Value,
    error: Option<String>,
    /// Where it stopped before anything was sent, when it did.
    stopped_at: Option<String>,
    /// How it is known not to have applied, when that is known.
    not_applied: Option<NotAppliedBy>,
}
