//! Countersigning: the review queue, approvals and rejections bound to the step as
//! decided, roster proofs for supervisor steps, and every step state change committed
//! with the evidence event that records it.

use countersign_core::Outcome;
use countersign_core::evidence::{Event, Verdict};
use countersign_core::model::Operator;
use countersign_store::{EventFilter, NewEvent, PauseGuard, StepFilter, StepUpdate, Transition};
use jiff::Timestamp;

use crate::{Engine, EngineError, Proof, StepRecord, StepState, roster};

/// What a roster proof countersigns: a step (or a reply) of a plan.
pub(crate) struct Proving<'a> {
    pub case_id: &'a str,
    pub plan_id: &'a str,
    pub step_id: &'a str,
    pub step_digest: &'a str,
}

impl<'a> Proving<'a> {
    /// A proof for this queued step.
    pub fn step(record: &'a StepRecord) -> Proving<'a> {
        Proving {
            case_id: &record.case_id,
            plan_id: &record.plan_id,
            step_id: &record.step_id,
            step_digest: &record.step_digest,
        }
    }
}

impl Engine {
    /// Steps waiting for a countersignature, oldest first.
    pub fn review_queue(&self) -> Result<Vec<StepRecord>, EngineError> {
        Ok(self.store.steps(&StepFilter { states: vec![StepState::Waiting], ..StepFilter::default() })?)
    }

    /// Every queued or executed step, oldest first.
    pub fn all_steps(&self) -> Result<Vec<StepRecord>, EngineError> {
        Ok(self.store.steps(&StepFilter::default())?)
    }

    /// Steps of one case in any state.
    pub fn case_steps(&self, case_id: &str) -> Result<Vec<StepRecord>, EngineError> {
        Ok(self.store.steps(&StepFilter { case_id: Some(case_id.to_string()), ..StepFilter::default() })?)
    }

    /// Countersign or reject a waiting step as the seat's operator.
    ///
    /// The approval binds to the step as it was decided (its digest), its plan and the
    /// policy it was decided under: a step decided under another policy version is
    /// invalidated instead (it must be decided again), and only the roles the decision
    /// names may countersign. A `supervisor` step is never approved on the seat's word:
    /// it takes [`Engine::review_as`] with a roster proof.
    pub fn review(
        &self,
        plan_id: &str,
        step_id: &str,
        verdict: Verdict,
        reason: &str,
    ) -> Result<StepRecord, EngineError> {
        let record = self.waiting_step(plan_id, step_id)?;
        self.review_by(record, verdict, reason, &self.operator.clone(), Proven::No)
    }

    /// Countersign or reject as a person on the workspace roster, who proves it with
    /// their passphrase (see [`roster`]). A wrong id or passphrase is `NotPermitted` and
    /// leaves a `review_refused` event (without the passphrase); too many in a row lock
    /// the id out for a while.
    pub fn review_as(
        &self,
        plan_id: &str,
        step_id: &str,
        verdict: Verdict,
        reason: &str,
        proof: &Proof,
    ) -> Result<StepRecord, EngineError> {
        let record = self.waiting_step(plan_id, step_id)?;
        let who = self.prove(&Proving::step(&record), proof)?;
        self.review_by(record, verdict, reason, &who, Proven::Passphrase)
    }

    pub(crate) fn waiting_step(&self, plan_id: &str, step_id: &str) -> Result<StepRecord, EngineError> {
        let record = self
            .store
            .step(plan_id, step_id)?
            .ok_or_else(|| EngineError::NotFound { message: format!("no step {step_id} in plan {plan_id}") })?;
        if record.state != StepState::Waiting {
            return Err(EngineError::Conflict {
                message: format!(
                    "step {step_id} of plan {plan_id} is {}, not waiting for review",
                    record.state.as_str()
                ),
            });
        }
        Ok(record)
    }

    /// Check a roster proof; a refusal is recorded (who was claimed, never the passphrase).
    pub(crate) fn prove(&self, record: &Proving<'_>, proof: &Proof) -> Result<Operator, EngineError> {
        let running = self.running();
        let now = self.clock.now();
        let since = now - jiff::SignedDuration::from_mins(roster::LOCKOUT_WINDOW_MINUTES);
        let failures = self
            .events(&EventFilter {
                kind: Some(roster::REVIEW_REFUSED.into()),
                text: Some(proof.id.clone()),
                ..EventFilter::default()
            })?
            .into_iter()
            .filter(|e| {
                e.at > since && matches!(&e.event, Event::ReviewRefused { claimed_id, .. } if *claimed_id == proof.id)
            })
            .count();
        let refuse = |why: &str, message: String| -> Result<Operator, EngineError> {
            let event = Event::ReviewRefused {
                plan_id: record.plan_id.to_string(),
                step_id: record.step_id.to_string(),
                step_digest: record.step_digest.to_string(),
                claimed_id: proof.id.clone(),
                seat: self.operator.clone(),
                reason: why.to_string(),
            };
            self.store.append(NewEvent {
                case_id: Some(record.case_id.to_string()),
                kind: event.kind().to_string(),
                actor: self.operator.id.clone(),
                at: now,
                payload: event.payload(),
            })?;
            Err(EngineError::NotPermitted { message })
        };
        if failures >= roster::LOCKOUT_ATTEMPTS {
            return refuse(
                "locked out",
                format!(
                    "{} is locked out after {failures} failed attempts in {} minutes; try again later",
                    proof.id,
                    roster::LOCKOUT_WINDOW_MINUTES
                ),
            );
        }
        match running.workspace.roster.iter().find(|e| e.id == proof.id) {
            Some(entry) if entry.verify(&proof.passphrase) => {
                Ok(Operator { id: entry.id.clone(), role: entry.role.clone() })
            }
            found => refuse(
                if found.is_some() { "wrong passphrase" } else { "not on the roster" },
                format!("{}: not on the roster, or the passphrase is wrong", proof.id),
            ),
        }
    }

