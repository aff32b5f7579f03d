//! The commands the UI may call (listed again, exactly, in `capabilities/default.json`).
//!
//! Each one takes the state, calls the engine, and maps the result to a view and the
//! error to an [`AppError`]. No SQL, no policy
//! logic, no file I/O here. They run off the main thread (`async`), so the window never
//! waits on the evidence store or a platform call.

use std::collections::BTreeMap;

use countersign_engine::{Scope, Secret, credentials};
use tauri::State;
use tauri::ipc::Channel;

use countersign_engine::intake::Pasted;

use crate::dto::{
    AppError, AppInfo, Autonomy, BlobView, CaseView, CredentialList, Decision, DeskReport, EncoderFetched,
    EncoderProgress, ErrorCode, EventView, ExportView, InboxChanged, InboxItem, LeadProof, LogQuery, Metrics,
    PassageView, PauseScope, PauseView, Progress, PromiseStatus, PromiseSweep, ReplyCheck, SavedProposal, Simulated,
    StepFilter, SyncReport, TeamAlert, TeamAudit, TeamCaseView, TeamExportView, TeamMetrics, TeamRequestView,
    TeamStatus, TeamStepsView, Verdict, VerifyView,
};
use crate::live::{Intake, Watcher};
use crate::state::Shell;

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
    plain_thread(|| Ok(shell.get()?.info_now()))
}

/// The inbox: every case with its waiting steps and escalation signals (no platform read).
#[tauri::command(async)]
pub fn inbox(shell: State<'_, Shell>) -> Res<Vec<InboxItem>> {
    plain_thread(|| {
        let started = std::time::Instant::now();
        let items = shell.get()?.engine.inbox()?;
        tracing::debug!(ms = started.elapsed().as_millis(), cases = items.len(), "inbox listed");
        Ok(items)
    })
}

/// Sync the workspace's sources now ("Check now"), after any background sync under way.
#[tauri::command(async)]
pub fn sync_sources(shell: State<'_, Shell>, intake: State<'_, Intake>) -> Res<Vec<SyncReport>> {
    plain_thread(|| Ok(intake.sync_all(&shell.get()?.engine)?))
}

/// Hear of what background syncs record (new conversations, new messages): the window's
/// channel, which replaces any registered before (one window).
#[tauri::command(async)]
pub fn watch_inbox(watcher: State<'_, Watcher>, on_change: Channel<InboxChanged>) {
    watcher.set(on_change);
}

/// Open a case: planned the first time (what may run on its own runs), else as recorded.
#[tauri::command(async)]
pub fn open_case(shell: State<'_, Shell>, case_id: String, on_progress: Channel<Progress>) -> Res<CaseView> {
    plain_thread(|| Ok(shell.get()?.engine.open_case_view(&case_id, &|p| send(&on_progress, p))?))
}

/// Make a case of a conversation pasted from a platform with no connector (its customer
/// stays unverified; its reply is recorded for the agent to post by hand), and open it.
#[tauri::command(async)]
pub fn paste_case(shell: State<'_, Shell>, pasted: Pasted, on_progress: Channel<Progress>) -> Res<CaseView> {
    plain_thread(|| Ok(shell.get()?.engine.paste_case_view(&pasted, &|p| send(&on_progress, p))?))
}

/// Record that the agent verified the case's customer themselves (how, in their words).
#[tauri::command(async)]
pub fn verify_identity(shell: State<'_, Shell>, case_id: String, how: String) -> Res<CaseView> {
    plain_thread(|| Ok(shell.get()?.engine.verify_identity_view(&case_id, &how)?))
}

/// Plan the case again; waiting steps the new plan does not keep are invalidated.
#[tauri::command(async)]
pub fn replan_case(shell: State<'_, Shell>, case_id: String, on_progress: Channel<Progress>) -> Res<CaseView> {
    plain_thread(|| Ok(shell.get()?.engine.replan_case_view(&case_id, &|p| send(&on_progress, p))?))
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
        let progress = |p| send(&on_progress, p);
        Ok(engine.edit_step_view(&case_id, (&plan_id, &step_id), &changes, &reason, &progress)?)
    })
}

/// The policy's decision on the reply as the agent has edited it (records nothing).
#[tauri::command(async)]
pub fn check_reply(shell: State<'_, Shell>, case_id: String, plan_id: String, text: String) -> Res<ReplyCheck> {
    plain_thread(|| Ok(shell.get()?.engine.check_reply_view(&case_id, &plan_id, &text)?))
}

