//! Earned autonomy over this log: each band's record ([`countersign_core::autonomy`])
//! read from the evidence, and the changes it proposes, each simulated over the same log
//! ([`crate::simulate`]). Nothing here changes the policy: a proposal is a draft an admin
//! saves, reads and signs as a new pack.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use countersign_core::autonomy::{BandRecord, Proposal, Review, Reviewed, propose, record};
use countersign_core::evidence::{Event, StepOutcome, Verdict};
use countersign_core::model::{Channel, Operator};
use countersign_core::policy::{AutonomyPolicy, Outcome};
use countersign_core::{PlanDecision, Policy};
use countersign_store::StepState;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::cases::AGENT_EDIT;
use crate::simulate::{CasePayload, PlanPayload, Simulated, write_report};
use crate::{Engine, EngineError};

/// The record of every band and what it proposes, under the policy in force.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Autonomy {
    pub policy_id: String,
    pub policy_version: u64,
    /// The policy's `[autonomy]` (`None`: it keeps no bands on record).
    pub settings: Option<AutonomyPolicy>,
    pub records: Vec<BandRecord>,
    pub proposals: Vec<Proposed>,
}

/// A proposal and its draft replayed over this log.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Proposed {
    pub proposal: Proposal,
    /// `None` for a proposal whose change could not be written.
    pub simulation: Option<Simulated>,
}

/// A proposal's draft and its simulation report, saved for `policy sign --simulation`.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SavedProposal {
    pub key: String,
    pub draft_file: String,
    pub report_file: String,
    /// `sha256:` of the report (what the signed manifest will name).
    pub report_digest: String,
    pub version: u64,
}

impl Engine {
    /// Each band's record in this log under the policy in force, and a proposal, with its
    /// simulation, for every band that passes a bar.
    pub fn autonomy(&self) -> Result<Autonomy, EngineError> {
        let policy = &self.policy;
        let Some(settings) = &policy.autonomy else {
            return Ok(Autonomy {
                policy_id: policy.id.clone(),
                policy_version: policy.version,
                settings: None,
                records: Vec::new(),
                proposals: Vec::new(),
            });
        };
        let records = record(settings, &self.reviewed_steps()?, self.clock.now());
        let source = self.policy_source()?;
        let proposals = propose(policy, &source, &records);
        let drafts: Vec<Option<Policy>> = proposals
            .iter()
            .map(|p| p.draft.as_deref().map(|d| Policy::parse("draft", d)).transpose())
            .collect::<Result<_, _>>()?;
        let mut simulations = self.simulate_each(&drafts.iter().flatten().collect::<Vec<_>>())?.into_iter();
        let proposals = proposals
            .into_iter()
            .zip(drafts)
            .map(|(proposal, draft)| Proposed { proposal, simulation: draft.and_then(|_| simulations.next()) })
            .collect();
        Ok(Autonomy {
            policy_id: policy.id.clone(),
            policy_version: policy.version,
            settings: Some(settings.clone()),
            records,
            proposals,
        })
    }

    /// Write proposal `key`'s draft policy and its simulation report into `dir`, for an
    /// admin to read and sign (`countersign policy sign … --simulation REPORT`).
    pub fn save_proposal(&self, key: &str, dir: &Path) -> Result<SavedProposal, EngineError> {
        let autonomy = self.autonomy()?;
        let known = || autonomy.proposals.iter().map(|p| p.proposal.key.clone()).collect::<Vec<_>>().join(", ");
        let found = autonomy.proposals.iter().find(|p| p.proposal.key == key).ok_or_else(|| EngineError::NotFound {
            message: format!("no proposal {key:?} (the record proposes: {})", known()),
        })?;
        let (Some(draft), Some(simulated)) = (&found.proposal.draft, &found.simulation) else {
            return Err(EngineError::Conflict {
                message: format!(
                    "proposal {key} has no draft: {}",
                    found.proposal.blocked.as_deref().unwrap_or("its change cannot be written")
                ),
            });
        };
        std::fs::create_dir_all(dir).map_err(|e| EngineError::io(dir, e))?;
        let slug: String =
            key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect();
        let draft_file = dir.join(format!("{slug}.policy.toml"));
        let report_file = dir.join(format!("{slug}.simulation.json"));
        crate::simulate::write_whole(&draft_file, draft.as_bytes())?;
        write_report(&report_file, &simulated.report)?;
        Ok(SavedProposal {
            key: key.to_string(),
            draft_file: draft_file.display().to_string(),
            report_file: report_file.display().to_string(),
            report_digest: simulated.digest.clone(),
            version: simulated.report.draft.version,
        })
    }

