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
//!    plan, step and digest; the before-state) — durable before anything goes out, and
//!    refused in the same transaction if a pause covering the step was set meanwhile;
//! 4. the call (with `Idempotency-Key`); for writes, the after-state read and the outcome
//!    check against what the action promises;
//! 5. `running → succeeded | failed` with `step_finished` (redacted request/response).
//!
//! A write whose answer is lost (timeout, broken connection) leaves the platform's state
//! unknown: the step goes `unknown` and is reconciled by a read at once. A write answered
//! with a server error or a malformed body reached the platform, so its after-state is
//! read before the step is called failed. On restart, [`Engine::recover`] reconciles
//! every step left `running` or `unknown`. The executor never sends a write twice; only
//! the connector retries, and only reads and writes the platform makes idempotent.

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use countersign_connectors::{CallRecord, ConnectorError, ExpectationError, SubmitGate};
use countersign_core::Outcome;
use countersign_core::decide::StepDecision;
use countersign_core::evidence::{Event, StepOutcome, Verdict};
use countersign_core::model::{Case, Plan, Step};
use countersign_core::policy::Kind;
use countersign_store::{PauseGuard, StepFilter, StepRecord, StepState, StepUpdate, StoreError};
use jiff::Timestamp;

use crate::{Engine, EngineError, ErrorCode};

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

/// Open while no active pause covers the step; asked by the connector right before its
/// point of no return. A pause that cannot be read closes it: when in doubt, do not submit.
struct PauseGate<'a> {
    engine: &'a Engine,
    case: &'a Case,
    intent: &'a str,
    action: &'a str,
    step_id: &'a str,
}

impl SubmitGate for PauseGate<'_> {
    fn may_submit(&self) -> Result<(), String> {
        match self.engine.paused(self.case, self.intent, self.action, self.step_id) {
            Ok(None) => Ok(()),
            Ok(Some(paused)) => Err(paused.to_string()),
            Err(e) => Err(format!("the pauses could not be read ({e})")),
        }
    }
}

/// The idempotency key a write carries: the same step of the same plan always gets
/// the same key, so a repeat is recognised by the platform; another plan's identical
/// step gets another key.
pub fn idempotency_key(plan_id: &str, step_id: &str, step_digest: &str) -> String {
    let mut h = Sha256::new();
    for part in [plan_id, step_id, step_digest] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    format!("cs-{}", &hex::encode(h.finalize())[..40])
}

fn params_of(step: &Step) -> Map<String, Value> {
    step.params.iter().map(|(k, p)| (k.clone(), p.value.clone())).collect()
}

/// What the evidence log holds about a queued step: its case and plan, the decision on
/// it, and the latest approval of it (digest and time).
struct Recorded {
    case: Case,
    plan: Plan,
    decided: Option<StepDecision>,
    approval: Option<(String, Timestamp)>,
}

fn stale(message: String) -> EngineError {
    EngineError::ApprovalStale { message }
}

