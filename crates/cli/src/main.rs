//! `countersign`: the command line over the engine, for headless use, admins and CI.
//!
//! Every subcommand parses its arguments, calls one engine function and prints
//! the result (JSON with `--json`). Exit status: 0 ok, 1 refused or invalid input,
//! 2 usage error.
#![allow(clippy::print_stdout)]

mod admin;
mod args;
mod render;
mod team;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use countersign_core::evidence::Verdict;
use countersign_engine::{EngineError, LogFilter, Proof, Secret};

use crate::args::*;
use crate::render::{out, print_json};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            let code =
                err.downcast_ref::<EngineError>().map(|e| format!("{:?}", e.code())).unwrap_or_else(|| "Error".into());
            if json {
                let body = serde_json::json!({"error": {"code": code, "message": format!("{err:#}")}});
                println!("{body}");
            }
            eprintln!("error [{code}]: {err:#}");
            ExitCode::from(1)
        }
    }
}

pub(crate) fn default_workspace() -> PathBuf {
    if let Some(p) = std::env::var_os("COUNTERSIGN_WORKSPACE") {
        return PathBuf::from(p);
    }
    // Installed layout: <prefix>/bin/countersign and <prefix>/share/countersign/demo.
    if let Ok(exe) = std::env::current_exe()
        && let Some(prefix) = exe.parent().and_then(Path::parent)
    {
        let installed = prefix.join("share/countersign/demo/workspace.toml");
        if installed.exists() {
            return installed;
        }
    }
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../assets/demo/workspace.toml"))
}

fn default_signal_set() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../assets/eval/signals/holdout-19.jsonl"))
}

fn default_eval_cases() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../assets/eval/cases.jsonl"))
}

/// Open the workspace the way every face does (`countersign_host::open`): the data folder
/// by the one rule (`--data-dir`, else `$COUNTERSIGN_DATA_DIR`, else the user data dir),
/// the connector it names, the engine.
pub(crate) fn open(cli: &Cli) -> anyhow::Result<countersign_host::Opened> {
    let options = countersign_host::Options {
        workspace: cli.workspace.clone().unwrap_or_else(default_workspace),
        root: countersign_host::DataRoot::resolve(cli.data_dir.clone())?,
        operator_id: cli.operator.clone(),
        role: cli.role.clone(),
    };
    Ok(countersign_host::open(options)?)
}

