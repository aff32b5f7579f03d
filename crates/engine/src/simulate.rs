//! `countersign policy simulate`: the decisions this log recorded, replayed through a
//! draft policy ([`countersign_core::simulate`]) from the inputs each one recorded.

use std::path::Path;

use countersign_core::Policy;
use countersign_core::model::{Case, Plan};
use countersign_core::simulate::{
    Candidate, Logged, Recorded, Simulation, SimulationReport, Unreplayable, pair, simulate,
};
use countersign_core::teamview::{TeamAnswer, TeamQuery};
use countersign_store::EventFilter;
use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{Engine, EngineError, Scope};

/// A simulation of a draft over this log: the report an admin reads (and whose digest a
/// pack signed after it names), and every replayed step.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Simulated {
    pub report: SimulationReport,
    /// `sha256:` of the report's canonical JSON.
    pub digest: String,
    /// Where the report was written, when it was.
    pub report_file: Option<String>,
    #[serde(skip)]
    #[cfg_attr(feature = "ts", ts(skip))]
    pub simulation: Simulation,
}

/// The start (UTC) of day `since`.
fn since_of(since: Option<jiff::civil::Date>) -> Result<Option<Timestamp>, EngineError> {
    since
        .map(|day| {
            day.to_zoned(jiff::tz::TimeZone::UTC)
                .map(|z| z.timestamp())
                .map_err(|e| EngineError::BadInput { message: format!("--since {day}: {e}") })
        })
        .transpose()
}

/// Read a draft policy file (its errors name file:line:column).
pub fn read_draft(path: &Path) -> Result<Policy, EngineError> {
    draft_source(path).map(|(_, policy)| policy)
}

/// A draft policy file's text and the policy it parses to, checked here (so its errors
/// name the file, line and column) before the team service is asked about it.
fn draft_source(path: &Path) -> Result<(String, Policy), EngineError> {
    let text = std::fs::read_to_string(path).map_err(|e| EngineError::io(path, e))?;
    let policy = Policy::parse(&path.display().to_string(), &text)?;
    replayable(&policy)?;
    Ok((text, policy))
}

/// A draft that turns the signal encoder on replays only where the encoder can be read:
/// else every replayed case would count as handed off, and the report would say so of the
/// draft.
fn replayable(policy: &Policy) -> Result<(), EngineError> {
    countersign_core::learned::check_encoder_for(policy)
        .map_err(|e| EngineError::Config { message: format!("cannot replay decisions under this draft: {e}") })
}

impl Engine {
    /// `countersign policy simulate`: the draft policy file replayed over the decisions of
    /// `scope` (this log, or every desk of the team this lead may see, replayed by the team
    /// service from the team's store), reporting those made on or after `since` (a UTC
    /// day); the report is also written to `out` when given (for `policy sign --simulation`).
    pub fn simulate_draft(
        &self,
        draft: &Path,
        since: Option<jiff::civil::Date>,
        out: Option<&Path>,
        scope: Scope,
    ) -> Result<Simulated, EngineError> {
        let (text, policy) = draft_source(draft)?;
        let since = since_of(since)?;
        match scope {
            Scope::Desk => self.simulate(&policy, since)?,
            Scope::Team => self.team_simulate(text, &policy, since)?,
        }
        .written_to(out)
    }

    /// The team service's replay of draft `text` (which parses to `policy`).
    fn team_simulate(&self, text: String, policy: &Policy, since: Option<Timestamp>) -> Result<Simulated, EngineError> {
        let since = since.map(|t| t.to_string());
        let (report, _desks) = match self.team_ask(TeamQuery::Simulate { draft: text, since })? {
            TeamAnswer::Simulate { report, desks } => (report, desks),
            other => return Err(crate::teamview::unexpected(&other)),
        };
        if report.draft.hash != policy.hash {
            return Err(EngineError::TeamUnreachable {
                message: format!(
                    "the team service simulated another draft ({}, not {}): nothing is written",
                    report.draft.hash, policy.hash
                ),
            });
        }
        Ok(Simulated { digest: report.digest(), report, report_file: None, simulation: Simulation::default() })
    }

