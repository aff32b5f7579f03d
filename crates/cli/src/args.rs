//! The command line as clap reads it: every subcommand and its arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use countersign_core::model::PauseScope;

use crate::admin;

#[derive(Parser, Debug)]
#[command(
    name = "countersign",
    version,
    about = "Governed actions for support teams: policy decisions, evidence, pauses."
)]
pub struct Cli {
    /// The workspace file (default: $COUNTERSIGN_WORKSPACE, else the demo workspace).
    #[arg(long, global = true, value_name = "FILE")]
    pub workspace: Option<PathBuf>,
    /// Where the evidence database lives (default: $COUNTERSIGN_DATA_DIR, else the user data dir).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Operator id (default: the workspace's operator).
    #[arg(long, global = true)]
    pub operator: Option<String>,
    /// Operator role, one the policy declares (e.g. agent, team_lead).
    #[arg(long, global = true)]
    pub role: Option<String>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
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
    /// The team plane: set a team up, enrol desktops, revoke them, and where this one stands.
    #[command(subcommand)]
    Team(crate::team::TeamCmd),
    /// Where cases arrive from (`[[sources]]`): read what is new there.
    #[command(subcommand)]
    Sources(SourcesCmd),
    /// The inbox: every case (from the cases folder and the sources) with what waits.
    Inbox,
    /// The signal encoder's base (all-MiniLM-L6-v2, 80 MB): whether it is on this machine,
    /// and fetching it. A policy that turns the encoder on hands off every case without it.
    #[command(subcommand)]
    Encoder(EncoderCmd),
    /// The reply of a case: send it (to the case's source, for a case from one), or post
    /// again one whose delivery is pending or unknown.
    #[command(subcommand)]
    Reply(ReplyCmd),
    /// Make a case of a conversation copied from a platform with no connector yet (its
    /// customer stays unverified; the reply is recorded for you to post there by hand).
    Paste(PasteArgs),
    /// Open a case by id as the app does: planned the first time (what may run on its own
    /// runs), else shown as recorded.
    Open {
        /// The case id (`SOURCE:CONVERSATION` for a case from a source).
        case_id: String,
    },
    /// Record that you verified a case's customer yourself (a one-time code sent to the
    /// account's contact, a call back): a strong verification of that account, in evidence.
    /// Plan the case again for its steps to be decided on it.
    VerifyIdentity {
        /// The case id.
        case_id: String,
        /// The platform's id of the account you verified.
        #[arg(long)]
        customer: String,
        /// How you verified them, in your words.
        #[arg(long)]
        how: String,
    },
}

#[derive(Args, Debug)]
pub struct PasteArgs {
    /// Where the customer wrote.
    #[arg(long, value_parser = parse_channel)]
    pub channel: countersign_core::model::Channel,
    /// The platform's id of the customer, as you know it.
    #[arg(long)]
    pub customer: Option<String>,
    /// The conversation text (or `--file`).
    #[arg(long, conflicts_with = "file", required_unless_present = "file")]
    pub text: Option<String>,
    /// A file holding the conversation text.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    #[arg(long)]
    pub tenant: String,
    #[arg(long)]
    pub store: String,
    #[arg(long)]
    pub platform: String,
    /// An order the case is about (repeat for more).
    #[arg(long = "order")]
    pub orders: Vec<String>,
}

impl PasteArgs {
    /// The pasted conversation as the engine takes it (the text from `--file` when given).
    pub fn pasted(&self) -> anyhow::Result<countersign_engine::intake::Pasted> {
        let text = match &self.file {
            Some(file) => {
                std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?
            }
            None => self.text.clone().unwrap_or_default(),
        };
        Ok(countersign_engine::intake::Pasted {
            channel: self.channel,
            customer_id: self.customer.clone(),
            tenant: self.tenant.clone(),
            store: self.store.clone(),
            platform: self.platform.clone(),
            subject: None,
            text,
            order_ids: self.orders.clone(),
        })
    }
}

fn parse_channel(s: &str) -> Result<countersign_core::model::Channel, String> {
    countersign_core::model::Channel::parse(s).ok_or_else(|| {
        format!("unknown channel {s:?} (chat, email, instagram_dm, tiktok_dm, facebook_messenger, whatsapp, phone, web_form)")
    })
}