/// Send the reply as edited; a decision stricter than `seen` is refused with `Conflict`.
#[tauri::command(async)]
pub fn send_reply(
    shell: State<'_, Shell>,
    case_id: String,
    plan_id: String,
    text: String,
    seen: Decision,
    lead: Option<LeadProof>,
) -> Res<CaseView> {
    plain_thread(|| Ok(shell.get()?.engine.send_reply_view(&case_id, &plan_id, &text, seen, lead)?))
}

/// Post the case's sent reply to its source again where its delivery is pending, unknown
/// or failed (an uncertain attempt is settled first: the customer gets it once).
#[tauri::command(async)]
pub fn deliver_reply(shell: State<'_, Shell>, case_id: String) -> Res<CaseView> {
    plain_thread(|| Ok(shell.get()?.engine.deliver_reply_view(&case_id)?))
}

/// A screenshot or page snapshot named in the evidence, by its SHA-256.
#[tauri::command(async)]
pub fn evidence_blob(shell: State<'_, Shell>, hash: String) -> Res<BlobView> {
    plain_thread(|| Ok(shell.get()?.engine.blob_view(&hash)?))
}

/// Try a failed or not-applied step again (decided again; under its approval when that
/// still holds; the same idempotency key unless the platform refused the earlier attempt).
#[tauri::command(async)]
pub fn retry_step(shell: State<'_, Shell>, case_id: String, plan_id: String, step_id: String) -> Res<CaseView> {
    plain_thread(|| Ok(shell.get()?.engine.retry_step_view(&case_id, (&plan_id, &step_id))?))
}

/// A team lead settles a step whose outcome is unknown, from what they saw on the platform.
#[tauri::command(async)]
pub fn settle_step(
    shell: State<'_, Shell>,
    case_id: String,
    plan_id: String,
    step_id: String,
    applied: bool,
    reason: String,
    lead: LeadProof,
) -> Res<CaseView> {
    plain_thread(|| {
        Ok(shell.get()?.engine.settle_step_view(&case_id, (&plan_id, &step_id), (applied, &reason), lead)?)
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
        let engine = &shell.get()?.engine;
        let progress = |p| send(&on_progress, p);
        Ok(engine.review_step_view(&case_id, (&plan_id, &step_id), (verdict, &reason), lead, &progress)?)
    })
}

/// The cited passage behind a citation chip, with whether the citation resolves.
#[tauri::command(async)]
pub fn open_citation(shell: State<'_, Shell>, case_id: String, index: u32) -> Res<PassageView> {
    plain_thread(|| Ok(shell.get()?.engine.citation_view(&case_id, index)?))
}

/// A case's evidence timeline, oldest first.
#[tauri::command(async)]
pub fn case_events(shell: State<'_, Shell>, case_id: String) -> Res<Vec<EventView>> {
    plain_thread(|| Ok(shell.get()?.engine.case_timeline(&case_id)?))
}

/// Browse and search the evidence log (newest last; `limit` keeps the newest).
#[tauri::command(async)]
pub fn log_list(shell: State<'_, Shell>, query: LogQuery) -> Res<Vec<EventView>> {
    plain_thread(|| Ok(shell.get()?.engine.log_events(query)?))
}

/// Verify the log: its hash chain and every device-signed checkpoint.
#[tauri::command(async)]
pub fn log_verify(shell: State<'_, Shell>) -> Res<VerifyView> {
    plain_thread(|| Ok(shell.get()?.engine.verify_view()?))
}

/// Export a self-verifying bundle into a new folder under the workspace's data dir.
#[tauri::command(async)]
pub fn log_export(shell: State<'_, Shell>) -> Res<ExportView> {
    plain_thread(|| {
        let state = shell.get()?;
        Ok(state.engine.export_into(&state.export_dir)?)
    })
}

#[tauri::command(async)]
pub fn metrics(shell: State<'_, Shell>) -> Res<Metrics> {
    plain_thread(|| Ok(shell.get()?.engine.metrics()?))
}

/// Pauses, newest first: active ones, and with `all` the cleared ones too.
#[tauri::command(async)]
pub fn pauses(shell: State<'_, Shell>, all: bool) -> Res<Vec<PauseView>> {
    plain_thread(|| Ok(shell.get()?.engine.pause_views(all)?))
}

#[tauri::command(async)]
pub fn pause_set(shell: State<'_, Shell>, scope: PauseScope, value: String, reason: String) -> Res<String> {
    plain_thread(|| Ok(shell.get()?.engine.pause_set(scope, &value, &reason)?.id))
}

