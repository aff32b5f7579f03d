//! The executor: runs approved steps through the connector, with evidence around
//! every call, and reconciles steps a crash left unfinished.
//!
//! Order of operations for one step (each arrow a durable write before the next):
//!
//! 1. checks: the step is `approved`; decided under the loaded policy; the approval has
//!    not expired; the stored step still has the digest the approval bound to; no active
//!    pause covers it (checked immediately before the call, not only at planning);
//! 2. `approved → running` with `step_started` (the idempotency key, derived from the
//!    plan, step and digest) — durable before anything goes out;
//! 3. for writes: the before-state read; the call (with `Idempotency-Key`); the
//!    after-state read; the outcome check against what the action promises;
//! 4. `running → succeeded | failed` with `step_finished` (redacted request/response).
//!
//! A timeout on a write leaves the platform's state unknown: the step goes `unknown`
//! and is reconciled by a read at once. On restart, [`Engine::recover`] does the same
//! for every step left `running`. Nothing is ever retried blindly.

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use countersign_connectors::{ConnectorError, ExpectationError};
use countersign_core::evidence::{Event, StepOutcome};
use countersign_core::model::{Case, Plan, Step};
use countersign_core::policy::Kind;
use countersign_store::{StepFilter, StepRecord, StepState, StepUpdate};

use crate::{Engine, EngineError};