    /// A lead records that a step that ran was undone afterwards (a refund reversed by the
    /// bank, an order sent back): evidence that counts against its band. Only a role that
    /// countersigns supervisor steps may; recording one can only hold autonomy back.
    pub fn record_reversal(&self, plan_id: &str, step_id: &str, reason: &str) -> Result<(), EngineError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(EngineError::BadInput {
                message: "a reversal needs a reason: what was undone, and how".into(),
            });
        }
        if !self.policy.supervisor_roles.contains(&self.operator.role) {
            return Err(EngineError::NotPermitted {
                message: format!(
                    "recording a reversal is for {}; this seat is {:?}",
                    self.policy.supervisor_roles.join(" or "),
                    self.operator.role
                ),
            });
        }
        let step = self
            .store
            .step(plan_id, step_id)?
            .ok_or_else(|| EngineError::NotFound { message: format!("no step {step_id} of plan {plan_id}") })?;
        if step.state != StepState::Succeeded {
            return Err(EngineError::Conflict {
                message: format!(
                    "step {step_id} of plan {plan_id} is {}: only a step that ran can be reversed",
                    step.state.as_str()
                ),
            });
        }
        let done = self.typed_events::<StepRef>("step_reversed")?;
        if done.iter().any(|(_, _, r)| r.plan_id == plan_id && r.step_id == step_id) {
            return Err(EngineError::Conflict {
                message: format!("step {step_id} of plan {plan_id} is already recorded as reversed"),
            });
        }
        let event =
            Event::StepReversed { plan_id: plan_id.into(), step_id: step_id.into(), reason: reason.to_string() };
        self.append(Some(&step.case_id), &self.operator.id.clone(), event)
    }

    /// The text of the policy in force, as loaded (a file changed since is refused: a
    /// draft must be an edit of what runs).
    fn policy_source(&self) -> Result<String, EngineError> {
        let path = &self.workspace.policy;
        let text = std::fs::read_to_string(path).map_err(|e| EngineError::io(path, e))?;
        if countersign_core::policy::content_hash(&text) != self.policy.hash {
            return Err(EngineError::Conflict {
                message: format!(
                    "{} changed since the policy was loaded: open the workspace again before drafting a change",
                    path.display()
                ),
            });
        }
        Ok(text)
    }

    /// Every executable step this log decided, with what a person did with it and
    /// whether it was reversed since: what a band's record counts.
    fn reviewed_steps(&self) -> Result<Vec<Reviewed>, EngineError> {
        let mut channels: HashMap<String, (u64, Channel)> = HashMap::new();
        for kind in ["case_opened", "case_received"] {
            for (seq, _, CasePayload { case }) in self.typed_events::<CasePayload>(kind)? {
                let slot = channels.entry(case.id.clone()).or_insert((seq, case.channel));
                if seq >= slot.0 {
                    *slot = (seq, case.channel);
                }
            }
        }
        // Each step's latest decision.
        let mut decided: BTreeMap<(String, String), (u64, Timestamp, String, countersign_core::StepDecision)> =
            BTreeMap::new();
        for (seq, at, DecidedLite { decision }) in self.typed_events::<DecidedLite>("decided")? {
            for step in decision.steps {
                decided.insert(
                    (decision.plan_id.clone(), step.step_id.clone()),
                    (seq, at, decision.case_id.clone(), step),
                );
            }
        }
        // Steps a person wrote (an agent's edit) are theirs, not the planner's; the step
        // they replaced counts as edited.
        let mut human = std::collections::BTreeSet::new();
        let mut edited: HashMap<(String, String), String> = HashMap::new();
        for (seq, _, actor, PlanPayload { plan }) in self.typed_events_by::<PlanPayload>("plan_proposed")? {
            if plan.planner != AGENT_EDIT {
                continue;
            }
            for step in plan
                .steps
                .iter()
                .filter(|s| s.params.values().any(|p| p.source == countersign_core::model::Provenance::Agent))
            {
                human.insert((plan.id.clone(), step.id.clone()));
                let replaced = decided
                    .iter()
                    .filter(|((p, s), (at_seq, _, case, _))| {
                        *p != plan.id && *s == step.id && *case == plan.case_id && *at_seq < seq
                    })
                    .max_by_key(|(_, (at_seq, ..))| *at_seq)
                    .map(|(k, _)| k.clone());
                if let Some(k) = replaced {
                    edited.insert(k, actor.clone());
                }
            }
        }
        let mut reviews: HashMap<(String, String), (Timestamp, Verdict, String)> = HashMap::new();
        for (_, at, r) in self.typed_events::<ReviewLite>("review_decided")? {
            reviews.insert((r.plan_id, r.step_id), (at, r.verdict, r.by.id));
        }
        let mut ran: HashMap<(String, String), (Timestamp, StepOutcome)> = HashMap::new();
        for (_, at, f) in self.typed_events::<FinishedLite>("step_finished")? {
            ran.insert((f.plan_id, f.step_id), (at, f.outcome));
        }
        let mut reversed: HashMap<(String, String), (Timestamp, String)> = HashMap::new();
        for (_, at, actor, r) in self.typed_events_by::<StepRef>("step_reversed")? {
            reversed.insert((r.plan_id, r.step_id), (at, format!("{actor} recorded: {}", r.reason)));
        }
        let mut states: HashMap<String, Vec<(Timestamp, String)>> = HashMap::new();
        for (_, at, r) in self.typed_events::<ReceivedLite>("case_received")? {
            states.entry(r.case.id).or_default().push((at, r.state));
        }

        let mut out = Vec::new();
        for ((plan_id, step_id), (_, at, case_id, step)) in decided {
            let key = (plan_id.clone(), step_id.clone());
            if !step.decision.executable() || human.contains(&key) {
                continue;
            }
            let Some((_, channel)) = channels.get(&case_id).copied() else { continue };
            let review = if let Some(by) = edited.get(&key) {
                Review::Edited { by: by.clone() }
            } else if let Some((when, verdict, by)) = reviews.get(&key) {
                match verdict {
                    Verdict::Approved => Review::Unchanged { by: by.clone(), at: *when },
                    Verdict::Rejected => Review::Rejected { by: by.clone() },
                }
            } else if step.decision == Outcome::Auto && ran.contains_key(&key) {
                Review::Ran
            } else {
                // Waiting, expired, or decided again under another plan or policy.
                continue;
            };
            let reversal = match ran.get(&key) {
                Some((done, StepOutcome::Succeeded)) => {
                    reversed.get(&key).cloned().or_else(|| reopened(states.get(&case_id), *done))
                }
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
        Ok(out)
    }
}

/// The conversation was resolved after the step ran and then opened again at the source:
/// the complaint came back.
fn reopened(states: Option<&Vec<(Timestamp, String)>>, ran: Timestamp) -> Option<(Timestamp, String)> {
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

#[derive(Deserialize)]
struct DecidedLite {
    decision: PlanDecision,
}

#[derive(Deserialize)]
struct ReviewLite {
    plan_id: String,
    step_id: String,
    verdict: Verdict,
    by: Operator,
}

#[derive(Deserialize)]
struct FinishedLite {
    plan_id: String,
    step_id: String,
    outcome: StepOutcome,
}

#[derive(Deserialize)]
struct StepRef {
    plan_id: String,
    step_id: String,
    #[serde(default)]
    reason: String,
}

#[derive(Deserialize)]
struct ReceivedLite {
    state: String,
    case: CaseId,
}

#[derive(Deserialize)]
struct CaseId {
    id: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(t: &str) -> Timestamp {
        t.parse().unwrap()
    }

    #[test]
    fn a_conversation_resolved_and_opened_again_after_the_step_ran_is_a_reversal() {
        let ran = at("2026-11-21T10:00:00Z");
        let states = |s: &[(&str, &str)]| s.iter().map(|(t, st)| (at(t), st.to_string())).collect::<Vec<_>>();
        let back = states(&[
            ("2026-11-21T09:00:00Z", "open"),
            ("2026-11-21T11:00:00Z", "resolved"),
            ("2026-11-22T08:00:00Z", "open"),
        ]);
        assert_eq!(reopened(Some(&back), ran).map(|(t, _)| t), Some(at("2026-11-22T08:00:00Z")));
        // Resolved before it ran, open after: the step answered an open complaint.
        let before = states(&[("2026-11-21T09:00:00Z", "resolved"), ("2026-11-21T11:00:00Z", "open")]);
        assert_eq!(reopened(Some(&before), ran), None);
        // Resolved and never opened again.
        let settled = states(&[("2026-11-21T11:00:00Z", "resolved")]);
        assert_eq!(reopened(Some(&settled), ran), None);
        assert_eq!(reopened(None, ran), None);
    }
}