#[tauri::command(async)]
pub fn pause_clear(shell: State<'_, Shell>, id: String, reason: String) -> Res<()> {
    plain_thread(|| Ok(shell.get()?.engine.pause_clear(&id, &reason)?))
}

/// Where this desktop stands with its team: `None` when it works alone. While it is not
/// current (no fresh lease), the app shows a banner.
#[tauri::command(async)]
pub fn team_status(shell: State<'_, Shell>) -> Res<Option<TeamStatus>> {
    plain_thread(|| Ok(shell.get()?.engine.team_status()))
}

/// The team's supervisor steps no lead has answered yet (a lead's queue; empty when solo).
#[tauri::command(async)]
pub fn team_queue(shell: State<'_, Shell>) -> Res<Vec<TeamRequestView>> {
    plain_thread(|| Ok(shell.get()?.engine.team_queue_views()))
}

/// Every desk of the team this desk has heard from: what it runs and when it said so.
#[tauri::command(async)]
pub fn team_desks(shell: State<'_, Shell>) -> Res<Vec<DeskReport>> {
    plain_thread(|| Ok(shell.get()?.engine.team_desks()))
}

/// The team's decided steps that `filter` picks, newest first (a lead's team view, asked of
/// the team service; only the desks and tenants the signed pack grants this lead).
#[tauri::command(async)]
pub fn team_steps(shell: State<'_, Shell>, filter: StepFilter) -> Res<TeamStepsView> {
    plain_thread(|| Ok(shell.get()?.engine.team_steps(filter)?))
}

/// A case's timeline from every desk of the team this lead may see, each event checked
/// against its hash.
#[tauri::command(async)]
pub fn team_case(shell: State<'_, Shell>, case_id: String) -> Res<TeamCaseView> {
    plain_thread(|| Ok(shell.get()?.engine.team_case(&case_id)?))
}

/// A screenshot or page snapshot an event of the case on `desk` names, from the team.
#[tauri::command(async)]
pub fn team_blob(shell: State<'_, Shell>, desk: String, case_id: String, hash: String) -> Res<BlobView> {
    plain_thread(|| Ok(shell.get()?.engine.team_blob_view(&desk, &case_id, &hash)?))
}

/// Export a case's evidence from the team into the exports folder.
#[tauri::command(async)]
pub fn team_export(shell: State<'_, Shell>, case_id: String) -> Res<TeamExportView> {
    plain_thread(|| {
        let state = shell.get()?;
        Ok(state.engine.team_export(&case_id, exports(state)?)?)
    })
}

/// How the team's steps went over a window (RFC 3339 ends, open when absent): per action,
/// per agent and per week, on the desks this lead may see.
#[tauri::command(async)]
pub fn team_metrics(shell: State<'_, Shell>, since: Option<String>, until: Option<String>) -> Res<TeamMetrics> {
    plain_thread(|| Ok(shell.get()?.engine.team_metrics(since, until)?))
}

/// The team's own record: who saw what, and what retention deleted (a lead granted every
/// desk and tenant).
#[tauri::command(async)]
pub fn team_audit(shell: State<'_, Shell>) -> Res<TeamAudit> {
    plain_thread(|| Ok(shell.get()?.engine.team_audit(Some(200))?))
}

/// Record this lead's verdict on a case an escalation handed to a human on `desk`: was
/// the handoff right?
#[tauri::command(async)]
pub fn team_judge(shell: State<'_, Shell>, desk: String, case_id: String, right: bool, reason: String) -> Res<()> {
    plain_thread(|| Ok(shell.get()?.engine.team_judge(&desk, &case_id, right, &reason)?))
}

/// What a draft policy file would change over the decisions this desk recorded (the
/// admin's diff before signing), reporting those made on or after `since` (YYYY-MM-DD,
/// UTC); with `team`, over every desk of the team this lead may see. With `save`, the
/// report is written into the exports folder (never to a path the page names) for
/// `countersign policy sign --simulation`.
#[tauri::command(async)]
pub fn simulate_policy(
    shell: State<'_, Shell>,
    draft: String,
    since: Option<String>,
    save: bool,
    team: bool,
) -> Res<Simulated> {
    plain_thread(|| {
        let since = day("since", since.as_deref())?;
        let state = shell.get()?;
        let out = if save { Some(stamped_export(state, "simulation", "json")?) } else { None };
        let draft = std::path::Path::new(draft.trim());
        Ok(state.engine.simulate_draft(draft, since, out.as_deref(), Scope::team(team))?)
    })
}

