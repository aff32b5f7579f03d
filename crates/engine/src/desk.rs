//! The desk: every use case a face offers a person, composed once and returning a view
//! ([`crate::views`]). A Tauri command and a CLI subcommand are adapters of a few lines
//! over these: parse, call one of them, render.
//!
//! Long use cases (planning, running steps) report [`Progress`] to a callback the face
//! passes (the app streams it over a channel; the CLI ignores it).

use std::collections::BTreeMap;
use std::path::Path;

use countersign_core::evidence::Verdict as EngineVerdict;
use countersign_core::model::Case;
use countersign_store::EventFilter;

use crate::cases::OpenedCase;
use crate::views::{
    self, BlobView, CaseView, Decision, EventView, ExportView, InboxItem, LeadProof, LogQuery, Metrics, PassageView,
    PauseView, Progress, ReplyCheck, Verdict, VerifyView, count,
};
use crate::{Engine, EngineError, Proof, Secret, StepRecord, StepRun, StepState};

/// A countersignature (or rejection), and what ran after it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Review {
    pub step: StepRecord,
    pub ran: Vec<StepRun>,
}

impl From<LeadProof> for Proof {
    fn from(p: LeadProof) -> Proof {
        Proof { id: p.id, passphrase: Secret::new(p.passphrase) }
    }
}

impl From<Verdict> for EngineVerdict {
    fn from(v: Verdict) -> EngineVerdict {
        match v {
            Verdict::Approve => EngineVerdict::Approved,
            Verdict::Reject => EngineVerdict::Rejected,
        }
    }
}

impl Engine {
    /// A case of the workspace's inbox by id: received from a source (its latest
    /// revision), or from the cases folder.
    pub fn case(&self, case_id: &str) -> Result<Case, EngineError> {
        let running = self.running();
        if let Some(case) = self.received_case(case_id)? {
            return Ok(case);
        }
        running
            .workspace
            .cases()?
            .into_iter()
            .find(|c| c.id == case_id)
            .ok_or_else(|| EngineError::NotFound { message: format!("no case {case_id} in this workspace") })
    }

    /// Every case of the inbox: the cases folder's, then those received from sources.
    pub fn cases(&self) -> Result<Vec<Case>, EngineError> {
        let running = self.running();
        let mut cases = running.workspace.cases()?;
        cases.extend(self.received_cases()?);
        Ok(cases)
    }

    /// Why every case is handed off, if it is: the policy turns the signal encoder on and its
    /// base cannot be read here (`countersign_host::encoder` fetches it). `None` when it can,
    /// or when the policy does not use it.
    pub fn signal_encoder_problem(&self) -> Option<String> {
        countersign_core::learned::check_encoder_for(&self.policy()).err()
    }

    /// Open cases: the workspace's cases, with the steps still waiting, the escalation
    /// signals the policy finds in the customer's words (before anything is planned), and
    /// whether the case was planned and its reply sent. Nothing is read from the platform
    /// here, so the inbox is quick however slow the platform is.
    pub fn inbox(&self) -> Result<Vec<InboxItem>, EngineError> {
        let running = self.running();
        let waiting = self.review_queue()?;
        let files = running.workspace.cases()?.into_iter().map(|c| (c, false));
        let cases: Vec<(Case, bool)> = files.chain(self.received_cases()?.into_iter().map(|c| (c, true))).collect();
        self.read_ahead(cases.iter().map(|(c, _)| c));
        cases
            .into_iter()
            .map(|(case, received)| {
                let plans = self.case_plans(&case.id)?;
                let scan = self.case_scan(&case);
                let signals = &scan.signals;
                Ok(InboxItem {
                    channel: case.channel.to_string(),
                    customer_id: case.customer.as_ref().map(|c| c.id.clone()),
                    // Intake wrote the claim from the platform's own answer; a case file's
                    // claim counts for nothing.
                    identity: case
                        .customer
                        .as_ref()
                        .filter(|c| received && c.identity == countersign_core::model::IdentityStatus::Verified)
                        .map(|_| countersign_core::model::IdentityLevel::Strong.to_string()),
                    subject: case.subject.clone(),
                    last_message: case.customer_text().last().unwrap_or_default().to_string(),
                    intent: plans.last().map(|(p, _)| p.intent.clone()),
                    waiting: count(waiting.iter().filter(|s| s.case_id == case.id).count()),
                    handoff: !signals.is_empty(),
                    signals: signals.iter().map(|s| format!("{}: {}", views::snake(&s.category), s.matched)).collect(),
                    unread_languages: scan.unread.iter().map(|u| u.language.clone()).collect(),
                    opened: !plans.is_empty(),
                    replied: self.sent_reply(&case.id)?.is_some(),
                    case_id: case.id,
                })
            })
            .collect()
    }

