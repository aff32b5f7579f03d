//! The lead's team view from this desk: a question signed with this desk's key
//! ([`countersign_core::teamview::ViewAsk`]), asked of the team service through the
//! [`crate::team::TeamPort`], its answer turned into views. Every event the service sends
//! is checked against its hash (the log's own rule) before it is shown or kept, which
//! catches a body altered in the team's store or on the way without its hash. It does not
//! catch a store that recomputed the hashes as well, nor events left out: a case's events
//! are not consecutive in a desk's chain. What holds a desk's history is its own log
//! checked against the team's witnessed checkpoint (`countersign log verify`).

use std::path::{Path, PathBuf};

use countersign_core::evidence::Event;
use countersign_core::team::EscalationVerdict;
use countersign_core::teamview::ViewAsk;
pub use countersign_core::teamview::{
    CaseBundle, DeletionRecord, EscalationVerdicts, PromiseCounts, StepFilter, StepRow, TeamAlert, TeamAnswer,
    TeamCounts, TeamEvent, TeamMetrics, TeamQuery, UnknownOutcomes, ViewRecord,
};
use countersign_store::Hash;
use countersign_trust::team as signing;
use serde::Serialize;

use crate::views::{EventView, event};
use crate::{Engine, EngineError, LoggedEvent};

/// Whose decisions a lead's reading covers (earned autonomy, a draft's simulation): this
/// desk's own log, or every desk of the team this lead may see, read by the team service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Desk,
    Team,
}

impl Scope {
    /// `--team` on the command line, the team switch in the app.
    pub fn team(team: bool) -> Scope {
        if team { Scope::Team } else { Scope::Desk }
    }
}

/// A page of the team's decided steps.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TeamStepsView {
    pub rows: Vec<StepRow>,
    /// The filter's `after` for the next page; absent on the last.
    pub next: Option<String>,
}

/// One event of a case from one of the team's desks.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TeamEventView {
    pub desk: String,
    /// What it says, in a line.
    pub summary: String,
    pub event: EventView,
}

/// A case's timeline across the team's desks, every event checked against its hash.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TeamCaseView {
    pub case_id: String,
    pub events: Vec<TeamEventView>,
}

/// Who saw what, and what retention deleted.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TeamAudit {
    pub views: Vec<ViewRecord>,
    pub deletions: Vec<DeletionRecord>,
}

/// A case's bundle, written where the lead asked.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TeamExportView {
    pub path: String,
    pub events: u32,
    pub desks: Vec<String>,
}

impl Engine {
    /// Ask the team service `query` as this desk's lead; a refusal is an error with the
    /// service's reason.
    pub fn team_ask(&self, query: TeamQuery) -> Result<TeamAnswer, EngineError> {
        let team = self.team.as_ref().ok_or_else(|| EngineError::Config {
            message: "this desk is not in a team: the team view needs one (`countersign team join`)".into(),
        })?;
        self.check_team_signer(team).map_err(|_| EngineError::NotPermitted {
            message: format!(
                "{} may not see the team's evidence: only a lead on the signed pack's roster, at the desk whose key \
                 the roster lists for them, may",
                self.operator.id
            ),
        })?;
        let settings = team.settings();
        let ask = ViewAsk {
            team: settings.team.clone(),
            device: settings.device.clone(),
            by: self.operator.id.clone(),
            query,
            at: self.clock.now(),
            nonce: signing::nonce()?,
        };
        let entry = signing::sign(signing::VIEW_DOMAIN, &ask, &settings.signer)?;
        let body = serde_json::to_vec(&entry)
            .map_err(|e| EngineError::Config { message: format!("serialising a team-view ask: {e}") })?;
        let bytes = team.port().ask_view(&settings.device, body).map_err(|message| EngineError::TeamUnreachable {
            message: format!("team {:?}: {message}", settings.team),
        })?;
        let answer: TeamAnswer = serde_json::from_slice(&bytes).map_err(|e| EngineError::TeamUnreachable {
            message: format!("the team service's answer is not one this version reads: {e}"),
        })?;
        match answer {
            TeamAnswer::Refused { code, reason } => Err(match code.as_str() {
                "not_a_lead" | "not_granted" => EngineError::NotPermitted { message: reason },
                "not_found" => EngineError::NotFound { message: reason },
                "too_large" => EngineError::BadInput { message: reason },
                "bad_ask" | "stale" => EngineError::BadInput { message: reason },
                _ => EngineError::TeamUnreachable { message: format!("{reason} ({code})") },
            }),
            other => Ok(other),
        }
    }

