//! An agent's work on a case, as the desktop app does it: open it (plan it once with the
//! workspace's planner, or show the plan already recorded), plan it again, edit a waiting
//! step, and send the reply.
//!
//! An edit never changes a decided step: it proposes a new revision of the plan with the
//! agent's values (provenance `agent`), invalidates the waiting steps it replaces, and the
//! policy decides the revision like any plan. Sending the reply decides the text actually
//! sent (the agent may have edited the draft), so a promise typed by hand is caught like
//! one the planner wrote.

use std::collections::BTreeMap;
use std::path::Path;

use countersign_core::decide::{PlanDecision, ReplyDecision, SignalHit};
use countersign_core::evidence::Event;
use countersign_core::model::{Case, Param, Plan, Provenance};
use countersign_core::money::Money;
use countersign_core::{Outcome, decide_scanned};
use countersign_store::{StepFilter, StepState};
use serde::Serialize;
use serde_json::Value;

use crate::planning::PlannedCase;
use crate::roster::Proof;
use crate::workspace::read_json;
use crate::{Engine, EngineError, Workspace};
use crate::{StepRecord, StepRun};

/// The `planner` of a plan revision an agent made by editing a step.
pub const AGENT_EDIT: &str = countersign_core::autonomy::AGENT_EDIT;

/// A case and the plan in force for it, with the policy's recorded decision.
#[derive(Debug, Clone, Serialize)]
pub struct OpenedCase {
    pub plan: Plan,
    pub decision: PlanDecision,
    /// Plans recorded for the case before this one (oldest first): their steps may have
    /// run, been rejected or been replaced.
    pub earlier: Vec<(Plan, PlanDecision)>,
    /// True when this call planned the case (it had no plan recorded).
    pub planned_now: bool,
}

/// A case planned by the workspace's planner: what the planner did, and the plan in force.
#[derive(Debug, Clone)]
pub struct PlanRun {
    pub planned: PlannedCase,
    pub opened: OpenedCase,
}

/// What working a case did ([`Engine::run_case`]).
#[derive(Debug, Clone, Serialize)]
pub struct CaseRun {
    /// Steps found unfinished and settled first.
    pub recovered: Vec<StepRun>,
    pub decision: PlanDecision,
    /// The steps that ran now.
    pub ran: Vec<StepRun>,
    /// Every step of the case, in any state.
    pub steps: Vec<StepRecord>,
}

/// A reply recorded as sent.
#[derive(Debug, Clone, Serialize)]
pub struct SentReply {
    pub plan_id: String,
    pub text: String,
    pub by: String,
    pub at: String,
    /// The policy's decision on the text as sent (when it was just sent; the log has the
    /// text and who sent it, the decision can be made again from them).
    pub decision: Option<ReplyDecision>,
}

/// A case as a file gives it: a bare case, or a case with a recorded plan
/// (`{"case": …, "plan": …}`); `plan`, when given, is a plan file that replaces the
/// recorded one. Errors name the file, line and column.
pub fn read_case(case: &Path, plan: Option<&Path>) -> Result<(Case, Option<Plan>), EngineError> {
    let value: Value = read_json(case)?;
    let (case, recorded) = match value.get("case") {
        Some(_) => {
            let file: crate::CaseFile = read_json(case)?;
            (file.case, Some(file.plan))
        }
        None => (read_json(case)?, None),
    };
    match plan {
        Some(plan) => Ok((case, Some(read_json(plan)?))),
        None => Ok((case, recorded)),
    }
}

impl Workspace {
    /// The cases of the inbox: every `*.json` in the cases folder, a bare case or a case
    /// file with a recorded plan (the plan is ignored: the app plans with the planner).
    pub fn cases(&self) -> Result<Vec<Case>, EngineError> {
        self.case_files()?
            .iter()
            .map(|p| {
                let value: Value = read_json(p)?;
                match value.get("case") {
                    Some(case) => serde_json::from_value(case.clone())
                        .map_err(|e| EngineError::Config { message: format!("{}: `case`: {e}", p.display()) }),
                    None => read_json(p),
                }
            })
            .collect()
    }
}

impl Engine {
    /// The escalation signals the policy finds in the customer's words, without planning
    /// or reading anything (the inbox shows them before a case is opened).
    pub fn case_signals(&self, case: &Case) -> Vec<SignalHit> {
        self.case_scan(case).signals.clone()
    }