/// What happened to one step.
#[derive(Debug, Clone, Serialize)]
pub struct StepRun {
    pub plan_id: String,
    pub step_id: String,
    pub action: String,
    pub state: StepState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
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
                },
            });
        }
        Ok(out)
    }

    fn state_of(&self, plan_id: &str, step_id: &str) -> Option<StepState> {
        self.store.step(plan_id, step_id).ok().flatten().map(|s| s.state)
    }

    /// The case and plan recorded for a step (from the evidence log).
    fn recorded_case_and_plan(&self, record: &StepRecord) -> Result<(Case, Plan), EngineError> {
        let events = self.store.events_for_case(&record.case_id)?;
        let mut case = None;
        let mut plan = None;
        for e in events {
            match e.kind.as_str() {
                "case_opened" => {
                    case = serde_json::from_value::<Case>(e.payload["case"].clone()).ok();
                }
                "plan_proposed" if e.payload["plan"]["id"] == Value::String(record.plan_id.clone()) => {
                    plan = serde_json::from_value::<Plan>(e.payload["plan"].clone()).ok();
                }
                _ => {}
            }
        }
        match (case, plan) {
            (Some(c), Some(p)) => Ok((c, p)),
            _ => Err(EngineError::Conflict {
                message: format!("the evidence for case {} lacks its case or plan {}", record.case_id, record.plan_id),
            }),
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
        if countersign_core::digest::step_digest(&step) != record.step_digest {
            return Err(EngineError::ApprovalStale {
                message: format!("step {step_id} no longer matches the digest its approval bound to"),
            });
        }
        if record.policy_hash != self.policy.hash {
            self.finish_review(&record, StepState::Invalidated, "decided under another policy version")?;
            return Err(EngineError::ApprovalStale {
                message: format!("step {step_id} was decided under another policy version: decide the plan again"),
            });
        }
        if record.approval_expires_at.is_some_and(|t| t < now) {
            self.finish_review(&record, StepState::Expired, "the approval expired before the step ran")?;
            return Err(EngineError::ApprovalStale { message: format!("the approval of step {step_id} expired") });
        }
        let (case, plan) = self.recorded_case_and_plan(&record)?;
        let pauses = self.store.active_pauses()?;
        if let Some(p) = pauses.iter().find(|p| p.covers(&case, &plan.intent, &record.action)) {
            return Err(EngineError::Paused {
                message: format!(
                    "{} {:?} is paused by {} ({}): step {step_id} did not run",
                    p.scope.as_str(),
                    p.value,
                    p.set_by,
                    p.reason
                ),
            });
        }

        let key = idempotency_key(plan_id, step_id, &record.step_digest);
        let is_write = self.policy.actions.get(&record.action).is_some_and(|d| d.kind == Kind::Write);
        let params = params_of(&step);
        // The before-state is read first and recorded in the durable `started` event,
        // so a crash during the call can still be reconciled against it.
        let before = if is_write {
            match self.connector.read_state(&record.action, &params) {
                Ok(b) => b,
                Err(e) => {
                    return Err(EngineError::Connector(e));
                }
            }
        } else {
            None
        };
        let request = self.connector.describe_call(&record.action, &params, is_write.then_some(key.as_str())).ok();
        self.transition(
            &record,
            StepState::Running,
            StepUpdate { idempotency_key: Some(key.clone()), ..StepUpdate::default() },
            now,
            Event::StepStarted {
                plan_id: plan_id.into(),
                step_id: step_id.into(),
                step_digest: record.step_digest.clone(),
                idempotency_key: key.clone(),
                before: before.clone(),
                request: request.and_then(|r| serde_json::to_value(r).ok()),
            },
        )?;
        let running = StepRecord { state: StepState::Running, ..record.clone() };

        let call = self.connector.call(&record.action, &params, is_write.then_some(key.as_str()));
        match call {
            Ok(call) => {
                let after =
                    if is_write { self.connector.read_state(&record.action, &params).ok().flatten() } else { None };
                let check = if is_write {
                    self.connector.check_expectation(&record.action, &params, before.as_ref(), after.as_ref()).err()
                } else {
                    None
                };
                let (outcome, error) = match check {
                    None => (StepOutcome::Succeeded, None),
                    Some(e) => {
                        (StepOutcome::Failed, Some(format!("the platform answered but the outcome check failed: {e}")))
                    }
                };
                self.finish_with(
                    &running,
                    outcome,
                    before.unwrap_or(Value::Null),
                    after.unwrap_or(Value::Null),
                    Some(&call),
                    error,
                )
            }
            Err(e @ (ConnectorError::Timeout | ConnectorError::Transport(_))) if is_write => {
                // It may or may not have been applied: find out by reading, never by retrying.
                self.finish(&running, StepOutcome::Unknown, before.unwrap_or(Value::Null), Value::Null, None, Some(e))?;
                self.reconcile(plan_id, step_id)
            }
            Err(e) => {
                self.finish(&running, StepOutcome::Failed, before.unwrap_or(Value::Null), Value::Null, None, Some(e))
            }
        }
    }

    fn finish(
        &self,
        record: &StepRecord,
        outcome: StepOutcome,
        before: Value,
        after: Value,
        call: Option<&countersign_connectors::CallRecord>,
        error: Option<ConnectorError>,
    ) -> Result<StepRun, EngineError> {
        self.finish_with(record, outcome, before, after, call, error.map(|e| e.to_string()))
    }

    fn finish_with(
        &self,
        record: &StepRecord,
        outcome: StepOutcome,
        before: Value,
        after: Value,
        call: Option<&countersign_connectors::CallRecord>,
        error: Option<String>,
    ) -> Result<StepRun, EngineError> {
        let to = match outcome {
            StepOutcome::Succeeded => StepState::Succeeded,
            StepOutcome::Unknown => StepState::Unknown,
            StepOutcome::Failed | StepOutcome::NeedsHuman => StepState::Failed,
        };
        let (request, response) = match call {
            Some(c) => (
                serde_json::to_value(&c.request).unwrap_or(Value::Null),
                serde_json::json!({"status": c.status, "body": c.response, "attempts": c.attempts, "duration_ms": c.duration_ms}),
            ),
            None => (Value::Null, Value::Null),
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
            },
        )?;
        Ok(StepRun {
            plan_id: record.plan_id.clone(),
            step_id: record.step_id.clone(),
            action: record.action.clone(),
            state: to,
            error,
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
                verdict: countersign_core::evidence::Verdict::Rejected,
                by: self.operator.clone(),
                reason: reason.to_string(),
            },
        )
    }

    /// After a restart: every step left `running` is marked `unknown` and reconciled by
    /// a read. Returns what became of each.
    pub fn recover(&self) -> Result<Vec<StepRun>, EngineError> {
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
        Ok(out)
    }

    /// The before-state recorded in the step's latest `step_started` event.
    fn recorded_before(&self, record: &StepRecord) -> Result<Option<Value>, EngineError> {
        let events = self.store.events_for_case(&record.case_id)?;
        Ok(events
            .iter()
            .rev()
            .find(|e| {
                e.kind == "step_started"
                    && e.payload["plan_id"] == Value::String(record.plan_id.clone())
                    && e.payload["step_id"] == Value::String(record.step_id.clone())
            })
            .and_then(|e| e.payload.get("before").cloned())
            .filter(|v| !v.is_null()))
    }

    /// Decide an `unknown` step by reading the platform: if the after-state shows what
    /// the action promises, it was applied (`succeeded`), otherwise `not_applied`. A
    /// read that fails leaves it `unknown` for a later try.
    pub fn reconcile(&self, plan_id: &str, step_id: &str) -> Result<StepRun, EngineError> {
        let (record, step) = self.step_in(plan_id, step_id, StepState::Unknown)?;
        let params = params_of(&step);
        let is_write = self.policy.actions.get(&record.action).is_some_and(|d| d.kind == Kind::Write);
        let before = self.recorded_before(&record)?;
        let (to, after, error) = if is_write {
            match self.connector.read_state(&record.action, &params) {
                Err(e) => {
                    return Ok(StepRun {
                        plan_id: plan_id.into(),
                        step_id: step_id.into(),
                        action: record.action.clone(),
                        state: StepState::Unknown,
                        error: Some(format!("could not reconcile yet: {e}")),
                    });
                }
                Ok(after) => {
                    match self.connector.check_expectation(&record.action, &params, before.as_ref(), after.as_ref()) {
                        Ok(()) => (StepState::Succeeded, after, None),
                        Err(e @ ExpectationError::Unmet { .. }) => {
                            (StepState::NotApplied, after, Some(format!("not applied: {e}")))
                        }
                        Err(e) => {
                            // Without what the check needs, the step stays unknown for a person.
                            return Ok(StepRun {
                                plan_id: plan_id.into(),
                                step_id: step_id.into(),
                                action: record.action.clone(),
                                state: StepState::Unknown,
                                error: Some(format!("cannot reconcile automatically: {e}")),
                            });
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
            },
        )?;
        Ok(StepRun { plan_id: plan_id.into(), step_id: step_id.into(), action: record.action, state: to, error })
    }
}
