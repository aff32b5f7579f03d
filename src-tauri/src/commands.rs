//! The commands the UI may call (listed again, exactly, in `capabilities/default.json`).
//!
//! Each one takes the state, calls the engine, and maps the result to a view and the
//! error to an [`AppError`]. No SQL, no policy
//! logic, no file I/O here. They run off the main thread (`async`), so the window never
//! waits on the evidence store or a platform call.

use countersign_core::evidence::Verdict as EngineVerdict;
use countersign_core::model::PauseScope as EnginePauseScope;
use countersign_engine::{Engine, LogFilter, Proof, Secret, StepRun, credentials};
use tauri::State;
use tauri::ipc::Channel;

use std::collections::BTreeMap;

use countersign_core::Outcome;
use countersign_engine::cases::OpenedCase;

use crate::dto::{
    AppError, AppInfo, BlobView, CaseView, CredentialList, Decision, EventView, ExportView, InboxItem, LeadProof,
    LogQuery, Metrics, PassageView, PauseScope, PauseView, Progress, ReplyCheck, SentView, Verdict, VerifyView,
};
use crate::state::{Shell, case_by_id, count};
use crate::view;

type Res<T> = Result<T, AppError>;

/// Run `f` on a thread of its own, outside the async runtime: the engine is synchronous, and
/// its HTTP connector (a blocking client with a runtime inside) must not run, or be dropped,
/// on a runtime thread.
fn plain_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(t) => t,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

fn send(ch: &Channel<Progress>, p: Progress) {
    if let Err(e) = ch.send(p) {
        tracing::debug!(error = %e, "progress channel closed");
    }
}

/// The UI calls this once, when the inbox has rendered its first rows: the launch time
/// (process start → usable inbox) goes to the log, where `scripts/measure-app.sh` reads it.
#[tauri::command(async)]
pub fn ui_ready(rows: u32) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let ms = crate::LAUNCHED.get().map(|t| t.elapsed().as_millis()).unwrap_or_default();
        tracing::info!(ms, rows, "inbox usable");
    });
}

#[tauri::command(async)]
pub fn app_info(shell: State<'_, Shell>) -> Res<AppInfo> {
    tracing::debug!("app info asked");
    plain_thread(|| Ok(shell.get()?.info.clone()))
}

/// Open cases: the workspace's cases, with the steps still waiting, the escalation
/// signals the policy finds in the customer's words (before anything is planned), and
/// whether the case was planned and its reply sent. Nothing is read from the platform
/// here, so the inbox is quick however slow the platform is.
#[tauri::command(async)]
pub fn inbox(shell: State<'_, Shell>) -> Res<Vec<InboxItem>> {
    plain_thread(|| {
        let started = std::time::Instant::now();
        let state = shell.get()?;
        let engine = &state.engine;
        let waiting = engine.review_queue()?;
        let items = engine
            .workspace()
            .cases()?
            .into_iter()
            .map(|case| {
                let plans = engine.case_plans(&case.id)?;
                let signals = engine.case_signals(&case);
                Ok(InboxItem {
                    channel: case.channel.to_string(),
                    customer_id: case.customer.as_ref().map(|c| c.id.clone()),
                    identity: case.customer.as_ref().map(|c| crate::view::snake(&c.identity)),
                    subject: case.subject.clone(),
                    last_message: case.customer_text().last().unwrap_or_default().to_string(),
                    intent: plans.last().map(|(p, _)| p.intent.clone()),
                    waiting: count(waiting.iter().filter(|s| s.case_id == case.id).count()),
                    handoff: !signals.is_empty(),
                    signals: signals
                        .iter()
                        .map(|s| format!("{}: {}", crate::view::snake(&s.category), s.matched))
                        .collect(),
                    opened: !plans.is_empty(),
                    replied: engine.sent_reply(&case.id)?.is_some(),
                    case_id: case.id,
                })
            })
            .collect::<Res<Vec<_>>>()?;
        tracing::debug!(ms = started.elapsed().as_millis(), cases = items.len(), "inbox listed");
        Ok(items)
    })
}

fn view_of(
    engine: &Engine,
    case: &countersign_core::model::Case,
    opened: &OpenedCase,
    runs: &[StepRun],
) -> Res<CaseView> {
    let queue = engine.case_steps(&case.id)?;
    let events = engine.log_case(&case.id)?;
    let sent = engine.sent_reply(&case.id)?.map(|r| SentView { text: r.text, by: r.by, at: r.at });
    Ok(view::case_view(case, opened, &queue, &events, runs, sent))
}

/// The case as it stands now (its plan in force; nothing is planned here).
fn current(engine: &Engine, case_id: &str) -> Res<(countersign_core::model::Case, OpenedCase)> {
    let case = case_by_id(engine, case_id)?;
    let opened = engine.open_case(&case)?;
    Ok((case, opened))
}

