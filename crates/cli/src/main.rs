//! `countersign`: the command line over the engine, for headless use, admins and CI.
//!
//! Every subcommand parses its arguments, calls one engine function and prints
//! the result (JSON with `--json`). Exit status: 0 ok, 1 refused or invalid input,
//! 2 usage error.
#![allow(clippy::print_stdout)]

mod admin;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use countersign_core::evidence::Verdict;
use countersign_core::model::PauseScope;
use countersign_core::{Outcome, PlanDecision};
use countersign_engine::Secret;
use countersign_engine::workspace::read_json;
use countersign_engine::{CaseFile, Engine, EngineError, LogFilter, Proof};
use serde::Serialize;

#[derive(Parser, Debug)]
#[command(
    name = "countersign",
    version,
    about = "Governed actions for support teams: policy decisions, evidence, pauses."
)]
struct Cli {
    /// The workspace file (default: $COUNTERSIGN_WORKSPACE, else the demo workspace).
    #[arg(long, global = true, value_name = "FILE")]
    workspace: Option<PathBuf>,
    /// Where the evidence database lives (default: $COUNTERSIGN_DATA_DIR, else the user data dir).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Operator id (default: the workspace's operator).
    #[arg(long, global = true)]
    operator: Option<String>,
    /// Operator role, one the policy declares (e.g. agent, team_lead).
    #[arg(long, global = true)]
    role: Option<String>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Decide a plan for a case under the workspace policy (JSON out; records nothing).
    Decide(DecideArgs),
    /// Decide a case's plan (the one given, the one recorded in the case file, or else one
    /// made by the workspace's planner), record it, run what may run now and queue the rest
    /// (also runs steps of the case approved since, and reconciles unfinished ones).
    Run(DecideArgs),
    /// Check policy files.
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// Pause and resume automation by tenant, channel, store, workflow or action.
    #[command(subcommand)]
    Pause(PauseCmd),
    /// Read, verify and export the evidence log.
    #[command(subcommand)]
    Log(LogCmd),
    /// The review queue: steps waiting for a countersignature.
    #[command(subcommand)]
    Review(ReviewCmd),
    /// Platform credentials in the OS keyring (values are never shown).
    #[command(subcommand)]
    Credentials(CredentialsCmd),
    /// The team-lead roster: who may countersign supervisor steps, proven by a passphrase.
    #[command(subcommand)]
    Roster(RosterCmd),
    /// The knowledge base: index the articles, search them, show one.
    #[command(subcommand)]
    Kb(KbCmd),
    /// Run the workspace's sample cases through the pipeline and show what would run, wait or be refused.
    Demo,
    /// Plan a case with the workspace's planner (`[planner]`; the local planner by default:
    /// governed reads, cited reply), decide it and record it; `--json` prints the plan, what
    /// the planner read and the decision.
    Plan(PlanArgs),
    /// Score the workspace's planner (the local one by default) on a labelled evaluation set
    /// (intent accuracy, step precision/recall, citation precision). Uses a fresh data dir.
    Eval(EvalArgs),
    /// Admin keys and signed releases.
    #[command(subcommand)]
    Admin(admin::AdminCmd),
}

#[derive(Args, Debug)]
struct PlanArgs {
    /// A case JSON file (a case file that also holds a recorded plan is fine: the recorded plan is ignored).
    #[arg(long, value_name = "FILE")]
    case: PathBuf,
}

#[derive(Args, Debug)]
struct EvalArgs {
    /// The evaluation set (JSON Lines; default: the repository's `assets/eval/cases.jsonl`).
    #[arg(long, value_name = "FILE")]
    cases: Option<PathBuf>,
    /// Print every case whose intent, steps or citations differ from the labels.
    #[arg(long)]
    misses: bool,
    /// Score on the workspace's sample cases instead, labelled by their recorded plans
    /// (a set the playbooks were not tuned on; plans with unknown actions are left out).
    #[arg(long, conflicts_with = "cases")]
    samples: bool,
}