    /// The plans recorded for a case, oldest first, each with its recorded decision.
    pub fn case_plans(&self, case_id: &str) -> Result<Vec<(Plan, PlanDecision)>, EngineError> {
        let events = self.case_events(case_id, "plan_proposed")?;
        let mut out: Vec<(Plan, PlanDecision)> = Vec::new();
        for ev in events {
            let Event::PlanProposed { plan } = ev.event else { continue };
            if out.iter().any(|(p, _)| p.id == plan.id) {
                continue;
            }
            if let Some(decision) = self.recorded_decision(case_id, &plan.id)? {
                out.push((plan, decision));
            }
        }
        Ok(out)
    }

    /// Open a case: the plan in force (the latest recorded), or, the first time, a plan
    /// from the workspace's planner, decided and recorded.
    pub fn open_case(&self, case: &Case) -> Result<OpenedCase, EngineError> {
        let mut plans = self.case_plans(&case.id)?;
        let mark = self.words_mark(case)?;
        match plans.pop() {
            // A case from a source whose plan in force was made on other words (a follow-up
            // recorded when planning failed, or just before a crash) is planned again now.
            Some((plan, _)) if mark.as_ref().is_some_and(|m| !plan.id.contains(m.as_str())) => self.plan_again(case),
            Some((plan, decision)) => Ok(OpenedCase { plan, decision, earlier: plans, planned_now: false }),
            None => self.plan_again(case),
        }
    }

    /// Plan a case with the workspace's planner and record it. Platform data that changed
    /// gives a new plan (its id follows the data); unchanged data gives the same plan, which
    /// is recorded once. Waiting steps of earlier plans that the new plan does not keep
    /// are invalidated.
    pub fn plan_again(&self, case: &Case) -> Result<OpenedCase, EngineError> {
        Ok(self.plan(case)?.opened)
    }

    /// [`Engine::plan_again`], with what the planner did on the way (its reads, the
    /// passages its searches returned).
    pub fn plan(&self, case: &Case) -> Result<PlanRun, EngineError> {
        let planner = self.configured_planner()?;
        let mut planned = self.plan_case(case, planner.as_ref())?;
        // A case from a source is decided on the customer's words it was planned on: the
        // plan id carries their hash, so the same plan for other words (a follow-up) is a
        // new plan, decided anew, never the decision recorded for the earlier words (a
        // planner's id follows the plan, not the conversation).
        let words = self.words_mark(case)?;
        if let Some(mark) = &words {
            planned.plan.id = format!("{}{mark}", planned.plan.id);
        }
        // An agent's identity check is a new fact the same plan would not be decided on
        // again (a plan is decided once per id): planning after one makes a new plan.
        let checks = self.case_events(&case.id, "identity_checked")?.len();
        if checks > 0 {
            planned.plan.id = format!("{}-v{checks}", planned.plan.id);
        }
        let decision = self.process_planned(case, &planned)?;
        // On new words, what an agent approved on the earlier ones does not run either.
        let states: &[StepState] =
            if words.is_some() { &[StepState::Waiting, StepState::Approved] } else { &[StepState::Waiting] };
        self.supersede_in(&case.id, &planned.plan.id, "the case was planned again", states)?;
        let mut plans = self.case_plans(&case.id)?;
        plans.retain(|(p, _)| p.id != planned.plan.id);
        let opened = OpenedCase { plan: planned.plan.clone(), decision, earlier: plans, planned_now: true };
        Ok(PlanRun { planned, opened })
    }

    /// Record a plan someone wrote (a plan file) as the case's plan in force: its sources
    /// derived again from the case's evidence ([`crate::provenance`]), then decided and
    /// recorded like a planner's, and, like planning again, the waiting steps of the case's
    /// other plans are invalidated.
    ///
    /// A plan recorded before is not recorded again and replaces nothing: submitting the
    /// same plan file twice must not undo a later plan or an agent's edit.
    pub fn submit_plan(&self, case: &Case, plan: &Plan) -> Result<PlanDecision, EngineError> {
        let new = self.recorded_decision(&case.id, &plan.id)?.is_none();
        let decision = self.process_outside(case, plan)?;
        if new {
            self.supersede(&case.id, &plan.id, &format!("replaced by plan {}", plan.id))?;
        }
        Ok(decision)
    }