    /// The Case screen as the case stands now (its plan in force; nothing is planned
    /// here), with the outcome of `runs` just made.
    pub fn case_view(&self, case_id: &str, runs: &[StepRun]) -> Result<CaseView, EngineError> {
        let case = self.case(case_id)?;
        let opened = self.open_case(&case)?;
        self.view_of(&case, &opened, runs)
    }

    fn view_of(&self, case: &Case, opened: &OpenedCase, runs: &[StepRun]) -> Result<CaseView, EngineError> {
        let queue = self.case_steps(&case.id)?;
        let events = self.log_case(&case.id)?;
        let delivery = self.reply_delivery(&case.id)?;
        let sent = self.sent_reply(&case.id)?.map(|r| views::sent(r, delivery));
        Ok(views::case_view(case, opened, &queue, &events, runs, sent))
    }

    /// Run the case's approved steps, reporting each.
    fn run_reporting(&self, case_id: &str, progress: &dyn Fn(Progress)) -> Result<Vec<StepRun>, EngineError> {
        for s in self.case_steps(case_id)?.iter().filter(|s| s.state == StepState::Approved) {
            progress(Progress::Running { step_id: s.step_id.clone(), action: s.action.clone() });
        }
        let runs = self.run_approved(case_id)?;
        for r in &runs {
            progress(Progress::Ran {
                step_id: r.step_id.clone(),
                state: r.state.as_str().to_string(),
                error: r.error.clone(),
            });
        }
        Ok(runs)
    }

    /// A plan was decided: report it, run what may run on its own, show the case.
    fn decided(&self, case: &Case, opened: &OpenedCase, progress: &dyn Fn(Progress)) -> Result<CaseView, EngineError> {
        progress(Progress::Deciding { plan_id: opened.plan.id.clone(), steps: count(opened.plan.steps.len()) });
        let runs = self.run_reporting(&case.id, progress)?;
        progress(Progress::Done);
        self.view_of(case, opened, &runs)
    }

    /// Open a case: the first time, the workspace's planner plans it (governed reads, cited
    /// reply), the policy decides, the evidence is recorded and what may run on its own
    /// runs. After that, the plan in force is shown as recorded.
    pub fn open_case_view(&self, case_id: &str, progress: &dyn Fn(Progress)) -> Result<CaseView, EngineError> {
        let case = self.case(case_id)?;
        // A case from a source is claimed there first; a source that cannot be reached
        // does not keep the agent from reading the case (sending checks again).
        if let Err(e) = self.claim(case_id) {
            tracing::warn!(case = case_id, error = %e, "could not claim the case at its source");
        }
        progress(Progress::Planning { case_id: case_id.to_string() });
        let opened = self.open_case(&case)?;
        self.decided(&case, &opened, progress)
    }

    /// Record that the agent verified the case's customer themselves (`how`: a one-time
    /// code sent to the account's contact, a call back), and show the case. The steps
    /// already decided keep their decisions; planning again decides them on it.
    pub fn verify_identity_view(&self, case_id: &str, how: &str) -> Result<CaseView, EngineError> {
        let case = self.case(case_id)?;
        let Some(customer) = case.customer.as_ref() else {
            return Err(EngineError::BadInput {
                message: format!(
                    "case {case_id} names no customer account: identify them first (a look-up by e-mail, or by name and zip code)"
                ),
            });
        };
        self.record_identity_check(case_id, &customer.id, how)?;
        self.case_view(case_id, &[])
    }

    /// Plan the case again (the platform's data may have changed); waiting steps the new
    /// plan does not keep are invalidated.
    pub fn replan_case_view(&self, case_id: &str, progress: &dyn Fn(Progress)) -> Result<CaseView, EngineError> {
        let case = self.case(case_id)?;
        progress(Progress::Planning { case_id: case_id.to_string() });
        let opened = self.plan_again(&case)?;
        self.decided(&case, &opened, progress)
    }

    /// Edit a waiting step's parameters (as typed); the policy decides the new revision.
    pub fn edit_step_view(
        &self,
        case_id: &str,
        (plan_id, step_id): (&str, &str),
        changes: &BTreeMap<String, String>,
        reason: &str,
        progress: &dyn Fn(Progress),
    ) -> Result<CaseView, EngineError> {
        let case = self.case(case_id)?;
        let opened = self.edit_step(&case, plan_id, step_id, changes, reason)?;
        self.decided(&case, &opened, progress)
    }

    /// The policy's decision on the reply as the agent has edited it (records nothing).
    pub fn check_reply_view(&self, case_id: &str, plan_id: &str, text: &str) -> Result<ReplyCheck, EngineError> {
        Ok(views::reply_check(&self.check_reply(&self.case(case_id)?, plan_id, text)?, text))
    }