/// A day the page typed (YYYY-MM-DD); blank: none.
fn day(what: &str, typed: Option<&str>) -> Result<Option<jiff::civil::Date>, AppError> {
    let Some(day) = typed.map(str::trim).filter(|s| !s.is_empty()) else { return Ok(None) };
    day.parse().map(Some).map_err(|e| {
        AppError::from(countersign_engine::EngineError::BadInput {
            message: format!("{what} {day:?}: not a day (YYYY-MM-DD): {e}"),
        })
    })
}

/// Earned autonomy: each band's record and the changes it proposes, each with its draft's
/// simulation; this desk's log, or with `team` every desk of the team this lead may see.
#[tauri::command(async)]
pub fn autonomy(shell: State<'_, Shell>, team: bool) -> Res<Autonomy> {
    plain_thread(|| Ok(shell.get()?.engine.autonomy(Scope::team(team))?))
}

/// Save proposal `key`'s draft policy and simulation report into the exports folder (never
/// to a path the page names), for an admin to read and sign; `team` as for `autonomy`.
#[tauri::command(async)]
pub fn save_proposal(shell: State<'_, Shell>, key: String, team: bool) -> Res<SavedProposal> {
    plain_thread(|| {
        let state = shell.get()?;
        Ok(state.engine.save_proposal(&key, Scope::team(team), exports(state)?)?)
    })
}

/// A new file in the exports folder, named `{name}-{UTC time}.{ext}`.
fn stamped_export(state: &crate::state::AppState, name: &str, ext: &str) -> Result<std::path::PathBuf, AppError> {
    let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ");
    Ok(exports(state)?.join(format!("{name}-{stamp}.{ext}")))
}

/// The exports folder, made if missing.
fn exports(state: &crate::state::AppState) -> Result<&std::path::Path, AppError> {
    std::fs::create_dir_all(&state.export_dir).map_err(|e| {
        AppError::from(countersign_engine::EngineError::BadInput {
            message: format!("{}: {e}", state.export_dir.display()),
        })
    })?;
    Ok(&state.export_dir)
}

/// The promises this desk's sent replies made, and how each went.
#[tauri::command(async)]
pub fn promises(shell: State<'_, Shell>) -> Res<Vec<PromiseStatus>> {
    plain_thread(|| Ok(shell.get()?.engine.promises()?))
}

/// Check the promises whose day has passed now (the app also does, hourly).
#[tauri::command(async)]
pub fn check_promises(shell: State<'_, Shell>) -> Res<PromiseSweep> {
    plain_thread(|| Ok(shell.get()?.engine.check_promises()?))
}

/// What the team could not verify on the desks this lead may see.
#[tauri::command(async)]
pub fn team_alerts(shell: State<'_, Shell>) -> Res<Vec<TeamAlert>> {
    plain_thread(|| Ok(shell.get()?.engine.team_alerts()?))
}

/// Answer a request of the team's queue as this desk's lead: a grant signed here.
#[tauri::command(async)]
pub fn team_answer(shell: State<'_, Shell>, request_id: String, verdict: Verdict, reason: String) -> Res<()> {
    plain_thread(|| Ok(shell.get()?.engine.team_answer(&request_id, verdict.into(), &reason).map(|_| ())?))
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
pub async fn update_check<R: tauri::Runtime>(
    app: tauri::AppHandle<R>,
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

/// Download the signal encoder's base, check each file against its pinned SHA-256, put it
/// in place and load it: from then on cases are scanned with it (the inbox shows them again).
#[tauri::command(async)]
pub fn encoder_fetch(shell: State<'_, Shell>, on_progress: Channel<EncoderProgress>) -> Res<EncoderFetched> {
    use countersign_host::encoder::Fetching;
    let bytes = |b: u64| u32::try_from(b).unwrap_or(u32::MAX);
    let progress = |f: Fetching| {
        let (phase, received, total) = match f {
            Fetching::Downloading { received, total } => ("downloading", bytes(received), total.map(bytes)),
            Fetching::Checking => ("checking", 0, None),
            Fetching::Loading => ("loading", 0, None),
        };
        if let Err(e) = on_progress.send(EncoderProgress { phase: phase.into(), received, total }) {
            tracing::debug!(error = %e, "progress channel closed");
        }
    };
    plain_thread(|| {
        let engine = &shell.get()?.engine;
        let fetched = countersign_host::encoder::fetch_and_load(engine, &progress).map_err(|e| AppError {
            code: ErrorCode::EncoderFetchFailed,
            message: e.to_string(),
            next_step: e.next_step().to_string(),
        })?;
        Ok(EncoderFetched { dir: fetched.dir.display().to_string(), downloaded: bytes(fetched.downloaded) })
    })
}