fn run_approved(engine: &Engine, case_id: &str, progress: &Channel<Progress>) -> Res<Vec<StepRun>> {
    for s in engine.case_steps(case_id)?.iter().filter(|s| s.state == countersign_engine::StepState::Approved) {
        send(progress, Progress::Running { step_id: s.step_id.clone(), action: s.action.clone() });
    }
    let runs = engine.run_approved(case_id)?;
    for r in &runs {
        send(
            progress,
            Progress::Ran { step_id: r.step_id.clone(), state: r.state.as_str().to_string(), error: r.error.clone() },
        );
    }
    Ok(runs)
}

/// Decided: report it, run what may run on its own, and show the case.
fn decided(
    engine: &Engine,
    case: &countersign_core::model::Case,
    opened: &OpenedCase,
    ch: &Channel<Progress>,
) -> Res<CaseView> {
    send(ch, Progress::Deciding { plan_id: opened.plan.id.clone(), steps: count(opened.plan.steps.len()) });
    let runs = run_approved(engine, &case.id, ch)?;
    send(ch, Progress::Done);
    view_of(engine, case, opened, &runs)
}

/// Open a case: the first time, the workspace's planner plans it (governed reads, cited
/// reply), the policy decides, the evidence is recorded and what may run on its own runs.
/// After that, the plan in force is shown as recorded.
#[tauri::command(async)]
pub fn open_case(shell: State<'_, Shell>, case_id: String, on_progress: Channel<Progress>) -> Res<CaseView> {
    plain_thread(|| {
        let engine = &shell.get()?.engine;
        let case = case_by_id(engine, &case_id)?;
        send(&on_progress, Progress::Planning { case_id: case_id.clone() });
        let opened = engine.open_case(&case)?;
        decided(engine, &case, &opened, &on_progress)
    })
}

/// Plan the case again (the platform's data may have changed); waiting steps the new plan
/// does not keep are invalidated.
#[tauri::command(async)]
pub fn replan_case(shell: State<'_, Shell>, case_id: String, on_progress: Channel<Progress>) -> Res<CaseView> {
    plain_thread(|| {
        let engine = &shell.get()?.engine;
        let case = case_by_id(engine, &case_id)?;
        send(&on_progress, Progress::Planning { case_id: case_id.clone() });
        let opened = engine.plan_again(&case)?;
        decided(engine, &case, &opened, &on_progress)
    })
}

/// Edit a waiting step's parameters (as typed); the policy decides the new revision.
#[tauri::command(async)]
pub fn edit_step(
    shell: State<'_, Shell>,
    case_id: String,
    plan_id: String,
    step_id: String,
    changes: BTreeMap<String, String>,
    reason: String,
    on_progress: Channel<Progress>,
) -> Res<CaseView> {
    plain_thread(|| {
        let engine = &shell.get()?.engine;
        let case = case_by_id(engine, &case_id)?;
        let opened = engine.edit_step(&case, &plan_id, &step_id, &changes, &reason)?;
        decided(engine, &case, &opened, &on_progress)
    })
}

/// The policy's decision on the reply as the agent has edited it (records nothing).
#[tauri::command(async)]
pub fn check_reply(shell: State<'_, Shell>, case_id: String, plan_id: String, text: String) -> Res<ReplyCheck> {
    plain_thread(|| {
        let engine = &shell.get()?.engine;
        let case = case_by_id(engine, &case_id)?;
        Ok(view::reply_check(&engine.check_reply(&case, &plan_id, &text)?))
    })
}

/// Send the reply as edited. `seen` is the decision the agent was shown: a stricter one
/// now (a promise typed since) is refused with `Conflict`.
#[tauri::command(async)]
pub fn send_reply(
    shell: State<'_, Shell>,
    case_id: String,
    plan_id: String,
    text: String,
    seen: Decision,
    lead: Option<LeadProof>,
) -> Res<CaseView> {
    plain_thread(|| {
        let engine = &shell.get()?.engine;
        let case = case_by_id(engine, &case_id)?;
        let seen = match seen {
            Decision::Auto => Outcome::Auto,
            Decision::Confirm => Outcome::Confirm,
            Decision::Supervisor => Outcome::Supervisor,
            Decision::Recommend => Outcome::Recommend,
            Decision::Forbid => Outcome::Forbid,
        };
        let proof = lead.map(|p| Proof { id: p.id, passphrase: Secret::new(p.passphrase) });
        engine.send_reply(&case, &plan_id, &text, seen, proof.as_ref())?;
        let (case, opened) = current(engine, &case_id)?;
        view_of(engine, &case, &opened, &[])
    })
}