    /// Send the reply as edited. `seen` is the decision the agent was shown: a stricter one
    /// now (a promise typed since) is refused with `Conflict`.
    pub fn send_reply_view(
        &self,
        case_id: &str,
        plan_id: &str,
        text: &str,
        seen: Decision,
        lead: Option<LeadProof>,
    ) -> Result<CaseView, EngineError> {
        let proof = lead.map(Proof::from);
        self.send_reply(&self.case(case_id)?, plan_id, text, seen, proof.as_ref())?;
        self.case_view(case_id, &[])
    }

    /// Record a pasted conversation as a case and open it (planned, decided; what may run
    /// on its own runs). The same paste again opens the same case.
    pub fn paste_case_view(
        &self,
        pasted: &crate::intake::Pasted,
        progress: &dyn Fn(Progress),
    ) -> Result<CaseView, EngineError> {
        let case = self.paste_case(pasted)?;
        self.open_case_view(&case.id, progress)
    }

    /// Post the case's sent reply to its source if it is not delivered yet (an uncertain
    /// earlier attempt is settled first; see [`crate::delivery`]).
    pub fn deliver_reply_view(&self, case_id: &str) -> Result<CaseView, EngineError> {
        self.deliver_reply(case_id)?;
        self.case_view(case_id, &[])
    }

    /// Send the reply as the command line does: the text is decided as written, and that
    /// decision is what the sender saw (a `supervisor` reply takes a lead's `proof`).
    pub fn send_reply_as_checked(
        &self,
        case_id: &str,
        plan_id: &str,
        text: &str,
        lead: Option<LeadProof>,
    ) -> Result<CaseView, EngineError> {
        // The sender sees the decision made at send time, whatever it is: `send_reply`
        // decides the text once and still refuses `forbid`/`recommend` and needs a proof
        // for `supervisor` (deciding it here first would read the platform twice).
        self.send_reply_view(case_id, plan_id, text, Decision::Forbid, lead)
    }

    /// Countersign or reject a waiting step (as a roster member with `lead`); an approved
    /// step runs at once.
    pub fn review_step_view(
        &self,
        case_id: &str,
        (plan_id, step_id): (&str, &str),
        (verdict, reason): (Verdict, &str),
        lead: Option<LeadProof>,
        progress: &dyn Fn(Progress),
    ) -> Result<CaseView, EngineError> {
        let proof = lead.map(Proof::from);
        let review = self.countersign((plan_id, step_id), verdict.into(), reason, proof.as_ref(), false)?;
        let runs = match review.step.state {
            StepState::Approved => self.run_reporting(&review.step.case_id, progress)?,
            _ => Vec::new(),
        };
        progress(Progress::Done);
        self.case_view(case_id, &runs)
    }

    /// Try a failed or not-applied step again (see [`Engine::retry_step`]), and show the case.
    pub fn retry_step_view(&self, case_id: &str, (plan_id, step_id): (&str, &str)) -> Result<CaseView, EngineError> {
        let run = self.retry_step(plan_id, step_id)?;
        self.case_view(case_id, &[run])
    }

    /// A team lead settles a step whose outcome is unknown by hand (see
    /// [`Engine::settle_step`]), and the case is shown.
    pub fn settle_step_view(
        &self,
        case_id: &str,
        (plan_id, step_id): (&str, &str),
        (applied, reason): (bool, &str),
        lead: LeadProof,
    ) -> Result<CaseView, EngineError> {
        let run = self.settle_step(plan_id, step_id, applied, reason, &Proof::from(lead))?;
        self.case_view(case_id, &[run])
    }

    /// Countersign or reject a waiting step, as the seat's operator or (with `proof`) as a
    /// roster member; with `run`, the case's approved steps then run at once.
    pub fn countersign(
        &self,
        (plan_id, step_id): (&str, &str),
        verdict: EngineVerdict,
        reason: &str,
        proof: Option<&Proof>,
        run: bool,
    ) -> Result<Review, EngineError> {
        let step = match proof {
            Some(p) => self.review_as(plan_id, step_id, verdict, reason, p)?,
            None => self.review(plan_id, step_id, verdict, reason)?,
        };
        let ran = if run && step.state == StepState::Approved { self.run_approved(&step.case_id)? } else { Vec::new() };
        Ok(Review { step, ran })
    }

    /// A screenshot or page snapshot named in the evidence, by its SHA-256.
    pub fn blob_view(&self, hash: &str) -> Result<BlobView, EngineError> {
        let blob = self
            .blob(hash)?
            .ok_or_else(|| EngineError::NotFound { message: format!("no blob {hash} in this evidence store") })?;
        Ok(views::blob(hash, blob))
    }