    /// The team's decided steps that `filter` picks, newest first.
    pub fn team_steps(&self, filter: StepFilter) -> Result<TeamStepsView, EngineError> {
        match self.team_ask(TeamQuery::Steps { filter })? {
            TeamAnswer::Steps { rows, next } => Ok(TeamStepsView { rows, next }),
            other => Err(unexpected(&other)),
        }
    }

    /// A case's timeline from every desk of the team this lead may see.
    pub fn team_case(&self, case_id: &str) -> Result<TeamCaseView, EngineError> {
        match self.team_ask(TeamQuery::Case { case_id: case_id.to_string() })? {
            TeamAnswer::Case { case_id, events } => {
                let events = events
                    .into_iter()
                    .map(|e| {
                        let logged = checked(&e)?;
                        Ok(TeamEventView { desk: e.desk, summary: logged.summary(), event: event(logged) })
                    })
                    .collect::<Result<_, EngineError>>()?;
                Ok(TeamCaseView { case_id, events })
            }
            other => Err(unexpected(&other)),
        }
    }

    /// A blob (screenshot, page snapshot) an event of the case on `desk` names: its media
    /// type and bytes.
    pub fn team_blob(&self, desk: &str, case_id: &str, hash: &str) -> Result<(String, Vec<u8>), EngineError> {
        let query = TeamQuery::Blob { device: desk.to_string(), case_id: case_id.to_string(), hash: hash.to_string() };
        match self.team_ask(query)? {
            TeamAnswer::Blob { content_type, data } => {
                let bytes = hex::decode(&data).map_err(|e| EngineError::TeamUnreachable {
                    message: format!("the team service's blob is not hex: {e}"),
                })?;
                let sum = countersign_trust::keys::sha256(&bytes);
                if !hex::encode(sum).eq_ignore_ascii_case(hash) {
                    return Err(EngineError::TeamUnreachable {
                        message: format!("the team service sent blob {hash} with other contents"),
                    });
                }
                Ok((content_type, bytes))
            }
            other => Err(unexpected(&other)),
        }
    }

    /// [`Engine::team_blob`] as the app shows a blob.
    pub fn team_blob_view(&self, desk: &str, case_id: &str, hash: &str) -> Result<crate::views::BlobView, EngineError> {
        let (media_type, data) = self.team_blob(desk, case_id, hash)?;
        Ok(crate::views::blob(hash, countersign_store::Blob { hash: hash.to_string(), media_type, data }))
    }

    /// Export a case's evidence from the team into the file `to` (a new file, or a folder
    /// to put `<case>.team.json` in): every event checked against its hash first.
    pub fn team_export(&self, case_id: &str, to: &Path) -> Result<TeamExportView, EngineError> {
        let bundle: CaseBundle = match self.team_ask(TeamQuery::Export { case_id: case_id.to_string() })? {
            TeamAnswer::Export { bundle } => bundle,
            other => return Err(unexpected(&other)),
        };
        for e in &bundle.events {
            checked(e)?;
        }
        let stamp = self.clock.now().strftime("%Y%m%dT%H%M%SZ").to_string();
        let path: PathBuf =
            if to.is_dir() { to.join(format!("{}.team.{stamp}.json", safe_name(case_id))) } else { to.into() };
        if path.exists() {
            return Err(EngineError::BadInput {
                message: format!("{} exists already: give a new file", path.display()),
            });
        }
        let text = serde_json::to_string_pretty(&bundle)
            .map_err(|e| EngineError::Config { message: format!("serialising the bundle: {e}") })?;
        let aside = path.with_extension("partial");
        let io = |e: std::io::Error| EngineError::BadInput { message: format!("{}: {e}", path.display()) };
        std::fs::write(&aside, text).map_err(io)?;
        std::fs::rename(&aside, &path).map_err(io)?;
        let mut desks: Vec<String> = bundle.events.iter().map(|e| e.desk.clone()).collect();
        desks.sort();
        desks.dedup();
        Ok(TeamExportView {
            path: path.display().to_string(),
            events: u32::try_from(bundle.events.len()).unwrap_or(u32::MAX),
            desks,
        })
    }