/// A screenshot or page snapshot named in the evidence, by its SHA-256.
#[tauri::command(async)]
pub fn evidence_blob(shell: State<'_, Shell>, hash: String) -> Res<BlobView> {
    plain_thread(|| {
        let blob = shell.get()?.engine.blob(&hash)?.ok_or_else(|| AppError {
            code: crate::dto::ErrorCode::NotFound,
            message: format!("no blob {hash} in this evidence store"),
            next_step: view::next_step(crate::dto::ErrorCode::NotFound).into(),
        })?;
        Ok(view::blob(&hash, blob))
    })
}

/// Countersign or reject a waiting step; an approved step runs at once.
#[tauri::command(async)]
#[allow(clippy::too_many_arguments)]
pub fn review_step(
    shell: State<'_, Shell>,
    case_id: String,
    plan_id: String,
    step_id: String,
    verdict: Verdict,
    reason: String,
    lead: Option<LeadProof>,
    on_progress: Channel<Progress>,
) -> Res<CaseView> {
    plain_thread(|| {
        let state = shell.get()?;
        let engine = &state.engine;
        let v = match verdict {
            Verdict::Approve => EngineVerdict::Approved,
            Verdict::Reject => EngineVerdict::Rejected,
        };
        match lead {
            Some(p) => {
                let proof = Proof { id: p.id, passphrase: Secret::new(p.passphrase) };
                engine.review_as(&plan_id, &step_id, v, &reason, &proof)?
            }
            None => engine.review(&plan_id, &step_id, v, &reason)?,
        };
        let runs = if verdict == Verdict::Approve { run_approved(engine, &case_id, &on_progress)? } else { Vec::new() };
        send(&on_progress, Progress::Done);
        let (case, opened) = current(engine, &case_id)?;
        view_of(engine, &case, &opened, &runs)
    })
}

/// The cited passage behind a citation chip, with whether the citation resolves.
#[tauri::command(async)]
pub fn open_citation(shell: State<'_, Shell>, case_id: String, index: u32) -> Res<PassageView> {
    plain_thread(|| {
        let state = shell.get()?;
        let engine = &state.engine;
        let (_, opened) = current(engine, &case_id)?;
        let plan = opened.plan;
        let citation =
            plan.reply.as_ref().and_then(|r| r.citations.get((index as usize).wrapping_sub(1))).ok_or_else(|| {
                AppError {
                    code: crate::dto::ErrorCode::NotFound,
                    message: format!("the reply of case {case_id} has no citation [{index}]"),
                    next_step: view::next_step(crate::dto::ErrorCode::NotFound).into(),
                }
            })?;
        let resolution = engine.resolve_citation(citation)?;
        let anchor = match &resolution {
            countersign_engine::knowledge::CitationResolution::Resolved { anchor, .. } => anchor.clone(),
            _ => citation.anchor.clone(),
        };
        let article = engine.kb_article(&citation.article_id, None)?;
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
    })
}

/// A case's evidence timeline, oldest first.
#[tauri::command(async)]
pub fn case_events(shell: State<'_, Shell>, case_id: String) -> Res<Vec<EventView>> {
    plain_thread(|| {
        let state = shell.get()?;
        Ok(state.engine.log_case(&case_id)?.into_iter().map(view::event).collect())
    })
}

/// Browse and search the evidence log (newest last; `limit` keeps the newest).
#[tauri::command(async)]
pub fn log_list(shell: State<'_, Shell>, query: LogQuery) -> Res<Vec<EventView>> {
    plain_thread(|| {
        let state = shell.get()?;
        let filter = LogFilter {
            case_id: query.case_id.filter(|s| !s.trim().is_empty()),
            kind: query.kind.filter(|s| !s.trim().is_empty()),
            text: query.text.filter(|s| !s.trim().is_empty()),
            ..LogFilter::default()
        };
        let mut events: Vec<EventView> = state.engine.log_list(&filter)?.into_iter().map(view::event).collect();
        if let Some(limit) = query.limit {
            let keep = events.len().saturating_sub(limit as usize);
            events.drain(..keep);
        }
        Ok(events)
    })
}

#[tauri::command(async)]
pub fn log_verify(shell: State<'_, Shell>) -> Res<VerifyView> {
    plain_thread(|| {
        let state = shell.get()?;
        let r = state.engine.log_verify()?;
        Ok(VerifyView {
            ok: r.ok,
            count: u32::try_from(r.count).unwrap_or(u32::MAX),
            head: r.head.to_hex(),
            first_broken_seq: r.first_broken.as_ref().map(|b| u32::try_from(b.seq).unwrap_or(u32::MAX)),
            problem: r.first_broken.map(|b| b.problem.to_string()),
        })
    })
}