    /// Work a case as `countersign run` does: settle steps left unfinished by a crash,
    /// record `plan` (or, without one, plan the case with the workspace's planner) as the
    /// plan in force, then run every step of the case that may run now.
    pub fn run_case(&self, case: &Case, plan: Option<&Plan>) -> Result<CaseRun, EngineError> {
        let recovered = self.recover()?;
        let decision = match plan {
            Some(plan) => self.submit_plan(case, plan)?,
            None => self.plan(case)?.opened.decision,
        };
        let ran = self.run_approved(&case.id)?;
        let steps = self.case_steps(&case.id)?;
        Ok(CaseRun { recovered, decision, ran, steps })
    }

    /// Edit a waiting step: a new revision of the plan with `changes` (parameter → the
    /// value as the agent typed it, read in the shape of the value it replaces — see
    /// [`typed_value`]; provenance `agent`) in that step, and the plan's other waiting steps and reply
    /// carried over. The revision is decided by the policy like any plan; the steps it
    /// replaces are invalidated with evidence naming the edit.
    pub fn edit_step(
        &self,
        case: &Case,
        plan_id: &str,
        step_id: &str,
        changes: &BTreeMap<String, String>,
        reason: &str,
    ) -> Result<OpenedCase, EngineError> {
        if reason.trim().is_empty() {
            return Err(EngineError::BadInput { message: "an edit needs a reason".into() });
        }
        if changes.is_empty() {
            return Err(EngineError::BadInput { message: "the edit changes nothing".into() });
        }
        let (plan, _) = self
            .case_plans(&case.id)?
            .into_iter()
            .find(|(p, _)| p.id == plan_id)
            .ok_or_else(|| EngineError::NotFound { message: format!("case {} has no plan {plan_id}", case.id) })?;
        let waiting: Vec<String> = self
            .store
            .steps(&StepFilter { states: vec![StepState::Waiting], ..StepFilter::default() })?
            .into_iter()
            .filter(|r| r.plan_id == plan_id)
            .map(|r| r.step_id)
            .collect();
        if !waiting.iter().any(|s| s == step_id) {
            return Err(EngineError::Conflict {
                message: format!("step {step_id} of plan {plan_id} is not waiting for review, so it cannot be edited"),
            });
        }
        let mut steps = Vec::new();
        for step in plan.steps.iter().filter(|s| waiting.contains(&s.id)) {
            let mut step = step.clone();
            if step.id == step_id {
                for (name, text) in changes {
                    let old = step.params.get(name).ok_or_else(|| EngineError::BadInput {
                        message: format!("step {step_id} ({}) has no parameter {name:?}", step.action),
                    })?;
                    let value = typed_value(&old.value, text)
                        .map_err(|why| EngineError::BadInput { message: format!("{step_id}.{name}: {why}") })?;
                    if value != old.value {
                        step.params.insert(name.clone(), Param { value, source: Provenance::Agent });
                    }
                }
            }
            steps.push(step);
        }
        let digest = countersign_core::digest::sha256_hex(
            serde_json::to_string(&(plan_id, step_id, changes)).unwrap_or_default().as_bytes(),
        );
        let revision = Plan {
            id: format!(
                "{}.edit-{}",
                base_id(plan_id),
                digest.trim_start_matches("sha256:").get(..12).unwrap_or(&digest)
            ),
            case_id: case.id.clone(),
            planner: AGENT_EDIT.to_string(),
            intent: plan.intent.clone(),
            steps,
            signals: plan.signals.clone(),
            reply: plan.reply.clone(),
        };
        let decision = self.process(case, &revision)?;
        let why = format!("replaced by {}: {} edited {step_id}: {reason}", revision.id, self.operator.id);
        self.supersede(&case.id, &revision.id, &why)?;
        let mut plans = self.case_plans(&case.id)?;
        plans.retain(|(p, _)| p.id != revision.id);
        Ok(OpenedCase { plan: revision, decision, earlier: plans, planned_now: false })
    }

    /// Invalidate the waiting steps of the case's other plans, with evidence.
    fn supersede(&self, case_id: &str, current: &str, reason: &str) -> Result<(), EngineError> {
        self.supersede_in(case_id, current, reason, &[StepState::Waiting])
    }

    /// Invalidate the steps in `states` of the case's other plans, with evidence.
    fn supersede_in(
        &self,
        case_id: &str,
        current: &str,
        reason: &str,
        states: &[StepState],
    ) -> Result<(), EngineError> {
        let stale = self
            .store
            .steps(&StepFilter { states: states.to_vec(), ..StepFilter::default() })?
            .into_iter()
            .filter(|r| r.case_id == case_id && r.plan_id != current);
        for record in stale {
            self.invalidate(&self.operator.id, &record, reason)?;
        }
        Ok(())
    }