    /// Replay every decision this log recorded through `draft`, in the order recorded,
    /// and report what would change for those made at or after `since`.
    pub fn simulate(&self, draft: &Policy, since: Option<Timestamp>) -> Result<Simulated, EngineError> {
        let mut each = self.simulate_each_since(&[draft], since)?;
        each.pop().ok_or_else(|| EngineError::Unreadable { message: "the simulation made no report".into() })
    }

    /// [`Engine::simulate`] of each draft over all of the log, reading the log once.
    pub fn simulate_each(&self, drafts: &[&Policy]) -> Result<Vec<Simulated>, EngineError> {
        self.simulate_each_since(drafts, None)
    }

    fn simulate_each_since(&self, drafts: &[&Policy], since: Option<Timestamp>) -> Result<Vec<Simulated>, EngineError> {
        if drafts.is_empty() {
            return Ok(Vec::new());
        }
        let (recorded, without_inputs, unreplayable) = self.recorded_decisions()?;
        Ok(drafts
            .iter()
            .map(|draft| {
                let mut simulation = simulate(draft, &recorded);
                simulation.unreplayable.extend(unreplayable.iter().cloned());
                let report = SimulationReport::new(draft, &simulation, since, without_inputs);
                Simulated { digest: report.digest(), report, simulation, report_file: None }
            })
            .collect())
    }