/// Export a self-verifying bundle into a new folder under the workspace's data dir.
#[tauri::command(async)]
pub fn log_export(shell: State<'_, Shell>) -> Res<ExportView> {
    plain_thread(|| {
        let state = shell.get()?;
        let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S%.3fZ").to_string();
        let s = state.engine.log_export(&state.export_dir.join(format!("bundle-{stamp}")))?;
        Ok(ExportView {
            dir: s.dir.display().to_string(),
            count: u32::try_from(s.manifest.count).unwrap_or(u32::MAX),
            head: s.manifest.head.to_hex(),
            verified: s.report.ok,
        })
    })
}

#[tauri::command(async)]
pub fn metrics(shell: State<'_, Shell>) -> Res<Metrics> {
    plain_thread(|| {
        let state = shell.get()?;
        let engine = &state.engine;
        let steps = engine.all_steps()?;
        let mut events = engine.log_list(&LogFilter { kind: Some("decided".into()), ..LogFilter::default() })?;
        events.extend(engine.log_list(&LogFilter { kind: Some("plan_proposed".into()), ..LogFilter::default() })?);
        Ok(crate::metrics::compute(&steps, &events))
    })
}

/// Pauses, newest first: active ones, and with `all` the cleared ones too.
#[tauri::command(async)]
pub fn pauses(shell: State<'_, Shell>, all: bool) -> Res<Vec<PauseView>> {
    plain_thread(|| {
        let state = shell.get()?;
        let mut out: Vec<PauseView> = state
            .engine
            .pause_history()?
            .into_iter()
            .filter(|r| all || r.cleared.is_none())
            .map(|r| PauseView {
                id: r.pause.id,
                scope: match r.pause.scope {
                    EnginePauseScope::Tenant => PauseScope::Tenant,
                    EnginePauseScope::Channel => PauseScope::Channel,
                    EnginePauseScope::Store => PauseScope::Store,
                    EnginePauseScope::Workflow => PauseScope::Workflow,
                    EnginePauseScope::Action => PauseScope::Action,
                },
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
    })
}

#[tauri::command(async)]
pub fn pause_set(shell: State<'_, Shell>, scope: PauseScope, value: String, reason: String) -> Res<String> {
    plain_thread(|| {
        let state = shell.get()?;
        let scope = match scope {
            PauseScope::Tenant => EnginePauseScope::Tenant,
            PauseScope::Channel => EnginePauseScope::Channel,
            PauseScope::Store => EnginePauseScope::Store,
            PauseScope::Workflow => EnginePauseScope::Workflow,
            PauseScope::Action => EnginePauseScope::Action,
        };
        Ok(state.engine.pause_set(scope, value.trim(), &reason)?.id)
    })
}

#[tauri::command(async)]
pub fn pause_clear(shell: State<'_, Shell>, id: String, reason: String) -> Res<()> {
    plain_thread(|| {
        let state = shell.get()?;
        Ok(state.engine.pause_clear(&id, &reason)?)
    })
}

/// Names of the credentials in the OS keyring; a keyring that cannot be reached is reported
/// beside an empty list, so Settings still opens.
#[tauri::command(async)]
pub fn credentials_list() -> CredentialList {
    plain_thread(|| match credentials::list(&credentials::keyring()) {
        Ok(names) => CredentialList { names: names.iter().map(ToString::to_string).collect(), error: None },
        Err(e) => CredentialList { names: Vec::new(), error: Some(e.into()) },
    })
}

/// Store a credential in the OS keyring. The value is never returned, shown or logged.
#[tauri::command(async)]
pub fn credential_set(name: String, value: String) -> Res<String> {
    plain_thread(|| Ok(credentials::set(&credentials::keyring(), &name, Secret::new(value))?.to_string()))
}

#[tauri::command(async)]
pub fn credential_delete(name: String) -> Res<String> {
    plain_thread(|| Ok(credentials::delete(&credentials::keyring(), &name)?.to_string()))
}

/// Ask the update endpoint (the signed pack's, else the installer's) for a newer version.
#[tauri::command]
pub async fn update_check(
    app: tauri::AppHandle,
    shell: State<'_, Shell>,
    pending: State<'_, crate::updates::Pending>,
) -> Res<crate::dto::UpdateCheck> {
    let pack_endpoint = shell.get().ok().and_then(|s| s.engine.managed_settings().update_endpoint.clone());
    crate::updates::check(&app, pack_endpoint.as_deref(), &pending).await
}

/// Download the update the last check found, verify its signature, install it.
#[tauri::command]
pub async fn update_install(pending: State<'_, crate::updates::Pending>, version: String) -> Res<String> {
    crate::updates::install_pending(&pending, &version).await
}