    /// The cited passage behind citation `[index]` of the case's reply, with whether the
    /// citation resolves.
    pub fn citation_view(&self, case_id: &str, index: u32) -> Result<PassageView, EngineError> {
        let plan = self.open_case(&self.case(case_id)?)?.plan;
        let citation =
            plan.reply.as_ref().and_then(|r| r.citations.get((index as usize).wrapping_sub(1))).ok_or_else(|| {
                EngineError::NotFound { message: format!("the reply of case {case_id} has no citation [{index}]") }
            })?;
        let resolution = self.resolve_citation(citation)?;
        let anchor = match &resolution {
            crate::knowledge::CitationResolution::Resolved { anchor, .. } => anchor.clone(),
            _ => citation.anchor.clone(),
        };
        let article = self.kb_article(&citation.article_id, None)?;
        let passage = article.passages.iter().find(|p| Some(&p.anchor) == anchor.as_ref());
        Ok(PassageView {
            article_id: article.id.clone(),
            title: article.title.clone(),
            version: article.version,
            anchor: passage.map(|p| p.anchor.clone()),
            heading: passage.map(|p| p.heading.clone()),
            text: passage.map_or_else(
                || {
                    article
                        .passages
                        .iter()
                        .map(|p| format!("## {}\n{}", p.heading, p.text))
                        .collect::<Vec<_>>()
                        .join("\n\n")
                },
                |p| p.text.clone(),
            ),
            resolved: resolution.is_resolved(),
            resolution: resolution.describe(),
        })
    }

    /// A case's evidence timeline, oldest first.
    pub fn case_timeline(&self, case_id: &str) -> Result<Vec<EventView>, EngineError> {
        Ok(self.log_case(case_id)?.into_iter().map(views::event).collect())
    }

    /// Browse and search the evidence log (oldest first; `limit` keeps the newest).
    pub fn log_events(&self, query: LogQuery) -> Result<Vec<EventView>, EngineError> {
        let filter = EventFilter {
            case_id: query.case_id.filter(|s| !s.trim().is_empty()),
            kind: query.kind.filter(|s| !s.trim().is_empty()),
            text: query.text.filter(|s| !s.trim().is_empty()),
            ..EventFilter::default()
        };
        let mut events: Vec<EventView> = self.log_list(&filter)?.into_iter().map(views::event).collect();
        if let Some(limit) = query.limit {
            let keep = events.len().saturating_sub(limit as usize);
            events.drain(..keep);
        }
        Ok(events)
    }

    /// [`Engine::verify`] as the team lead's screen shows it: the chain, then the first
    /// checkpoint that does not hold.
    pub fn verify_view(&self) -> Result<VerifyView, EngineError> {
        Ok(views::verify(&self.verify()?))
    }

    /// Export a self-verifying bundle into `dir` (which must not exist or be empty); it
    /// counts as verified when the bundle's chain and its signed checkpoints both hold.
    pub fn export_view(&self, dir: &Path) -> Result<ExportView, EngineError> {
        let s = self.log_export(dir)?;
        Ok(ExportView {
            dir: s.dir.display().to_string(),
            count: views::count_u64(s.manifest.count),
            head: s.manifest.head.to_hex(),
            verified: s.report.ok && crate::verify_bundle(&s.dir)?.ok(),
        })
    }

    /// Export a bundle into a new folder under `dir`, named by when it was made.
    pub fn export_into(&self, dir: &Path) -> Result<ExportView, EngineError> {
        let stamp = self.clock.now().strftime("%Y%m%dT%H%M%S%.3fZ").to_string();
        self.export_view(&dir.join(format!("bundle-{stamp}")))
    }

    /// The team lead's metrics, from the step queue and the log's decisions and plans.
    pub fn metrics(&self) -> Result<Metrics, EngineError> {
        let steps = self.all_steps()?;
        let mut events = self.events(&EventFilter { kind: Some("decided".into()), ..EventFilter::default() })?;
        events.extend(self.events(&EventFilter { kind: Some("plan_proposed".into()), ..EventFilter::default() })?);
        Ok(views::metrics(&steps, &events))
    }

    /// Pauses, newest first: active ones, and with `all` the cleared ones too.
    pub fn pause_views(&self, all: bool) -> Result<Vec<PauseView>, EngineError> {
        let mut out: Vec<PauseView> = self
            .pause_history()?
            .into_iter()
            .filter(|r| all || r.cleared.is_none())
            .map(|r| PauseView {
                id: r.pause.id,
                scope: r.pause.scope,
                value: r.pause.value,
                reason: r.pause.reason,
                set_by: r.pause.set_by,
                set_at: r.pause.set_at.to_string(),
                cleared_by: r.cleared.as_ref().map(|c| c.by.clone()),
                cleared_at: r.cleared.as_ref().map(|c| c.at.to_string()),
                cleared_reason: r.cleared.map(|c| c.reason),
            })
            .collect();
        out.reverse();
        Ok(out)
    }
}