    /// The reply recorded as sent for a case, if any.
    pub fn sent_reply(&self, case_id: &str) -> Result<Option<SentReply>, EngineError> {
        Ok(self.case_events(case_id, "reply_sent")?.pop().and_then(|e| match e.event {
            Event::ReplySent { plan_id, text, .. } => {
                Some(SentReply { plan_id, text, by: e.actor, at: e.at.to_string(), decision: None })
            }
            _ => None,
        }))
    }

    /// The policy's decision on the reply of plan `plan_id` with `text` in place of the
    /// draft (the agent edits the draft; a promise typed by hand counts like one the
    /// planner wrote). Records nothing.
    pub fn check_reply(&self, case: &Case, plan_id: &str, text: &str) -> Result<ReplyDecision, EngineError> {
        let running = self.running();
        let (mut plan, _) = self
            .case_plans(&case.id)?
            .into_iter()
            .find(|(p, _)| p.id == plan_id)
            .ok_or_else(|| EngineError::NotFound { message: format!("case {} has no plan {plan_id}", case.id) })?;
        let no_reply = || EngineError::NotFound { message: format!("plan {plan_id} proposes no reply") };
        plan.reply.as_mut().ok_or_else(no_reply)?.text = text.to_string();
        let mut facts = self.gather_facts(case, &plan)?;
        facts.citations = self.index_citations(&plan)?;
        decide_scanned(&running.policy, case, &plan, &facts, &self.case_scan(case))?.reply.ok_or_else(no_reply)
    }