#[derive(Subcommand, Debug)]
pub enum ReplyCmd {
    /// Send a case's reply as written: the policy decides the text (a promise or an
    /// unresolved citation raises it); `forbid`/`recommend` are refused.
    Send {
        case_id: String,
        /// The plan whose reply this is (`countersign open` shows it).
        #[arg(long)]
        plan: String,
        /// The reply text (the draft, or your edit of it).
        #[arg(long)]
        text: String,
    },
    /// Post a sent reply that is not delivered yet; an attempt that may have landed is
    /// settled first (same idempotency key, or the thread read back), so it lands once.
    Deliver { case_id: String },
    /// The promises sent replies made (delivery dates, refunds, compensation,
    /// guarantees): when each falls due, who owns it, and how it went.
    Promises {
        /// First check the promises whose day has passed: read their orders on the platform
        /// now and record whether each was kept.
        #[arg(long)]
        check: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum SourcesCmd {
    /// List each source's new and changed conversations since the last sync and record
    /// them as cases (a changed case already planned is planned again).
    Sync,
}

#[derive(Subcommand, Debug)]
pub enum EncoderCmd {
    /// Where the base is read from, and whether each of its files is there as pinned.
    Status,
    /// Download the base (from COUNTERSIGN_ENCODER_URL, else the address the workspace's
    /// signed pack names, else its pinned address), check
    /// each file against its pinned SHA-256 and put it in place; nothing is downloaded
    /// when it is there already.
    Fetch,
}

#[derive(Args, Debug)]
pub struct PlanArgs {
    /// A case JSON file (a case file that also holds a recorded plan is fine: the recorded plan is ignored).
    #[arg(long, value_name = "FILE")]
    pub case: PathBuf,
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct EvalArgs {
    #[command(subcommand)]
    pub what: Option<EvalCmd>,
    /// The evaluation set (JSON Lines; default: the repository's `assets/eval/cases.jsonl`).
    #[arg(long, value_name = "FILE")]
    pub cases: Option<PathBuf>,
    /// Print every case whose intent, steps or citations differ from the labels.
    #[arg(long)]
    pub misses: bool,
    /// Score on the workspace's sample cases instead, labelled by their recorded plans
    /// (a set the playbooks were not tuned on; plans with unknown actions are left out).
    #[arg(long, conflicts_with = "cases")]
    pub samples: bool,
}

#[derive(Subcommand, Debug)]
pub enum EvalCmd {
    /// Score the workspace policy's escalation signals on a labelled set of customer
    /// messages: recall and false handoffs per category (default set: the newest
    /// held-out part, `assets/eval/signals/holdout-19.jsonl`).
    Signals {
        /// The labelled set (JSON Lines, format in `assets/eval/signals/README.md`).
        #[arg(long, value_name = "FILE")]
        set: Option<PathBuf>,
        /// Print every message the policy got wrong (missed, or handed off for nothing).
        #[arg(long)]
        misses: bool,
        /// Have the workspace's planner read every message too, as a case of its own, and
        /// add what it flags, as a decision does (an LLM planner's flags can add a signal,
        /// never remove one): one planning a message, its reads through the workspace's
        /// connector. Exits 1 when a message could not be planned; stops after 5 in a row.
        #[arg(long)]
        planner: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum KbCmd {
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
pub struct DecideArgs {
    /// A case JSON file, or a case file holding both `case` and `plan`.
    #[arg(long, value_name = "FILE")]
    pub case: PathBuf,
    /// A plan JSON file (omit when the case file holds the plan; `run` then plans with the local planner).
    #[arg(long, value_name = "FILE")]
    pub plan: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum PolicyCmd {
    /// Parse and check a policy (default: the workspace's); errors are file:line:column.
    Check {
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Replay the decisions this workspace recorded through a draft policy: which steps would
    /// move between auto, confirm, supervisor, recommend and forbid, per action and per rule.
    Simulate(admin::SimulateArgs),
    /// Earned autonomy: each band's record in this workspace's log (approved unchanged,
    /// edited, rejected, reversed; rubber stamps apart) and the changes it proposes, each
    /// simulated; `--save KEY --out DIR` writes a proposal's draft and report for signing.
    Autonomy(admin::AutonomyArgs),
    /// Build and sign a policy pack (policy, roster, catalog, managed settings) from a source file.
    Sign(admin::SignArgs),
    /// Check a signed pack against the trusted admin keys; exit 1 with the reason if refused.
    Verify(admin::VerifyArgs),
    /// What the workspace runs on: a signed pack (which, signed by whom) or dev mode.
    Status,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ScopeArg {
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
pub enum PauseCmd {
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
pub enum ReviewCmd {
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
    /// Try a failed or not-applied step again: decided again now; under its approval when
    /// that still holds (else it waits for a countersignature); the same idempotency key
    /// unless the platform's own answer showed the earlier attempt did not apply.
    Retry { plan: String, step: String },
    /// Record that a step that ran was undone afterwards (a refund reversed by the bank, an
    /// order sent back): it counts against its band's earned autonomy (a team lead on the
    /// roster; the passphrase is read from the terminal or stdin).
    Reverse {
        plan: String,
        step: String,
        /// What was undone, and how you know.
        #[arg(long)]
        reason: String,
        #[arg(long = "as", value_name = "LEAD_ID")]
        as_lead: String,
    },
    /// Settle a step whose outcome is unknown, from what you saw on the platform (a team
    /// lead on the roster; the passphrase is read from the terminal or stdin).
    Settle {
        plan: String,
        step: String,
        /// The change is there on the platform.
        #[arg(long, conflicts_with = "not_applied", required_unless_present = "not_applied")]
        applied: bool,
        /// The change is not there.
        #[arg(long)]
        not_applied: bool,
        /// What you saw.
        #[arg(long)]
        reason: String,
        #[arg(long = "as", value_name = "LEAD_ID")]
        as_lead: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum RosterCmd {
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
pub enum CredentialsCmd {
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
pub enum LogCmd {
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