/// A secret typed at the terminal (not echoed), or the first line of stdin.
fn read_secret(prompt: &str) -> anyhow::Result<Secret> {
    let value = if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        rpassword::prompt_password(prompt).context("reading from the terminal")?
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).context("reading from stdin")?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    Ok(Secret::new(value))
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let json = cli.json;
    match &cli.command {
        Command::Decide(args) => {
            let (case, plan) = countersign_engine::cases::read_case(&args.case, args.plan.as_deref())?;
            let plan = plan.ok_or_else(|| EngineError::BadInput {
                message: format!("{}: no plan in the case file; give one with --plan", args.case.display()),
            })?;
            let decision = open(&cli)?.engine.decide(&case, &plan)?;
            print_json(&decision)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(args) => {
            let (case, plan) = countersign_engine::cases::read_case(&args.case, args.plan.as_deref())?;
            let opened = open(&cli)?;
            let ran = with_team(&opened, || opened.engine.run_case(&case, plan.as_ref()))?;
            out(json, &ran, render::run)
        }
        Command::Plan(args) => {
            let (case, _recorded) = countersign_engine::cases::read_case(&args.case, None)?;
            let run = open(&cli)?.engine.plan(&case)?;
            let body = serde_json::json!({ "planned": run.planned, "decision": run.opened.decision });
            out(json, &body, |_| render::plan(&run))
        }
        Command::Policy(PolicyCmd::Check { file }) => {
            let path = match file {
                Some(f) => f.clone(),
                None => {
                    countersign_engine::Workspace::load(&cli.workspace.clone().unwrap_or_else(default_workspace))?
                        .policy
                }
            };
            out(json, &countersign_engine::check_policy(&path)?, |s| render::policy(&path, s))
        }
        Command::Policy(PolicyCmd::Simulate(args)) => admin::policy_simulate(&cli, args),
        Command::Policy(PolicyCmd::Autonomy(args)) => admin::policy_autonomy(&cli, args),
        Command::Policy(PolicyCmd::Sign(args)) => admin::policy_sign(&cli, args),
        Command::Policy(PolicyCmd::Verify(args)) => admin::policy_verify(&cli, args),
        Command::Policy(PolicyCmd::Status) => admin::policy_status(&cli),
        Command::Admin(cmd) => admin::admin(&cli, cmd),
        Command::Team(cmd) => team::team(&cli, cmd),
        Command::Pause(cmd) => pause(&cli, cmd),
        Command::Credentials(cmd) => credentials(json, cmd),
        Command::Encoder(cmd) => encoder(&cli, cmd),
        Command::Roster(cmd) => roster(&cli, cmd),
        Command::Review(cmd) => review(&cli, cmd),
        Command::Log(cmd) => log(&cli, cmd),
        Command::Kb(cmd) => kb(&cli, cmd),
        Command::Eval(EvalArgs { what: Some(EvalCmd::Signals { set, misses, planner }), .. }) => {
            let (_scratch, opened) = scratch_workspace(&cli)?;
            let set = set.clone().unwrap_or_else(default_signal_set);
            let report = if *planner {
                opened.engine.evaluate_signals_with_planner(&set, &mut render::progress("planned"))?
            } else {
                opened.engine.evaluate_signals(&set)?
            };
            out(json, &report, |r| render::signal_eval(r, *misses))?;
            // A message the planner could not plan was scored without it: not a clean run.
            Ok(if report.planner.as_ref().is_some_and(|p| !p.failed.is_empty()) {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Eval(args) => {
            let (_scratch, opened) = scratch_workspace(&cli)?;
            let set = (!args.samples).then(|| args.cases.clone().unwrap_or_else(default_eval_cases));
            let report = opened.engine.evaluate_set(set.as_deref())?;
            out(json, &report, |r| render::eval(r, args.misses))?;
            Ok(if report.failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::Demo => {
            let opened = open(&cli)?;
            out(json, &opened.engine.demo()?, |r| render::demo(&opened.engine, r))
        }
        Command::Sources(SourcesCmd::Sync) => {
            let reports = open(&cli)?.engine.sync_sources()?;
            out(json, &reports, |r| render::synced(r))?;
            // A source that could not be synced is a failure of the command.
            Ok(if reports.iter().any(|r| r.error.is_some()) { ExitCode::FAILURE } else { ExitCode::SUCCESS })
        }
        Command::Inbox => out(json, &open(&cli)?.engine.inbox()?, |r| render::inbox(r)),
        Command::Reply(ReplyCmd::Send { case_id, plan, text }) => {
            out(json, &open(&cli)?.engine.send_reply_as_checked(case_id, plan, text, None)?, render::case_view)
        }
        Command::Reply(ReplyCmd::Deliver { case_id }) => {
            out(json, &open(&cli)?.engine.deliver_reply_view(case_id)?, render::case_view)
        }
        Command::Reply(ReplyCmd::Promises { check }) => {
            let opened = open(&cli)?;
            let sweep = if *check { Some(opened.engine.check_promises()?) } else { None };
            let all = opened.engine.promises()?;
            let unreadable = sweep.as_ref().map(|s| s.unreadable.clone()).unwrap_or_default();
            out(json, &serde_json::json!({"promises": all, "unreadable": unreadable}), |_| {
                render::promises(&all, sweep.as_ref())
            })?;
            // A promise that could not be checked is a failure of the command.
            Ok(if unreadable.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Paste(args) => {
            out(json, &open(&cli)?.engine.paste_case_view(&args.pasted()?, &|_| ())?, render::case_view)
        }
        Command::Open { case_id } => {
            out(json, &open(&cli)?.engine.open_case_view(case_id, &|_| ())?, render::case_view)
        }
        Command::VerifyIdentity { case_id, customer, how } => {
            out(json, &open(&cli)?.engine.record_identity_check(case_id, customer, how)?, |e| {
                render::events(std::slice::from_ref(e))
            })
        }
    }
}

/// Run `f` while the team's entries keep reaching the engine (a pause a lead sets while
/// steps run stops the next one), then put what waits for a lead on the team's queue;
/// with no team, just run it.
fn with_team<T>(opened: &countersign_host::Opened, f: impl FnOnce() -> T) -> T {
    let Some(link) = &opened.team else { return f() };
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| countersign_host::team::pump(&opened.engine, link, &stop, &|_| ()));
        let result = f();
        // What now waits for a lead goes to the team's queue before this command ends.
        if let Err(e) = opened.engine.team_publish_requests() {
            eprintln!(
                "countersign: the team did not get this desk's supervisor steps ({e}); the app or the next run sends them"
            );
        }
        // And what the run recorded, to the team's evidence.
        if let Err(e) = countersign_host::team::replicate(&opened.engine, link, false) {
            eprintln!(
                "countersign: the run's evidence stays in this desk's outbox for now ({e}); the next start sends it"
            );
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        result
    })
}

/// The workspace opened on a scratch data root (dropped with the returned folder): an
/// evaluation leaves no evidence in the workspace's log.
fn scratch_workspace(cli: &Cli) -> anyhow::Result<(tempfile::TempDir, countersign_host::Opened)> {
    let scratch = tempfile::tempdir().context("a scratch data dir for the evaluation")?;
    let opened = countersign_host::open(countersign_host::Options {
        workspace: cli.workspace.clone().unwrap_or_else(default_workspace),
        root: countersign_host::DataRoot::named(scratch.path()),
        operator_id: None,
        role: None,
    })?;
    Ok((scratch, opened))
}

fn pause(cli: &Cli, cmd: &PauseCmd) -> anyhow::Result<ExitCode> {
    let engine = &open(cli)?.engine;
    match cmd {
        PauseCmd::Set { scope, value, reason } => {
            out(cli.json, &engine.pause_set((*scope).into(), value, reason)?, render::pause)
        }
        PauseCmd::Clear { id, reason } => {
            engine.pause_clear(id, reason)?;
            out(cli.json, &serde_json::json!({"cleared": id}), |_| println!("cleared {id}"))
        }
        PauseCmd::List { all: true } => out(cli.json, &engine.pause_history()?, |h| render::pause_history(h)),
        PauseCmd::List { all: false } => out(cli.json, &engine.pauses()?, |p| render::pauses(p)),
    }
}

fn review(cli: &Cli, cmd: &ReviewCmd) -> anyhow::Result<ExitCode> {
    let engine = &open(cli)?.engine;
    let (plan, step, reason, as_lead, verdict, run) = match cmd {
        ReviewCmd::List => return out(cli.json, &engine.review_queue()?, |q| render::review_queue(q)),
        ReviewCmd::Approve { plan, step, reason, as_lead, run } => {
            (plan, step, reason, as_lead, Verdict::Approved, *run)
        }
        ReviewCmd::Reject { plan, step, reason, as_lead } => (plan, step, reason, as_lead, Verdict::Rejected, false),
        ReviewCmd::Retry { plan, step } => return out(cli.json, &engine.retry_step(plan, step)?, render::step_run),
        ReviewCmd::Reverse { plan, step, reason, as_lead } => {
            let proof = Proof { id: as_lead.clone(), passphrase: read_secret(&format!("passphrase for {as_lead}: "))? };
            engine.record_reversal(plan, step, reason, &proof)?;
            let done = serde_json::json!({"reversed": {"plan": plan, "step": step}});
            return out(cli.json, &done, |_| println!("recorded: step {step} of plan {plan} was reversed"));
        }
        ReviewCmd::Settle { plan, step, applied, not_applied: _, reason, as_lead } => {
            let proof = Proof { id: as_lead.clone(), passphrase: read_secret(&format!("passphrase for {as_lead}: "))? };
            return out(cli.json, &engine.settle_step(plan, step, *applied, reason, &proof)?, render::step_run);
        }
    };
    let proof = match as_lead {
        Some(id) => Some(Proof { id: id.clone(), passphrase: read_secret(&format!("passphrase for {id}: "))? }),
        None => None,
    };
    let review = engine.countersign((plan, step), verdict, reason, proof.as_ref(), run)?;
    match run {
        true => out(cli.json, &review, render::review),
        false => out(cli.json, &review.step, render::reviewed),
    }
}

fn roster(cli: &Cli, cmd: &RosterCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        RosterCmd::List => out(cli.json, &open(cli)?.engine.roster(), |m| render::roster(m)),
        RosterCmd::Hash { id, role } => {
            let passphrase = read_secret(&format!("passphrase for {id}: "))?;
            if std::io::IsTerminal::is_terminal(&std::io::stdin())
                && read_secret("again: ")?.expose() != passphrase.expose()
            {
                anyhow::bail!(EngineError::BadInput { message: "the two passphrases differ".into() });
            }
            let hash = countersign_engine::roster::hash_passphrase(&passphrase).map_err(EngineError::from)?;
            let body = serde_json::json!({"id": id, "role": role, "passphrase": hash});
            out(cli.json, &body, |_| println!("[[roster]]\nid = {id:?}\nrole = {role:?}\npassphrase = {hash:?}"))
        }
    }
}

fn credentials(json: bool, cmd: &CredentialsCmd) -> anyhow::Result<ExitCode> {
    use countersign_engine::credentials as creds;
    let store = creds::keyring();
    match cmd {
        CredentialsCmd::Set { name } => {
            let n = creds::set(&store, name, read_secret(&format!("value for {name}: "))?)?;
            out(json, &serde_json::json!({"set": n.to_string()}), |_| println!("stored {n} in the OS keyring"))
        }
        CredentialsCmd::Delete { name } => {
            let n = creds::delete(&store, name)?;
            out(json, &serde_json::json!({"deleted": n.to_string()}), |_| println!("deleted {n}"))
        }
        CredentialsCmd::List => {
            let names: Vec<String> = creds::list(&store)?.iter().map(ToString::to_string).collect();
            out(json, &names, |n| render::names(n, "no credentials stored"))
        }
    }
}

fn encoder(cli: &Cli, cmd: &EncoderCmd) -> anyhow::Result<ExitCode> {
    use countersign_host::encoder;
    let json = cli.json;
    let dir = encoder::base_dir()?;
    // The workspace's signed pack may name the address (`settings.encoder_url`), as the app
    // reads it; unless this machine names one. A workspace that does not open leaves the
    // pinned address (what is fetched is checked against the pinned hashes either way).
    let pack_url = if std::env::var_os(encoder::URL_VAR).is_some_and(|v| !v.is_empty()) {
        None
    } else {
        match open(cli) {
            Ok(opened) => opened.engine.managed_settings().encoder_url,
            Err(e) => {
                eprintln!("the workspace did not open ({e:#}); using the encoder's pinned address");
                None
            }
        }
    };
    let url = encoder::source_url(pack_url.as_deref());
    match cmd {
        EncoderCmd::Status => {
            let status = serde_json::json!({
                "dir": dir, "in_place": encoder::in_place(&dir), "url": encoder::shown(&url)
            });
            out(json, &status, render::encoder_status)
        }
        EncoderCmd::Fetch => {
            let fetched = encoder::fetch(&url, &dir, &render::fetching())
                .map_err(|e| anyhow::anyhow!("{e}\n{}", e.next_step()))?;
            out(json, &serde_json::json!({"dir": fetched.dir, "downloaded": fetched.downloaded}), |_| {
                render::fetched(&fetched);
            })
        }
    }
}

fn log(cli: &Cli, cmd: &LogCmd) -> anyhow::Result<ExitCode> {
    let json = cli.json;
    let verified = |v: countersign_engine::LogVerification, what: String| {
        out(json, &v, |v| render::verify(v, &what))?;
        Ok(if v.ok() { ExitCode::SUCCESS } else { ExitCode::from(1) })
    };
    match cmd {
        LogCmd::Verify { bundle: Some(dir) } => {
            return verified(countersign_engine::verify_bundle(dir)?, dir.display().to_string());
        }
        LogCmd::Checkpoint => return admin::log_checkpoint(cli),
        _ => {}
    }
    let opened = open(cli)?;
    let engine = &opened.engine;
    match cmd {
        LogCmd::List { case, kind, text, limit } => {
            let filter = LogFilter {
                case_id: case.clone(),
                kind: kind.clone(),
                text: text.clone(),
                limit: *limit,
                since_seq: None,
            };
            out(json, &engine.log_list(&filter)?, |e| render::events(e))
        }
        LogCmd::Show { case } => {
            let events = engine.log_case(case)?;
            if events.is_empty() {
                anyhow::bail!(EngineError::BadInput { message: format!("no evidence for case {case:?}") });
            }
            out(json, &events, |e| render::timeline(e))
        }
        LogCmd::Verify { bundle: None } => {
            let v = engine.verify()?;
            // A desk of a team says when its log could not be held against the team's copy.
            let unwitnessed = !json && v.witnessed.is_none() && engine.team_status().is_some();
            let code = verified(v, engine.store_path().display().to_string())?;
            if unwitnessed {
                println!(
                    "not checked against the team: no checkpoint of this desk witnessed by the team has reached it"
                );
            }
            Ok(code)
        }
        LogCmd::Blob { hash, out: file } => {
            let Some(blob) = engine.blob(hash)? else {
                anyhow::bail!(EngineError::NotFound { message: format!("no blob {hash:?} in the evidence store") });
            };
            std::fs::write(file, &blob.data).with_context(|| format!("writing {}", file.display()))?;
            let body = serde_json::json!({"hash": blob.hash, "media_type": blob.media_type, "bytes": blob.data.len(), "out": file});
            out(json, &body, |_| {
                println!("{} ({}, {} bytes) written to {}", blob.hash, blob.media_type, blob.data.len(), file.display())
            })
        }
        LogCmd::Export { dir } => {
            let summary = engine.log_export(dir)?;
            let checkpoints = countersign_engine::checkpoints::check_bundle_checkpoints(&summary.dir)?;
            out(json, &summary, |s| render::export(s, &checkpoints))
        }
        LogCmd::Verify { bundle: Some(_) } | LogCmd::Checkpoint => unreachable!("handled above"),
    }
}

fn kb(cli: &Cli, cmd: &KbCmd) -> anyhow::Result<ExitCode> {
    let engine = &open(cli)?.engine;
    match cmd {
        KbCmd::Index { rebuild } => {
            // Opening the engine indexed the directory; report what that did.
            let report = if *rebuild { engine.kb_index(true)? } else { engine.kb_open_report().clone() };
            out(cli.json, &report, render::kb_index)?;
            report.errors.iter().for_each(|e| eprintln!("{e}"));
            Ok(if report.errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        KbCmd::Search { query, limit } => {
            let query = query.join(" ");
            out(cli.json, &engine.kb_search(&query, *limit)?, |h| render::kb_hits(&query, h))
        }
        KbCmd::Show { target } => {
            let (id, anchor) = match target.split_once('#') {
                Some((id, anchor)) => (id, Some(anchor)),
                None => (target.as_str(), None),
            };
            out(cli.json, &engine.kb_article(id, anchor)?, render::article)
        }
    }
}