impl Engine {
    /// Run every approved step of a case, in the order they were decided.
    pub fn run_approved(&self, case_id: &str) -> Result<Vec<StepRun>, EngineError> {
        let steps =
            self.store.steps(&StepFilter { case_id: Some(case_id.to_string()), states: vec![StepState::Approved] })?;
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
    fn recorded(&self, record: &StepRecord) -> Result<Recorded, EngineError> {
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
                Event::Decided { decision } if decision.plan_id == record.plan_id => {
                    decided = decision.steps.into_iter().find(|s| s.step_id == record.step_id);
                }
                Event::ReviewDecided { plan_id, step_id, step_digest, verdict, .. } if ours(&plan_id, &step_id) => {
                    approval = (verdict == Verdict::Approved).then_some((step_digest, e.at));
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
        let now = self.clock.now();
        let (record, step) = self.step_in(plan_id, step_id, StepState::Approved)?;
        let digest = countersign_core::digest::step_digest(&step);
        if digest != record.step_digest {
            return Err(stale(format!("step {step_id} no longer matches the digest its approval bound to")));
        }
        if record.policy_hash != self.policy.hash {
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
            self.finish_review(&record, StepState::Expired, "the approval expired before the step ran")?;
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

        let key = idempotency_key(plan_id, step_id, &record.step_digest);
        let is_write = self.policy.actions.get(&record.action).is_some_and(|d| d.kind == Kind::Write);
        let params = params_of(&step);
        // The before-state is read first and recorded in the durable `started` event,
        // so a crash during the call can still be reconciled against it.
        let before = if is_write {
            match self.connector.read_state(&record.action, &params) {
                Ok(b) => b,
                Err(e) if e.evidence().is_some() => return self.stopped_before_start(&record, e, "before-state read"),
                Err(e) => return Err(EngineError::Connector(e)),
            }
        } else {
            None
        };
        let request = self.connector.describe_call(&record.action, &params, is_write.then_some(key.as_str())).ok();
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
                workflows: self.workflows(&plan.intent, &record.action).into_iter().map(str::to_string).collect(),
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
        let running = StepRecord { state: StepState::Running, ..record.clone() };
        let before = before.unwrap_or(Value::Null);

        // The gate re-checks pauses right before a connector's point of no return (a
        // browser's submit click), so a pause set mid-flow still stops the step.
        let gate = PauseGate { engine: self, case: &case, intent: &plan.intent, action: &record.action, step_id };
        let call = self.connector.call_gated(&record.action, &params, is_write.then_some(key.as_str()), &gate);
        match call {
            Ok(call) if !is_write => {
                // A read changes nothing: what it read is its after-state.
                let after = call.response.clone();
                self.finish_with(&running, StepOutcome::Succeeded, before, after, Some(&call), None)
            }
            Ok(call) => match self.connector.read_state(&record.action, &params) {
                Ok(after) => {
                    let check =
                        self.connector.check_expectation(&record.action, &params, Some(&before), after.as_ref());
                    let (outcome, error) = match check {
                        Ok(()) => (StepOutcome::Succeeded, None),
                        Err(e) => (
                            StepOutcome::Failed,
                            Some(format!("the platform answered but the outcome check failed: {e}")),
                        ),
                    };
                    self.finish_with(&running, outcome, before, after.unwrap_or(Value::Null), Some(&call), error)
                }
                Err(e) => {
                    // Accepted, but the result cannot be seen yet: unknown until a read shows it.
                    let error = format!("the platform accepted the write but its state could not be read after: {e}");
                    self.finish_with(&running, StepOutcome::Unknown, before, Value::Null, Some(&call), Some(error))?;
                    self.reconcile(plan_id, step_id)
                }
            },
            Err(e @ (ConnectorError::Timeout | ConnectorError::Transport(_))) if is_write => {
                // It may or may not have been applied: find out by reading, never by retrying.
                self.finish_error(&running, StepOutcome::Unknown, before, e)?;
                self.reconcile(plan_id, step_id)
            }
            Err(
                e @ (ConnectorError::ServerError { .. }
                | ConnectorError::MalformedResponse { .. }
                | ConnectorError::Unconfirmed { .. }),
            ) if is_write => self.settle_failed_write(&running, &params, before, &e),
            Err(e @ ConnectorError::NeedsHuman { .. }) => {
                let run = self.finish_error(&running, StepOutcome::NeedsHuman, before, e)?;
                Ok(StepRun { code: Some(ErrorCode::NeedsHuman), ..run })
            }
            Err(e @ ConnectorError::StoppedBeforeSubmit { .. }) => {
                let run = self.finish_error(&running, StepOutcome::Failed, before, e)?;
                Ok(StepRun { code: Some(ErrorCode::Paused), ..run })
            }
            Err(e) => self.finish_error(&running, StepOutcome::Failed, before, e),
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
        let single = Plan { steps: vec![step.clone()], reply: None, ..plan.clone() };
        let facts = self.gather_facts_for(case, &single, plan, Some(&record.step_id))?;
        let now = countersign_core::decide(&self.policy, case, &single, &facts)?;
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
        };
        let run = self.finish_recorded(record, ended)?;
        Ok(StepRun { code: needs_human.then_some(ErrorCode::NeedsHuman), ..run })
    }

    /// The workflows a step belongs to: its plan's intent and its action's workflow.
    fn workflows<'a>(&'a self, intent: &'a str, action: &str) -> Vec<&'a str> {
        let workflow = self.policy.actions.get(action).and_then(|d| d.workflow.as_deref());
        std::iter::once(intent).chain(workflow).collect()
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
        Ok(self.store.active_pauses()?.iter().find(|p| p.covers(case, &workflows, action)).map(|p| {
            EngineError::Paused {
                message: format!(
                    "{} {:?} is paused by {} ({}): step {step_id} did not run",
                    p.scope.as_str(),
                    p.value,
                    p.set_by,
                    p.reason
                ),
            }
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
        // What the connector saw (a browser's pages before and after the submit) stays.
        let response = error.evidence().map_or(Value::Null, |e| serde_json::json!({ "evidence": e }));
        let (outcome, after, note) = match self.connector.read_state(&running.action, params) {
            Ok(after) => {
                match self.connector.check_expectation(&running.action, params, Some(&before), after.as_ref()) {
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
        let ended =
            Ended { outcome, before, after, request: Value::Null, response, error: Some(note), stopped_at: None };
        let run = self.finish_recorded(running, ended)?;
        if outcome == StepOutcome::Unknown { self.reconcile(&running.plan_id, &running.step_id) } else { Ok(run) }
    }

    /// The step ends with the connector's `error` and no call record (nothing read after).
    fn finish_error(
        &self,
        record: &StepRecord,
        outcome: StepOutcome,
        before: Value,
        error: ConnectorError,
    ) -> Result<StepRun, EngineError> {
        if let Some(evidence) = error.evidence() {
            // What the connector saw before it stopped (pages, screenshots) is the response.
            let response = serde_json::json!({ "evidence": evidence });
            let ended = Ended {
                outcome,
                before,
                after: Value::Null,
                request: Value::Null,
                response,
                error: Some(error.to_string()),
                stopped_at: None,
            };
            return self.finish_recorded(record, ended);
        }
        self.finish_with(record, outcome, before, Value::Null, None, Some(error.to_string()))
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
        self.finish_recorded(record, Ended { outcome, before, after, request, response, error, stopped_at: None })
    }

    fn finish_recorded(&self, record: &StepRecord, ended: Ended) -> Result<StepRun, EngineError> {
        let Ended { outcome, before, after, request, response, error, stopped_at } = ended;
        let to = match outcome {
            StepOutcome::Succeeded => StepState::Succeeded,
            StepOutcome::Unknown => StepState::Unknown,
            StepOutcome::Failed | StepOutcome::NeedsHuman => StepState::Failed,
        };
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
            },
        )?;
        Ok(StepRun {
            plan_id: record.plan_id.clone(),
            step_id: record.step_id.clone(),
            action: record.action.clone(),
            state: to,
            error,
            code: None,
        })
    }

    fn finish_review(&self, record: &StepRecord, to: StepState, reason: &str) -> Result<(), EngineError> {
        self.transition(
            record,
            to,
            StepUpdate::default(),
            self.clock.now(),
            Event::ReviewDecided {
                plan_id: record.plan_id.clone(),
                step_id: record.step_id.clone(),
                step_digest: record.step_digest.clone(),
                policy_hash: self.policy.hash.clone(),
                verdict: Verdict::Rejected,
                by: self.operator.clone(),
                reason: reason.to_string(),
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

    /// Decide an `unknown` step by reading the platform: if the after-state shows what
    /// the action promises, it was applied (`succeeded`), otherwise `not_applied`. A
    /// read that fails leaves it `unknown` for a later try.
    pub fn reconcile(&self, plan_id: &str, step_id: &str) -> Result<StepRun, EngineError> {
        let (record, step) = self.step_in(plan_id, step_id, StepState::Unknown)?;
        let params = params_of(&step);
        let is_write = self.policy.actions.get(&record.action).is_some_and(|d| d.kind == Kind::Write);
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
        let (to, after, error) = if is_write {
            match self.connector.read_state(&record.action, &params) {
                Err(e) => {
                    return Ok(still_unknown(format!("could not reconcile yet: {e}")));
                }
                Ok(after) => {
                    match self.connector.check_expectation(&record.action, &params, before.as_ref(), after.as_ref()) {
                        Ok(()) => (StepState::Succeeded, after, None),
                        Err(e @ ExpectationError::Unmet { .. }) => {
                            (StepState::NotApplied, after, Some(format!("not applied: {e}")))
                        }
                        Err(e) => {
                            // Without what the check needs, the step stays unknown for a person.
                            return Ok(still_unknown(format!("cannot reconcile automatically: {e}")));
                        }
                    }
                }
            }
        } else {
            (StepState::NotApplied, None, Some("a read that did not finish is not repeated automatically".into()))
        };
        let outcome = if to == StepState::Succeeded { StepOutcome::Succeeded } else { StepOutcome::Failed };
        self.transition(
            &record,
            to,
            StepUpdate::default(),
            self.clock.now(),
            Event::StepFinished {
                plan_id: plan_id.into(),
                step_id: step_id.into(),
                outcome,
                before: Value::Null,
                after: after.unwrap_or(Value::Null),
                request: Value::Null,
                response: serde_json::json!({"reconciled": true}),
                error: error.clone(),
                stopped_at: None,
            },
        )?;
        Ok(StepRun {
            plan_id: plan_id.into(),
            step_id: step_id.into(),
            action: record.action,
            state: to,
            error,
            code: None,
        })
    }
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
}