    /// Every recorded decision with what it read, in the order recorded; how many carry
    /// no inputs; and those whose inputs do not match what the log holds.
    fn recorded_decisions(&self) -> Result<(Vec<Recorded>, usize, Vec<Unreplayable>), EngineError> {
        let mut log = Vec::new();
        for kind in ["case_opened", "case_received"] {
            for (seq, _, CasePayload { case }) in self.typed_events::<CasePayload>(kind)? {
                log.push((seq, Logged::Case(Box::new(case))));
            }
        }
        for (seq, _, PlanPayload { plan }) in self.typed_events::<PlanPayload>("plan_proposed")? {
            log.push((seq, Logged::Plan(Box::new(plan))));
        }
        for (seq, at, DecidedPayload { decision, inputs }) in self.typed_events::<DecidedPayload>("decided")? {
            log.push((seq, Logged::Decided { at, decision: Box::new(decision), inputs }));
        }
        let (candidates, without_inputs, mut unreplayable) = pair(log);
        // Each one's inputs checked against the case and plan it names (digests of their
        // canonical JSON), on every core.
        let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get).clamp(1, 8);
        let chunk = candidates.len().div_ceil(threads).max(1);
        let holds: Vec<bool> = std::thread::scope(|s| {
            let parts: Vec<_> = candidates
                .chunks(chunk)
                .map(|part| (part.len(), s.spawn(move || part.iter().map(Candidate::holds).collect::<Vec<_>>())))
                .collect();
            // A part whose thread failed holds for none of its decisions.
            parts.into_iter().flat_map(|(n, p)| p.join().unwrap_or_else(|_| vec![false; n])).collect()
        });
        let mut recorded = Vec::new();
        for (candidate, holds) in candidates.into_iter().zip(holds) {
            match candidate.check(holds) {
                Ok(r) => recorded.push(r),
                Err(u) => unreplayable.push(u),
            }
        }
        Ok((recorded, without_inputs, unreplayable))
    }

    /// The events of `kind`, oldest first, each body typed straight from its text as far
    /// as `P` reads its payload, on every core: reading the log is most of a simulation.
    pub(crate) fn typed_events<P: DeserializeOwned + Send>(
        &self,
        kind: &str,
    ) -> Result<Vec<(u64, Timestamp, P)>, EngineError> {
        Ok(self.typed_events_by(kind)?.into_iter().map(|(seq, at, _, p)| (seq, at, p)).collect())
    }

    /// [`Engine::typed_events`] with each event's actor.
    pub(crate) fn typed_events_by<P: DeserializeOwned + Send>(
        &self,
        kind: &str,
    ) -> Result<Vec<(u64, Timestamp, String, P)>, EngineError> {
        let bodies = self.store.event_bodies(&EventFilter { kind: Some(kind.into()), ..EventFilter::default() })?;
        let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get).clamp(1, 8);
        let chunk = bodies.len().div_ceil(threads).max(1);
        let parse = |part: &[(u64, String)]| {
            part.iter()
                .map(|(seq, body)| {
                    serde_json::from_str::<Body<P>>(body).map(|b| (*seq, b.at, b.actor, b.payload)).map_err(|e| {
                        EngineError::Unreadable { message: format!("event {seq} ({kind}) cannot be read: {e}") }
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        std::thread::scope(|s| {
            let parts: Vec<_> = bodies.chunks(chunk).map(|part| s.spawn(move || parse(part))).collect();
            let mut out = Vec::with_capacity(bodies.len());
            for part in parts {
                let read = part.join().map_err(|_| EngineError::Unreadable {
                    message: "reading the log stopped: a thread panicked".into(),
                })??;
                out.extend(read);
            }
            Ok(out)
        })
    }
}

/// An event's body, its payload typed as far as a reader needs.
#[derive(Deserialize)]
struct Body<P> {
    at: Timestamp,
    #[serde(default)]
    actor: String,
    payload: P,
}

#[derive(Deserialize)]
struct DecidedPayload {
    decision: countersign_core::PlanDecision,
    #[serde(default)]
    inputs: Option<Box<countersign_core::evidence::DecisionInputs>>,
}

#[derive(Deserialize)]
pub(crate) struct CasePayload {
    pub(crate) case: Case,
}

#[derive(Deserialize)]
pub(crate) struct PlanPayload {
    pub(crate) plan: Plan,
}

impl Simulated {
    /// The simulation, its report also written to `out` when given (and named there).
    fn written_to(mut self, out: Option<&Path>) -> Result<Simulated, EngineError> {
        if let Some(path) = out {
            write_report(path, &self.report)?;
            self.report_file = Some(path.display().to_string());
        }
        Ok(self)
    }
}

/// Write a report where `policy sign --simulation` reads it (replacing the file whole).
pub fn write_report(path: &Path, report: &SimulationReport) -> Result<(), EngineError> {
    let text = serde_json::to_string_pretty(report).map_err(|e| EngineError::BadInput { message: e.to_string() })?;
    write_whole(path, format!("{text}\n").as_bytes())
}

/// Write `bytes` to `path` whole: a reader sees the old file or the new one, never part.
pub(crate) fn write_whole(path: &Path, bytes: &[u8]) -> Result<(), EngineError> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(|e| EngineError::io(dir, e))?;
    std::io::Write::write_all(&mut file, bytes).map_err(|e| EngineError::io(path, e))?;
    file.as_file().sync_all().map_err(|e| EngineError::io(path, e))?;
    file.persist(path).map_err(|e| EngineError::io(path, e.error))?;
    Ok(())
}

/// Read a report written by [`write_report`]; its errors name file:line:column.
pub fn read_report(path: &Path) -> Result<SimulationReport, EngineError> {
    let text = std::fs::read_to_string(path).map_err(|e| EngineError::io(path, e))?;
    let report: SimulationReport = serde_json::from_str(&text).map_err(|e| EngineError::BadInput {
        message: format!("{}:{}:{}: not a simulation report: {e}", path.display(), e.line(), e.column()),
    })?;
    if report.format != countersign_core::simulate::REPORT_FORMAT {
        return Err(EngineError::BadInput {
            message: format!(
                "{}: a simulation report of format {:?}, not {:?}",
                path.display(),
                report.format,
                countersign_core::simulate::REPORT_FORMAT
            ),
        });
    }
    Ok(report)
}