    /// The team's metrics over the steps decided from `since` until before `until` (RFC
    /// 3339; open ends allowed).
    pub fn team_metrics(&self, since: Option<String>, until: Option<String>) -> Result<TeamMetrics, EngineError> {
        match self.team_ask(TeamQuery::Metrics { since, until })? {
            TeamAnswer::Metrics { metrics } => Ok(metrics),
            other => Err(unexpected(&other)),
        }
    }

    /// Record this lead's verdict on a case an escalation signal handed to a human on
    /// `desk`: was the handoff right? The case must be one the team shows this lead, and
    /// escalated on that desk. The verdict, signed with this lead's team key, goes in this
    /// desk's log (under the case's id), from where it reaches the team's metrics; a later
    /// verdict replaces an earlier one.
    pub fn team_judge(&self, desk: &str, case_id: &str, right: bool, reason: &str) -> Result<(), EngineError> {
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(EngineError::BadInput { message: "say why: a reason is required".into() });
        }
        let case = self.team_case(case_id)?;
        let escalated = case.events.iter().any(|e| {
            e.desk == desk && matches!(&e.event.detail, crate::views::EventDetail::Decided { handoff: true, .. })
        });
        if !escalated {
            let desks: Vec<&str> = case.events.iter().map(|e| e.desk.as_str()).collect();
            return Err(EngineError::BadInput {
                message: if desks.contains(&desk) {
                    format!("case {case_id} was not handed to a human on {desk}: there is no escalation to judge")
                } else {
                    format!("the team shows no case {case_id} on desk {desk}")
                },
            });
        }
        let team = self.team.as_ref().ok_or_else(|| EngineError::Config { message: "not in a team".into() })?;
        let settings = team.settings();
        let at = self.clock.now();
        let verdict = EscalationVerdict {
            team: settings.team.clone(),
            desk: desk.to_string(),
            case_id: case_id.to_string(),
            right,
            reason: reason.to_string(),
            by: self.operator.id.clone(),
            at,
        };
        let signed = signing::sign(signing::VERDICT_DOMAIN, &verdict, &settings.signer)?;
        let event = Event::EscalationJudged { verdict, signed };
        self.store.append(countersign_store::NewEvent {
            case_id: Some(case_id.to_string()),
            kind: event.kind().to_string(),
            actor: self.operator.id.clone(),
            at,
            payload: event.payload(),
        })?;
        Ok(())
    }

    /// The team's own record, newest first (`limit` rows of each): who saw what, and what
    /// retention deleted. For a lead granted every desk and tenant.
    pub fn team_audit(&self, limit: Option<u32>) -> Result<TeamAudit, EngineError> {
        match self.team_ask(TeamQuery::Audit { limit })? {
            TeamAnswer::Audit { views, deletions } => Ok(TeamAudit { views, deletions }),
            other => Err(unexpected(&other)),
        }
    }

    /// What the team could not verify, on the desks this lead may see.
    pub fn team_alerts(&self) -> Result<Vec<TeamAlert>, EngineError> {
        match self.team_ask(TeamQuery::Alerts)? {
            TeamAnswer::Alerts { alerts } => Ok(alerts),
            other => Err(unexpected(&other)),
        }
    }
}

/// An event from the team, checked against its hash with the log's own rule.
pub fn checked(e: &TeamEvent) -> Result<LoggedEvent, EngineError> {
    let bad = |why: String| EngineError::TeamUnreachable {
        message: format!("event {} of {} from the team does not hold: {why}", e.seq, e.desk),
    };
    let prev = Hash::from_hex(&e.prev_hash).ok_or_else(|| bad("its previous hash is not 64 hex digits".into()))?;
    let hash = Hash::from_hex(&e.hash).ok_or_else(|| bad("its hash is not 64 hex digits".into()))?;
    let stored =
        countersign_store::check_event(&prev, e.seq, &e.body, &hash).map_err(|b| bad(b.problem.to_string()))?;
    LoggedEvent::try_from(stored)
}

pub(crate) fn unexpected(answer: &TeamAnswer) -> EngineError {
    let kind = serde_json::to_value(answer)
        .ok()
        .and_then(|v| v.get("kind").and_then(|k| k.as_str().map(str::to_string)))
        .unwrap_or_default();
    EngineError::TeamUnreachable { message: format!("the team service answered another question ({kind})") }
}

fn safe_name(id: &str) -> String {
    id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}