    pub(crate) fn review_by(
        &self,
        record: StepRecord,
        verdict: Verdict,
        reason: &str,
        who: &Operator,
        proven: Proven,
    ) -> Result<StepRecord, EngineError> {
        let running = self.running();
        let grant = match &proven {
            Proven::Grant(entry) => Some(entry.clone()),
            Proven::No | Proven::Passphrase => None,
        };
        let now = self.clock.now();
        let (plan_id, step_id) = (record.plan_id.clone(), record.step_id.clone());
        if record.policy_hash != running.policy.hash {
            self.transition_by(
                &who.id,
                &record,
                StepState::Invalidated,
                StepUpdate::default(),
                now,
                Event::ReviewDecided {
                    plan_id: plan_id.clone(),
                    step_id: step_id.clone(),
                    step_digest: record.step_digest.clone(),
                    policy_hash: running.policy.hash.clone(),
                    verdict: Verdict::Rejected,
                    by: who.clone(),
                    reason: "invalidated: decided under another policy version; decide the plan again".into(),
                    grant: grant.clone(),
                    by_engine: true,
                },
                None,
            )?;
            return Err(EngineError::ApprovalStale {
                message: format!(
                    "step {step_id} was decided under policy {} but {} is loaded now: decide the plan again",
                    record.policy_hash, running.policy.hash
                ),
            });
        }
        if verdict == Verdict::Approved && !record.approver_roles.contains(&who.role) {
            return Err(EngineError::NotPermitted {
                message: format!(
                    "{} ({}) may not countersign this {} step; it needs {}",
                    who.id,
                    who.role,
                    record.decision,
                    record.approver_roles.join(" or ")
                ),
            });
        }
        if verdict == Verdict::Approved
            && record.decision == Outcome::Supervisor.as_str()
            && matches!(proven, Proven::No)
        {
            return Err(EngineError::NotPermitted {
                message: format!(
                    "a supervisor step is countersigned by someone on the workspace roster, who proves it with                      their passphrase (`review approve {plan_id} {step_id} --as LEAD_ID`); a role given on the \
                     command line is not proof"
                ),
            });
        }
        if reason.trim().is_empty() && verdict == Verdict::Rejected {
            return Err(EngineError::BadInput { message: "a rejection needs a reason".into() });
        }
        let (to, expires) = match verdict {
            Verdict::Approved => (StepState::Approved, Some(now + self.approval_ttl)),
            Verdict::Rejected => (StepState::Rejected, None),
        };
        let update = StepUpdate {
            reviewed_by: Some(who.id.clone()),
            reviewed_at: Some(now),
            review_reason: Some(reason.to_string()),
            approval_expires_at: expires,
            idempotency_key: None,
        };
        self.transition_by(
            &who.id,
            &record,
            to,
            update,
            now,
            Event::ReviewDecided {
                plan_id: plan_id.clone(),
                step_id: step_id.clone(),
                step_digest: record.step_digest.clone(),
                policy_hash: record.policy_hash.clone(),
                verdict,
                by: who.clone(),
                reason: reason.to_string(),
                grant,
                by_engine: false,
            },
            None,
        )?;
        self.store.step(&plan_id, &step_id)?.ok_or_else(|| EngineError::NotFound { message: step_id.clone() })
    }

    pub(crate) fn transition(
        &self,
        record: &StepRecord,
        to: StepState,
        update: StepUpdate,
        at: Timestamp,
        event: Event,
    ) -> Result<(), EngineError> {
        self.transition_by(&self.operator.id, record, to, update, at, event, None)
    }

    /// A conditional state change with its evidence event, by `actor`; with `guard`, refused
    /// (in the same transaction) when an active pause covers the step.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn transition_by(
        &self,
        actor: &str,
        record: &StepRecord,
        to: StepState,
        update: StepUpdate,
        at: Timestamp,
        event: Event,
        guard: Option<PauseGuard>,
    ) -> Result<(), EngineError> {
        self.store.writer().transition(Transition {
            plan_id: record.plan_id.clone(),
            step_id: record.step_id.clone(),
            from: vec![record.state],
            to,
            update,
            event: NewEvent {
                case_id: Some(record.case_id.clone()),
                kind: event.kind().to_string(),
                actor: actor.to_string(),
                at,
                payload: event.payload(),
            },
            unless_paused: guard,
        })?;
        Ok(())
    }
}

/// How the person countersigning proved who they are.
#[derive(Debug, Clone)]
pub(crate) enum Proven {
    /// Not at all: the seat's own operator.
    No,
    /// Their passphrase, typed at this seat.
    Passphrase,
    /// Their grant, signed at their own desk and checked here (see `team.rs`).
    Grant(countersign_core::team::SignedEntry),
}
