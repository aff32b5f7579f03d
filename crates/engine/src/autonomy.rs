//! Earned autonomy over this log: each band's record ([`countersign_core::autonomy`])
//! read from the evidence, and the changes it proposes, each simulated over the same log
//! ([`crate::simulate`]). Nothing here changes the policy: a proposal is a draft an admin
//! saves, reads and signs as a new pack.

use std::path::Path;

use countersign_core::autonomy::{BandRecord, Gather, Proposal, Reviewed, propose, record};
use countersign_core::evidence::Event;
use countersign_core::policy::AutonomyPolicy;
use countersign_core::{PlanDecision, Policy};
use countersign_store::StepState;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::simulate::{Simulated, write_report};
use crate::{Engine, EngineError, Scope};

/// The record of every band and what it proposes, under the policy in force.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Autonomy {
    /// Whose steps were counted: this desk's log, or the desks of the team this lead sees.
    pub scope: String,
    pub policy_id: String,
    pub policy_version: u64,
    /// The policy's `[autonomy]` (`None`: it keeps no bands on record).
    pub settings: Option<AutonomyPolicy>,
    pub records: Vec<BandRecord>,
    pub proposals: Vec<Proposed>,
}

const THIS_DESK: &str = "this desk";

/// A proposal and its draft replayed over the same log.
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
    /// Each band's record under the policy in force, and a proposal, with its simulation,
    /// for every band that passes a bar: in this log, or with [`Scope::Team`] across the
    /// team, as the team service reads it.
    pub fn autonomy(&self, scope: Scope) -> Result<Autonomy, EngineError> {
        match scope {
            Scope::Desk => self.autonomy_of(None),
            Scope::Team => self.team_autonomy(),
        }
    }

    /// [`Engine::autonomy`], with the proposals (and their simulations) narrowed to the one
    /// named `only` when given.
    fn autonomy_of(&self, only: Option<&str>) -> Result<Autonomy, EngineError> {
        let running = self.running();
        let policy = &running.policy;
        let Some(settings) = &policy.autonomy else {
            return Ok(Autonomy {
                scope: THIS_DESK.into(),
                policy_id: policy.id.clone(),
                policy_version: policy.version,
                settings: None,
                records: Vec::new(),
                proposals: Vec::new(),
            });
        };
        let records = record(settings, &self.reviewed_steps()?, self.clock.now());
        let source = self.policy_source()?;
        let mut proposals = propose(policy, &source, &records);
        if let Some(key) = only {
            proposals.retain(|p| p.key == key);
        }
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
            scope: THIS_DESK.into(),
            policy_id: policy.id.clone(),
            policy_version: policy.version,
            settings: Some(settings.clone()),
            records,
            proposals,
        })
    }

    /// Earned autonomy across the team, as the team service reads it from every desk this
    /// lead may see under the newest pack (a lead's desk in a team).
    fn team_autonomy(&self) -> Result<Autonomy, EngineError> {
        let team = match self.team_ask(countersign_core::teamview::TeamQuery::Autonomy)? {
            countersign_core::teamview::TeamAnswer::Autonomy { autonomy } => autonomy,
            other => return Err(crate::teamview::unexpected(&other)),
        };
        let proposals = team
            .proposals
            .into_iter()
            .map(|p| Proposed {
                proposal: p.proposal,
                simulation: p.report.map(|report| Simulated {
                    digest: report.digest(),
                    report,
                    report_file: None,
                    simulation: countersign_core::simulate::Simulation::default(),
                }),
            })
            .collect();
        Ok(Autonomy {
            scope: format!("the team: {} desk(s) ({})", team.desks.len(), team.desks.join(", ")),
            policy_id: team.pack_id,
            policy_version: team.pack_version,
            settings: team.settings,
            records: team.records,
            proposals,
        })
    }

    /// Write proposal `key`'s draft policy and its simulation report into `dir`, for an
    /// admin to read and sign (`countersign policy sign … --simulation REPORT`); with
    /// [`Scope::Team`], the proposal the team's record makes.
    pub fn save_proposal(&self, key: &str, scope: Scope, dir: &Path) -> Result<SavedProposal, EngineError> {
        // On this desk, only the proposal asked for is simulated again.
        let autonomy = match scope {
            Scope::Desk => self.autonomy_of(Some(key))?,
            Scope::Team => self.team_autonomy()?,
        };
        let found = autonomy.proposals.iter().find(|p| p.proposal.key == key).ok_or_else(|| EngineError::NotFound {
            message: format!("no proposal {key:?}: `countersign policy autonomy` lists what the record proposes"),
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
    /// bank, an order sent back): evidence that counts against its band. Only a roster
    /// member in a role that countersigns supervisor steps, proving it with their
    /// passphrase (a role claimed at the seat is not proof).
    pub fn record_reversal(
        &self,
        plan_id: &str,
        step_id: &str,
        reason: &str,
        proof: &crate::Proof,
    ) -> Result<(), EngineError> {
        let running = self.running();
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(EngineError::BadInput {
                message: "a reversal needs a reason: what was undone, and how".into(),
            });
        }
        let step = self
            .store
            .step(plan_id, step_id)?
            .ok_or_else(|| EngineError::NotFound { message: format!("no step {step_id} of plan {plan_id}") })?;
        let who = self.prove(&crate::review::Proving::step(&step), proof)?;
        let leads = running.policy.approvers(countersign_core::Outcome::Supervisor);
        if !leads.contains(&who.role) {
            return Err(EngineError::NotPermitted {
                message: format!("recording a reversal is for {} ({} is {})", leads.join(" or "), who.id, who.role),
            });
        }
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
        self.append(Some(&step.case_id), &who.id, event)
    }

    /// The text of the policy in force, as loaded (a file changed since is refused: a
    /// draft must be an edit of what runs).
    fn policy_source(&self) -> Result<String, EngineError> {
        let running = self.running();
        let path = &running.workspace.policy;
        let text = std::fs::read_to_string(path).map_err(|e| EngineError::io(path, e))?;
        if countersign_core::policy::content_hash(&text) != running.policy.hash {
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
        let mut events = Vec::new();
        for kind in Gather::KINDS {
            if kind == "decided" {
                // Its recorded inputs are not read: the record needs the decision alone.
                for (seq, at, actor, DecidedLite { decision }) in self.typed_events_by::<DecidedLite>(kind)? {
                    events.push((seq, at, actor, Event::Decided { decision, inputs: None }));
                }
                continue;
            }
            for (seq, at, actor, payload) in self.typed_events_by::<Box<RawValue>>(kind)? {
                let event = Event::from_text(kind, payload.get()).map_err(|e| EngineError::Unreadable {
                    message: format!("event {seq} ({kind}) cannot be read: {e}"),
                })?;
                events.push((seq, at, actor, event));
            }
        }
        events.sort_by_key(|(seq, ..)| *seq);
        let mut gather = Gather::default();
        for (seq, at, actor, event) in &events {
            gather.add("", *seq, *at, actor, event);
        }
        Ok(gather.finish())
    }
}

#[derive(Deserialize)]
struct DecidedLite {
    decision: PlanDecision,
}

#[derive(Deserialize)]
struct StepRef {
    plan_id: String,
    step_id: String,
}