#[derive(Subcommand, Debug)]
enum KbCmd {
    /// Index the knowledge directory (only new and changed files are parsed) and print the counts.
    /// Exits 1 when an article cannot be parsed (its errors are file:line:column).
    Index {
        /// Parse every article again and rebuild the full-text index.
        #[arg(long)]
        rebuild: bool,
    },
    /// Search the knowledge base: plain words, best passages first; `word*` matches a prefix.
    Search {
        #[arg(required = true, value_name = "QUERY")]
        query: Vec<String>,
        #[arg(long, default_value_t = 10)]
        limit: usize,
    },
    /// Show an article, or one section of it: ID or ID#anchor.
    Show {
        #[arg(value_name = "ID[#anchor]")]
        target: String,
    },
}

#[derive(Args, Debug)]
struct DecideArgs {
    /// A case JSON file, or a case file holding both `case` and `plan`.
    #[arg(long, value_name = "FILE")]
    case: PathBuf,
    /// A plan JSON file (omit when the case file holds the plan; `run` then plans with the local planner).
    #[arg(long, value_name = "FILE")]
    plan: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum PolicyCmd {
    /// Parse and check a policy (default: the workspace's); errors are file:line:column.
    Check {
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Build and sign a policy pack (policy, roster, catalog, managed settings) from a source file.
    Sign(admin::SignArgs),
    /// Check a signed pack against the trusted admin keys; exit 1 with the reason if refused.
    Verify(admin::VerifyArgs),
    /// What the workspace runs on: a signed pack (which, signed by whom) or dev mode.
    Status,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ScopeArg {
    Tenant,
    Channel,
    Store,
    Workflow,
    Action,
}

impl From<ScopeArg> for PauseScope {
    fn from(s: ScopeArg) -> PauseScope {
        match s {
            ScopeArg::Tenant => PauseScope::Tenant,
            ScopeArg::Channel => PauseScope::Channel,
            ScopeArg::Store => PauseScope::Store,
            ScopeArg::Workflow => PauseScope::Workflow,
            ScopeArg::Action => PauseScope::Action,
        }
    }
}

#[derive(Subcommand, Debug)]
enum PauseCmd {
    /// Pause automation in a scope: every step in it is refused until cleared.
    Set {
        #[arg(long, value_enum)]
        scope: ScopeArg,
        /// The tenant, channel, store, workflow (plan intent) or action to pause.
        #[arg(long)]
        value: String,
        #[arg(long)]
        reason: String,
    },
    /// Clear a pause by id.
    Clear {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// List active pauses (all, with cleared ones, with --all).
    List {
        #[arg(long)]
        all: bool,
    },
}

#[derive(Subcommand, Debug)]
enum ReviewCmd {
    /// List the steps waiting for a countersignature.
    List,
    /// Countersign a step (as --operator/--role); it binds to the step as decided and the policy version.
    /// Supervisor steps need --as: a roster member proving who they are with their passphrase.
    Approve {
        plan: String,
        step: String,
        #[arg(long, default_value = "")]
        reason: String,
        /// Countersign as this roster member; the passphrase is read from the terminal (or stdin).
        #[arg(long = "as", value_name = "LEAD_ID")]
        as_lead: Option<String>,
        /// Then run the case's approved steps at once, as the app's countersign does.
        #[arg(long)]
        run: bool,
    },
    /// Reject a step, with a reason.
    Reject {
        plan: String,
        step: String,
        #[arg(long)]
        reason: String,
        /// Reject as this roster member; the passphrase is read from the terminal (or stdin).
        #[arg(long = "as", value_name = "LEAD_ID")]
        as_lead: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum RosterCmd {
    /// List the roster (ids and roles; never hashes).
    List,
    /// Hash a passphrase for a `[[roster]]` entry (read from the terminal, or stdin).
    Hash {
        /// The member's id.
        #[arg(long)]
        id: String,
        #[arg(long, default_value = "team_lead")]
        role: String,
    },
}

#[derive(Subcommand, Debug)]
enum CredentialsCmd {
    /// Store a credential; the value is read from stdin (never from the command line).
    Set {
        /// PLATFORM/STORE, e.g. demo_seller_center/acme-us
        name: String,
    },
    /// Delete a credential.
    Delete { name: String },
    /// List credential names (never values).
    List,
}

#[derive(Subcommand, Debug)]
enum LogCmd {
    /// List evidence events, oldest first.
    List {
        #[arg(long)]
        case: Option<String>,
        #[arg(long)]
        kind: Option<String>,
        /// Only events whose body contains this text.
        #[arg(long)]
        text: Option<String>,
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Show one case's evidence timeline.
    Show { case: String },
    /// Verify the hash chain (or an exported bundle) and name the first broken event.
    Verify {
        #[arg(long, value_name = "DIR")]
        bundle: Option<PathBuf>,
    },
    /// Export the log to a self-verifying bundle directory (after a device-signed checkpoint).
    Export { dir: PathBuf },
    /// Sign the log's current head with this device's key (kept in the OS keyring).
    Checkpoint,
    /// Write a blob the evidence names by hash (a screenshot, a page snapshot) to a file.
    Blob {
        /// The SHA-256 the evidence gives (`screenshot.sha256`, `snapshot.sha256`).
        hash: String,
        #[arg(long)]
        out: PathBuf,
    },
}

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

fn default_workspace() -> PathBuf {
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

/// A case file: a bare case, or a case with a recorded plan (`{"case": …, "plan": …}`).
fn load_case(path: &Path) -> anyhow::Result<(countersign_core::model::Case, Option<countersign_core::model::Plan>)> {
    let value: serde_json::Value = read_json(path)?;
    if value.get("case").is_some() {
        let file = CaseFile::load(path)?;
        Ok((file.case, Some(file.plan)))
    } else {
        Ok((read_json(path)?, None))
    }
}

fn default_eval_cases() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../assets/eval/cases.jsonl"))
}

fn print_eval(r: &countersign_engine::eval::EvalReport, misses: bool) {
    if misses {
        for s in &r.scores {
            let steps_ok = s.steps == s.expected_steps;
            let cites_ok = s.cited.iter().all(|c| s.expected_articles.contains(c));
            if s.intent != s.expected_intent || !steps_ok || !cites_ok || s.error.is_some() {
                println!(
                    "{}: intent {} (want {}); steps {:?} (want {:?}); cited {:?} (want {:?}){}",
                    s.case_id,
                    s.intent,
                    s.expected_intent,
                    s.steps,
                    s.expected_steps,
                    s.cited,
                    s.expected_articles,
                    s.error.as_ref().map(|e| format!("; error: {e}")).unwrap_or_default()
                );
            }
        }
        println!();
    }
    println!("planner {} on {} cases ({} failed)", r.planner, r.cases, r.failed);
    println!("  intent accuracy       {}", r.intent_accuracy);
    println!("  step precision        {}", r.step_precision);
    println!("  step recall           {}", r.step_recall);
    println!("  citation precision    {}", r.citation_precision);
    println!("  citation support      {}", r.citation_support);
    println!("  promises in review    {}", r.promises_in_review);
    println!("  per case              p50 {} µs, p99 {} µs", r.p50_us, r.p99_us);
}

/// Open the workspace the way every face does (`countersign_host::open`): the data folder
/// by the one rule (`--data-dir`, else `$COUNTERSIGN_DATA_DIR`, else the user data dir),
/// the connector it names, the engine.
fn open(cli: &Cli) -> anyhow::Result<countersign_host::Opened> {
    let options = countersign_host::Options {
        workspace: cli.workspace.clone().unwrap_or_else(default_workspace),
        root: countersign_host::DataRoot::resolve(cli.data_dir.clone())?,
        operator_id: cli.operator.clone(),
        role: cli.role.clone(),
    };
    Ok(countersign_host::open(options)?)
}

fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Decide(args) => {
            let opened = open(&cli)?;
            let engine = &opened.engine;
            let file: CaseFile = match &args.plan {
                None => CaseFile::load(&args.case)?,
                Some(plan) => CaseFile { case: read_json(&args.case)?, plan: read_json(plan)? },
            };
            let decision = engine.decide(&file.case, &file.plan)?;
            print_json(&decision)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(args) => {
            let opened = open(&cli)?;
            let engine = &opened.engine;
            let (case, recorded) = load_case(&args.case)?;
            let plan = match (&args.plan, recorded) {
                (Some(plan), _) => Some(read_json(plan)?),
                (None, recorded) => recorded,
            };
            let run = engine.run_case(&case, plan.as_ref())?;
            if cli.json {
                print_json(&run)?;
            } else {
                print_run(&run);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Policy(PolicyCmd::Check { file }) => {
            let path = match file {
                Some(f) => f.clone(),
                None => {
                    countersign_engine::Workspace::load(&cli.workspace.clone().unwrap_or_else(default_workspace))?
                        .policy
                }
            };
            let summary = countersign_engine::check_policy(&path)?;
            if cli.json {
                print_json(&summary)?;
            } else {
                println!(
                    "{}: ok — {} v{} ({}), {} actions, {} rules, {} signals, {} reply rules",
                    path.display(),
                    summary.id,
                    summary.version,
                    summary.hash,
                    summary.actions,
                    summary.rules,
                    summary.signals,
                    summary.reply_rules
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Policy(PolicyCmd::Sign(args)) => admin::policy_sign(&cli, args),
        Command::Policy(PolicyCmd::Verify(args)) => admin::policy_verify(&cli, args),
        Command::Policy(PolicyCmd::Status) => admin::policy_status(&cli),
        Command::Admin(cmd) => admin::admin(&cli, cmd),
        Command::Pause(cmd) => pause(&cli, cmd),
        Command::Credentials(cmd) => credentials(&cli, cmd),
        Command::Roster(cmd) => roster(&cli, cmd),
        Command::Review(cmd) => review(&cli, cmd),
        Command::Log(cmd) => log(&cli, cmd),
        Command::Kb(cmd) => kb(&cli, cmd),
        Command::Plan(args) => {
            let opened = open(&cli)?;
            let engine = &opened.engine;
            let (case, _recorded) = load_case(&args.case)?;
            let run = engine.plan(&case)?;
            if cli.json {
                print_json(&serde_json::json!({ "planned": run.planned, "decision": run.opened.decision }))?;
            } else {
                print_plan(&run);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval(args) => {
            let scratch = tempfile::tempdir().context("a scratch data dir for the evaluation")?;
            let opened = countersign_host::open(countersign_host::Options {
                workspace: cli.workspace.clone().unwrap_or_else(default_workspace),
                root: countersign_host::DataRoot::named(scratch.path()),
                operator_id: None,
                role: None,
            })?;
            let engine = &opened.engine;
            let cases = if args.samples {
                let files = engine.workspace().sample_cases()?;
                countersign_engine::eval::from_case_files(&files, &|a| engine.policy().actions.contains_key(a))
            } else {
                countersign_engine::eval::load_cases(&args.cases.clone().unwrap_or_else(default_eval_cases))?
            };
            let report = engine.evaluate(&cases, engine.configured_planner()?.as_ref())?;
            if cli.json {
                print_json(&report)?;
            } else {
                print_eval(&report, args.misses);
            }
            Ok(if report.failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::Demo => {
            let opened = open(&cli)?;
            let engine = &opened.engine;
            let results = engine.demo()?;
            if cli.json {
                print_json(&results)?;
            } else {
                print_demo(engine, &results);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn pause(cli: &Cli, cmd: &PauseCmd) -> anyhow::Result<ExitCode> {
    let opened = open(cli)?;
    let engine = &opened.engine;
    match cmd {
        PauseCmd::Set { scope, value, reason } => {
            let p = engine.pause_set((*scope).into(), value, reason)?;
            if cli.json {
                print_json(&p)?;
            } else {
                println!("paused {} {:?} as {} (by {}, {})", p.scope.as_str(), p.value, p.id, p.set_by, p.set_at);
            }
        }
        PauseCmd::Clear { id, reason } => {
            engine.pause_clear(id, reason)?;
            if cli.json {
                print_json(&serde_json::json!({"cleared": id}))?;
            } else {
                println!("cleared {id}");
            }
        }
        PauseCmd::List { all } => {
            if *all {
                let h = engine.pause_history()?;
                if cli.json {
                    print_json(&h)?;
                } else {
                    for r in &h {
                        let state = match &r.cleared {
                            Some(c) => format!("cleared by {} at {} ({})", c.by, c.at, c.reason),
                            None => "active".into(),
                        };
                        println!(
                            "{}  {} {:?}  set by {} at {} ({})  {state}",
                            r.pause.id,
                            r.pause.scope.as_str(),
                            r.pause.value,
                            r.pause.set_by,
                            r.pause.set_at,
                            r.pause.reason
                        );
                    }
                }
            } else {
                let active = engine.pauses()?;
                if cli.json {
                    print_json(&active)?;
                } else if active.is_empty() {
                    println!("no active pauses");
                } else {
                    for p in &active {
                        println!(
                            "{}  {} {:?}  set by {} at {} ({})",
                            p.id,
                            p.scope.as_str(),
                            p.value,
                            p.set_by,
                            p.set_at,
                            p.reason
                        );
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn review(cli: &Cli, cmd: &ReviewCmd) -> anyhow::Result<ExitCode> {
    let opened = open(cli)?;
    let engine = &opened.engine;
    match cmd {
        ReviewCmd::List => {
            let queue = engine.review_queue()?;
            if cli.json {
                print_json(&queue)?;
            } else if queue.is_empty() {
                println!("nothing waits for review");
            } else {
                for s in &queue {
                    let proof = if s.decision == "supervisor" { " (on the roster: --as LEAD_ID)" } else { "" };
                    println!(
                        "{} {}  {:<30} {:<10} case {}  needs {}{proof}",
                        s.plan_id,
                        s.step_id,
                        s.action,
                        s.decision,
                        s.case_id,
                        s.approver_roles.join(" or ")
                    );
                }
            }
        }
        ReviewCmd::Approve { plan, step, reason, as_lead, .. } | ReviewCmd::Reject { plan, step, reason, as_lead } => {
            let (verdict, run) = match cmd {
                ReviewCmd::Approve { run, .. } => (Verdict::Approved, *run),
                _ => (Verdict::Rejected, false),
            };
            let proof = match as_lead {
                Some(id) => Some(Proof { id: id.clone(), passphrase: read_secret(&format!("passphrase for {id}: "))? }),
                None => None,
            };
            let review = engine.countersign((plan, step), verdict, reason, proof.as_ref(), run)?;
            if cli.json && run {
                print_json(&review)?;
            } else if cli.json {
                print_json(&review.step)?;
            } else {
                println!("{} {} is now {}", review.step.plan_id, review.step.step_id, review.step.state.as_str());
                for r in &review.ran {
                    let note = r.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default();
                    println!("ran {} {} ({}): {}{note}", r.plan_id, r.step_id, r.action, r.state.as_str());
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
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

fn roster(cli: &Cli, cmd: &RosterCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        RosterCmd::List => {
            let opened = open(cli)?;
            let engine = &opened.engine;
            let members = engine.roster();
            if cli.json {
                print_json(&members)?;
            } else if members.is_empty() {
                println!("the roster is empty: supervisor steps cannot be approved (see `countersign roster hash`)");
            } else {
                for m in &members {
                    println!("{:<20} {:<12} {}", m.id, m.role, m.name.as_deref().unwrap_or_default());
                }
            }
        }
        RosterCmd::Hash { id, role } => {
            let passphrase = read_secret(&format!("passphrase for {id}: "))?;
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                let again = read_secret("again: ")?;
                if again.expose() != passphrase.expose() {
                    anyhow::bail!(EngineError::BadInput { message: "the two passphrases differ".into() });
                }
            }
            let hash = countersign_engine::roster::hash_passphrase(&passphrase).map_err(EngineError::from)?;
            if cli.json {
                print_json(&serde_json::json!({"id": id, "role": role, "passphrase": hash}))?;
            } else {
                println!("[[roster]]\nid = {id:?}\nrole = {role:?}\npassphrase = {hash:?}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn credentials(cli: &Cli, cmd: &CredentialsCmd) -> anyhow::Result<ExitCode> {
    use countersign_engine::credentials as creds;
    let store = creds::keyring();
    match cmd {
        CredentialsCmd::Set { name } => {
            let value = read_secret(&format!("value for {name}: "))?;
            let n = creds::set(&store, name, value)?;
            if cli.json {
                print_json(&serde_json::json!({"set": n.to_string()}))?;
            } else {
                println!("stored {n} in the OS keyring");
            }
        }
        CredentialsCmd::Delete { name } => {
            let n = creds::delete(&store, name)?;
            if cli.json {
                print_json(&serde_json::json!({"deleted": n.to_string()}))?;
            } else {
                println!("deleted {n}");
            }
        }
        CredentialsCmd::List => {
            let names = creds::list(&store)?;
            if cli.json {
                print_json(&names.iter().map(ToString::to_string).collect::<Vec<_>>())?;
            } else if names.is_empty() {
                println!("no credentials stored");
            } else {
                for n in names {
                    println!("{n}");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn log(cli: &Cli, cmd: &LogCmd) -> anyhow::Result<ExitCode> {
    if let LogCmd::Verify { bundle: Some(dir) } = cmd {
        return report_verify(cli, &countersign_engine::verify_bundle(dir)?, &dir.display().to_string());
    }
    if let LogCmd::Checkpoint = cmd {
        return admin::log_checkpoint(cli);
    }
    let opened = open(cli)?;
    let engine = &opened.engine;
    match cmd {
        LogCmd::List { case, kind, text, limit } => {
            let events = engine.log_list(&LogFilter {
                case_id: case.clone(),
                kind: kind.clone(),
                text: text.clone(),
                limit: *limit,
                since_seq: None,
            })?;
            if cli.json {
                print_json(&events)?;
            } else {
                for e in &events {
                    println!(
                        "{:>6}  {}  {:<16} {:<18} {}",
                        e.seq,
                        e.at,
                        e.kind(),
                        e.actor,
                        e.case_id.as_deref().unwrap_or("-")
                    );
                }
            }
        }
        LogCmd::Show { case } => {
            let events = engine.log_case(case)?;
            if events.is_empty() {
                anyhow::bail!(EngineError::BadInput { message: format!("no evidence for case {case:?}") });
            }
            if cli.json {
                print_json(&events)?;
            } else {
                for e in &events {
                    println!("{:>6}  {}  {:<16} by {}", e.seq, e.at, e.kind(), e.actor);
                    println!("        {}", e.summary());
                }
            }
        }
        LogCmd::Verify { bundle: None } => {
            return report_verify(cli, &engine.verify()?, &engine.store_path().display().to_string());
        }
        LogCmd::Verify { bundle: Some(_) } | LogCmd::Checkpoint => unreachable!("handled above"),
        LogCmd::Blob { hash, out } => {
            let Some(blob) = engine.blob(hash)? else {
                anyhow::bail!(EngineError::NotFound { message: format!("no blob {hash:?} in the evidence store") });
            };
            std::fs::write(out, &blob.data).with_context(|| format!("writing {}", out.display()))?;
            if cli.json {
                print_json(
                    &serde_json::json!({"hash": blob.hash, "media_type": blob.media_type, "bytes": blob.data.len(), "out": out}),
                )?;
            } else {
                println!("{} ({}, {} bytes) written to {}", blob.hash, blob.media_type, blob.data.len(), out.display());
            }
        }
        LogCmd::Export { dir } => {
            let summary = engine.log_export(dir)?;
            if cli.json {
                print_json(&summary)?;
            } else {
                println!(
                    "exported {} events to {} (head {}); check it with: countersign log verify --bundle {1} or python3 {1}/verify.py",
                    summary.manifest.count,
                    summary.dir.display(),
                    summary.manifest.head.to_hex()
                );
                admin::print_checkpoints(&countersign_engine::checkpoints::check_bundle_checkpoints(&summary.dir)?);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn kb(cli: &Cli, cmd: &KbCmd) -> anyhow::Result<ExitCode> {
    let opened = open(cli)?;
    let engine = &opened.engine;
    match cmd {
        KbCmd::Index { rebuild } => {
            // Opening the engine indexed the directory; report what that did.
            let report = if *rebuild { engine.kb_index(true)? } else { engine.kb_open_report().clone() };
            if cli.json {
                print_json(&report)?;
            } else {
                println!(
                    "{}: {} articles indexed ({} added, {} updated, {} removed, {} unchanged, {} failed) in {} ms",
                    report.dir.display(),
                    report.articles,
                    report.added,
                    report.updated,
                    report.removed,
                    report.unchanged,
                    report.failed,
                    report.elapsed_ms
                );
            }
            for e in &report.errors {
                eprintln!("{e}");
            }
            if !report.errors.is_empty() {
                return Ok(ExitCode::from(1));
            }
        }
        KbCmd::Search { query, limit } => {
            let query = query.join(" ");
            let hits = engine.kb_search(&query, *limit)?;
            if cli.json {
                print_json(&hits)?;
            } else if hits.is_empty() {
                println!("no passage matches {query:?}");
            } else {
                println!("{:>3}  {:>6}  {:<44} {:>3}  heading", "#", "score", "article#anchor", "v");
                for (i, h) in hits.iter().enumerate() {
                    let target = format!("{}#{}", h.article_id, h.anchor);
                    println!("{:>3}  {:>6.2}  {target:<44} {:>3}  {}", i + 1, h.score, h.version, h.heading);
                    println!("{:>13}{}", "", h.snippet.split_whitespace().collect::<Vec<_>>().join(" "));
                }
            }
        }
        KbCmd::Show { target } => {
            let (id, anchor) = match target.split_once('#') {
                Some((id, anchor)) => (id, Some(anchor)),
                None => (target.as_str(), None),
            };
            let article = engine.kb_article(id, anchor)?;
            if cli.json {
                print_json(&article)?;
            } else {
                println!("{} v{} — {}", article.id, article.version, article.title);
                println!("owner {} · tags {} · {}", article.owner, article.tags.join(", "), article.path);
                for p in &article.passages {
                    println!();
                    println!("## {}  (#{})", p.heading, p.anchor);
                    println!();
                    println!("{}", p.text);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn report_verify(cli: &Cli, v: &countersign_engine::LogVerification, what: &str) -> anyhow::Result<ExitCode> {
    if cli.json {
        print_json(v)?;
    } else {
        if let Some(b) = &v.chain.first_broken {
            println!("{what}: BROKEN at event {}: {}", b.seq, b.problem);
        } else {
            println!("{what}: ok — {} events, head {}", v.chain.count, v.chain.head.to_hex());
        }
        admin::print_checkpoints(&v.checkpoints);
    }
    Ok(if v.ok() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn print_run(run: &countersign_engine::cases::CaseRun) {
    for r in &run.recovered {
        println!("recovered {} {} ({}): {}", r.plan_id, r.step_id, r.action, r.state.as_str());
    }
    print_steps(&run.decision);
    println!();
    for s in &run.steps {
        let ran = run.ran.iter().find(|r| r.plan_id == s.plan_id && r.step_id == s.step_id);
        let note = ran.and_then(|r| r.error.clone()).unwrap_or_default();
        println!("  {:<4} {:<30} {:<12} {note}", s.step_id, s.action, s.state.as_str());
    }
}

fn print_plan(run: &countersign_engine::cases::PlanRun) {
    let plan = &run.planned.plan;
    println!("intent: {}", plan.intent);
    print_steps(&run.opened.decision);
    if let Some(reply) = &plan.reply {
        println!("\n{}\n", reply.text);
        for (i, c) in reply.citations.iter().enumerate() {
            println!(
                "[{}] {} v{} #{}",
                i + 1,
                c.article_id,
                c.version.as_deref().unwrap_or("?"),
                c.anchor.as_deref().unwrap_or("-")
            );
        }
    }
}

fn badge(o: Outcome) -> &'static str {
    match o {
        Outcome::Auto => "RUNS      ",
        Outcome::Confirm => "WAITS(agt)",
        Outcome::Supervisor => "WAITS(tl) ",
        Outcome::Recommend => "ADVICE    ",
        Outcome::Forbid => "REFUSED   ",
    }
}

fn print_demo(engine: &Engine, results: &[countersign_engine::DemoCase]) {
    let p = engine.policy();
    println!("Policy {} v{} ({})   evidence: {}", p.id, p.version, p.hash, engine.store_path().display());
    println!();
    for r in results {
        let said: String = r.customer_says.chars().take(90).collect();
        println!("{}  [{}]  intent: {}", r.case_id, r.channel, r.intent);
        println!("  customer: \"{said}\"");
        if r.decision.handoff {
            let sig: Vec<_> = r.decision.signals.iter().map(|s| s.id.as_str()).collect();
            println!("  HANDOFF to a human: {}", sig.join(", "));
        }
        print_steps(&r.decision);
        println!();
    }
    let mut tally = std::collections::BTreeMap::new();
    for r in results {
        for (o, n) in r.decision.tally() {
            *tally.entry(o).or_insert(0usize) += n;
        }
    }
    let parts: Vec<String> = tally.iter().map(|(o, n)| format!("{n} {o}")).collect();
    println!("{} cases, steps: {}", results.len(), parts.join(", "));
}

fn print_steps(d: &PlanDecision) {
    for s in &d.steps {
        let why = s.reasons.first().map(|r| r.text.as_str()).unwrap_or_default();
        println!("  {} {:<30} {}", badge(s.decision), s.action, why);
    }
    if let Some(r) = &d.reply {
        let why = r.reasons.first().map(|r| r.text.as_str()).unwrap_or_default();
        println!("  {} {:<30} {}", badge(r.decision), "reply", why);
    }
}