    /// Send the reply of plan `plan_id` with `text` (the draft as the agent left it). The
    /// policy decides the text as sent ([`Engine::check_reply`]): `forbid` and `recommend`
    /// are refused, `supervisor` takes a roster `proof`, `confirm` and `auto` go out on the
    /// agent's word — but only if the decision is no stricter than `seen`, the decision the
    /// agent was shown (an edit made after the last check cannot slip a promise through).
    /// A case's reply is sent once; the evidence records the text, its citations and who
    /// sent or countersigned it.
    pub fn send_reply(
        &self,
        case: &Case,
        plan_id: &str,
        text: &str,
        seen: Outcome,
        proof: Option<&Proof>,
    ) -> Result<SentReply, EngineError> {
        if text.trim().is_empty() {
            return Err(EngineError::BadInput { message: "the reply is empty".into() });
        }
        // Checked and recorded under the reply guard: two sends (a double click, the app
        // and the command line) cannot both find the reply unsent.
        let _only_one = self.reply_guard()?;
        if let Some(sent) = self.sent_reply(&case.id)? {
            if sent.plan_id == plan_id {
                return Err(EngineError::Conflict {
                    message: format!("the reply of plan {plan_id} was already sent by {} at {}", sent.by, sent.at),
                });
            }
            if matches!(
                self.reply_delivery(&case.id)?,
                Some(crate::delivery::Delivery::Pending | crate::delivery::Delivery::Unknown { .. })
            ) {
                return Err(EngineError::Conflict {
                    message: format!(
                        "the earlier reply of case {} may still be landing: post it again (it lands once) before \
                         sending another",
                        case.id
                    ),
                });
            }
        }
        let decision = self.check_reply(case, plan_id, text)?;
        if decision.decision > seen {
            let why = decision.reasons.iter().map(|r| r.text.as_str()).collect::<Vec<_>>().join("; ");
            return Err(EngineError::Conflict {
                message: format!(
                    "the reply as written is `{}`, not `{seen}` as shown: {why}; review it and send again",
                    decision.decision
                ),
            });
        }
        let plan = self.case_plans(&case.id)?.into_iter().find(|(p, _)| p.id == plan_id).map(|(p, _)| p);
        let intent = plan.as_ref().map(|p| p.intent.clone()).unwrap_or_default();
        let citations = plan.and_then(|p| p.reply).map(|r| r.citations).unwrap_or_default();
        // A reply to a case from a source is posted there: a write like any other, so a
        // pause covering it stops it before anything is recorded or sent.
        let delivery = match self.reply_route(&case.id)? {
            Some((_, route)) => {
                if let Some(paused) = self.paused(case, &intent, crate::delivery::SEND_REPLY, "reply")? {
                    return Err(paused);
                }
                Some(countersign_core::evidence::ReplyDelivery {
                    idempotency_key: crate::delivery::reply_key(&case.id, plan_id, text),
                    ..route
                })
            }
            None => None,
        };
        let by = match decision.decision {
            Outcome::Forbid | Outcome::Recommend => {
                let why = decision.reasons.iter().map(|r| r.text.as_str()).collect::<Vec<_>>().join("; ");
                return Err(EngineError::NotPermitted {
                    message: format!("the policy does not let the app send this reply ({}): {why}", decision.decision),
                });
            }
            Outcome::Supervisor => {
                let proof = proof.ok_or_else(|| EngineError::NotPermitted {
                    message: format!(
                        "this reply needs a countersignature by {}: give a roster id and passphrase",
                        decision.approver_roles.join(" or ")
                    ),
                })?;
                let digest = countersign_core::digest::sha256_hex(text.as_bytes());
                let subject =
                    crate::review::Proving { case_id: &case.id, plan_id, step_id: "reply", step_digest: &digest };
                let who = self.prove(&subject, proof)?;
                if !decision.approver_roles.contains(&who.role) {
                    return Err(EngineError::NotPermitted {
                        message: format!(
                            "{} ({}) may not countersign this reply; it needs {}",
                            who.id,
                            who.role,
                            decision.approver_roles.join(" or ")
                        ),
                    });
                }
                who.id
            }
            Outcome::Confirm | Outcome::Auto => self.operator.id.clone(),
        };
        if let Some(route) = &delivery {
            // Two agents never answer one conversation: whoever holds it at the source
            // answers it. Asked last, once every local check has passed, so a refused
            // reply changes nothing at the source.
            let claim = match self.claim(&case.id) {
                Ok(claim) => claim,
                // The source cannot say now: a claim this seat recorded stands (the post
                // itself will tell whether the source answers); no claim, no reply.
                Err(e) if self.claimed_here(&case.id)? => {
                    tracing::warn!(case = %case.id, error = %e, "the source cannot confirm the claim; this seat holds it");
                    Some(crate::intake::Claim::Mine)
                }
                Err(e) => return Err(e),
            };
            if let Some(crate::intake::Claim::HeldBy(holder)) = claim {
                return Err(EngineError::Conflict {
                    message: format!(
                        "{holder} holds this conversation at {}: they answer it (or release it there first)",
                        route.source
                    ),
                });
            }
        }
        let posts = delivery.is_some();
        let event = Event::ReplySent { plan_id: plan_id.to_string(), text: text.to_string(), citations, delivery };
        let at = self.clock.now();
        // The promises it makes go on record with it, due on the day they state.
        let promises = self.promises_of(case, plan_id, text, &decision, at)?;
        let mut events = vec![countersign_store::NewEvent {
            case_id: Some(case.id.clone()),
            kind: event.kind().to_string(),
            actor: by.clone(),
            at,
            payload: event.payload(),
        }];
        events.extend(promises);
        self.store.writer().append_batch(events)?;
        if posts {
            // Recorded first: an attempt cut short by a crash is settled at the next start.
            self.deliver_guarded(&case.id, true)?;
        }
        Ok(SentReply {
            plan_id: plan_id.to_string(),
            text: text.to_string(),
            by,
            at: at.to_string(),
            decision: Some(decision),
        })
    }
}

/// Read what an agent typed in the shape of the value it replaces: money
/// (`{"amount", "currency"}`) from `12.50` (same currency) or `12.50 EUR`; a number, a
/// boolean; a string as typed (trimmed); anything else as JSON.
pub fn typed_value(old: &Value, text: &str) -> Result<Value, String> {
    let text = text.trim();
    match old {
        Value::Object(_) if let Ok(was) = Money::from_json(old) => {
            let typed = match text.split_whitespace().count() {
                1 => format!("{text} {}", was.currency),
                _ => text.to_string(),
            };
            let money = typed.parse::<Money>().map_err(|e| format!("{text:?}: {e} (e.g. 12.50 or 12.50 USD)"))?;
            serde_json::to_value(money).map_err(|e| e.to_string())
        }
        Value::String(_) => Ok(Value::String(text.to_string())),
        Value::Number(_) => {
            text.parse::<serde_json::Number>().map(Value::Number).map_err(|_| format!("{text:?} is not a number"))
        }
        Value::Bool(_) => text.parse::<bool>().map(Value::Bool).map_err(|_| format!("{text:?} is not true or false")),
        _ => serde_json::from_str(text).map_err(|e| format!("{text:?} is not valid JSON: {e}")),
    }
}

/// A plan id without the revision suffixes edits add.
fn base_id(plan_id: &str) -> &str {
    plan_id.split(".edit-").next().unwrap_or(plan_id)
}
