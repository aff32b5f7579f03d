//! Admin commands: keys, signed policy packs, signed releases, device checkpoints.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use countersign_engine::keys::{KeySource, TrustedKeys};
use countersign_engine::{EngineError, Scope, credentials, pack, release};

use crate::args::Cli;
use crate::open;
use crate::render::{out, print_json};

#[derive(Subcommand, Debug)]
pub enum AdminCmd {
    /// Make an ed25519 admin key pair. The secret key goes to the OS keyring (under --name)
    /// or to a new file (--out, mode 0600); the public key is printed (and written to --pub).
    Keygen {
        /// Name of the key in the OS keyring.
        #[arg(long, default_value = "admin", conflicts_with = "out")]
        name: String,
        /// Write the secret key to this new file instead of the keyring.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Also write the public key line to this file (e.g. assets/trusted-keys/NAME.pub).
        #[arg(long = "pub", value_name = "FILE")]
        public: Option<PathBuf>,
        /// A label written after the public key (who owns it).
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Write SHA256SUMS over every file in DIR and sign it (SHA256SUMS.sig) with an admin key.
    SignRelease {
        dir: PathBuf,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Check a release directory: the signature of SHA256SUMS by a trusted admin key, every
    /// listed file's SHA-256, and no unlisted files. Exit 1 on any problem.
    VerifyRelease {
        dir: PathBuf,
        #[command(flatten)]
        trust: TrustArgs,
    },
}

/// Which admin key signs.
#[derive(Args, Debug)]
pub struct KeyArgs {
    /// A secret key file (from `admin keygen --out`).
    #[arg(long, value_name = "FILE", conflicts_with = "key_name")]
    key: Option<PathBuf>,
    /// An admin key in the OS keyring, by name (default: admin).
    #[arg(long, value_name = "NAME")]
    key_name: Option<String>,
}

impl KeyArgs {
    fn source(&self) -> KeySource {
        match (&self.key, &self.key_name) {
            (Some(f), _) => KeySource::File(f.clone()),
            (None, name) => KeySource::Keyring(name.clone().unwrap_or_else(|| "admin".into())),
        }
    }

    fn load(&self) -> Result<countersign_engine::keys::SecretKey, EngineError> {
        Ok(self.source().load(&credentials::keyring())?)
    }
}

/// Which keys to trust when checking.
#[derive(Args, Debug)]
pub struct TrustArgs {
    /// Also trust the public keys in FILE (to check before the key is bundled; the app
    /// itself trusts only the keys it was built with).
    #[arg(long, value_name = "FILE")]
    trust: Vec<PathBuf>,
}

impl TrustArgs {
    fn keys(&self) -> anyhow::Result<TrustedKeys> {
        let mut keys = TrustedKeys::bundled();
        for f in &self.trust {
            keys.add_file(f).map_err(EngineError::from)?;
        }
        Ok(keys)
    }
}

#[derive(Args, Debug)]
pub struct SignArgs {
    /// The pack source: a TOML file with [pack] id/version/title, policy, roster and
    /// catalog file paths, and [settings].
    source: PathBuf,
    /// The directory to write the signed pack into (must not hold a pack).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The simulation report you were shown for this policy (`policy simulate --out`): its
    /// digest goes into the signed manifest. Without it the pack says it was signed blind.
    #[arg(long, value_name = "REPORT")]
    simulation: Option<PathBuf>,
    #[command(flatten)]
    key: KeyArgs,
}

#[derive(Args, Debug)]
pub struct SimulateArgs {
    /// The draft policy file (TOML); its errors name file:line:column.
    draft: PathBuf,
    /// Report only the decisions made on or after this day (UTC, YYYY-MM-DD); earlier ones
    /// are still replayed, for the money history they leave.
    #[arg(long, value_name = "DATE")]
    since: Option<jiff::civil::Date>,
    /// Also write the report (JSON) to this file, for `policy sign --simulation`.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Over the decisions of every desk this lead may see (the team service replays them)
    /// instead of this desk's log.
    #[arg(long)]
    team: bool,
}

#[derive(Args, Debug)]
pub struct AutonomyArgs {
    /// The team's record (every desk this lead may see, from the team service) instead of
    /// this desk's log.
    #[arg(long)]
    team: bool,
    /// Write this proposal's draft policy and simulation report (its key, as listed).
    #[arg(long, value_name = "KEY", requires = "out")]
    save: Option<String>,
    /// Where `--save` writes them.
    #[arg(long, value_name = "DIR", requires = "save")]
    out: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// A signed pack directory.
    dir: PathBuf,
    #[command(flatten)]
    trust: TrustArgs,
}

pub fn admin(cli: &Cli, cmd: &AdminCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        AdminCmd::Keygen { name, out, public, label } => {
            let dest = match out {
                Some(f) => KeySource::File(f.clone()),
                None => KeySource::Keyring(name.clone()),
            };
            let report =
                countersign_engine::keys::keygen(&dest, label, &credentials::keyring()).map_err(EngineError::from)?;
            if let Some(p) = public {
                std::fs::write(p, format!("{}\n", report.public_line)).map_err(|e| EngineError::io(p, e))?;
            }
            if cli.json {
                print_json(&report)?;
            } else {
                println!("{}", report.public_line);
                eprintln!("key {}: secret key stored in {}", report.key_id, report.secret_stored_in);
            }
            Ok(ExitCode::SUCCESS)
        }
        AdminCmd::SignRelease { dir, key } => {
            let report = release::sign_release(dir, &key.load()?).map_err(EngineError::from)?;
            print_release(cli, &report, dir)
        }
        AdminCmd::VerifyRelease { dir, trust } => {
            let report = release::verify_release(dir, &trust.keys()?).map_err(EngineError::from)?;
            print_release(cli, &report, dir)
        }
    }
}

fn print_release(cli: &Cli, report: &release::ReleaseReport, dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    if cli.json {
        print_json(report)?;
    } else {
        for f in &report.files {
            println!("{:<9} {}  {}", f.status, f.sha256, f.name);
        }
        if report.ok {
            println!(
                "{}: ok — {} files, SHA256SUMS signed by key {}",
                dir.display(),
                report.files.len(),
                report.key_id.as_deref().unwrap_or("?")
            );
        } else {
            for p in &report.problems {
                println!("{}: {p}", dir.display());
            }
        }
    }
    Ok(if report.ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

pub fn policy_simulate(cli: &Cli, args: &SimulateArgs) -> anyhow::Result<ExitCode> {
    let engine = &open(cli)?.engine;
    let simulated = engine.simulate_draft(&args.draft, args.since, args.out.as_deref(), Scope::team(args.team))?;
    out(cli.json, &simulated, |s| crate::render::simulation(s, args.out.as_deref()))
}

pub fn policy_autonomy(cli: &Cli, args: &AutonomyArgs) -> anyhow::Result<ExitCode> {
    let engine = &open(cli)?.engine;
    let scope = Scope::team(args.team);
    match (&args.save, &args.out) {
        (Some(key), Some(dir)) => out(cli.json, &engine.save_proposal(key, scope, dir)?, crate::render::saved_proposal),
        _ => out(cli.json, &engine.autonomy(scope)?, crate::render::autonomy),
    }
}

pub fn policy_sign(cli: &Cli, args: &SignArgs) -> anyhow::Result<ExitCode> {
    let key = args.key.load()?;
    let report = match &args.simulation {
        Some(path) => Some(countersign_engine::simulate::read_report(path)?),
        None => None,
    };
    let info = pack::sign_pack_after(&args.source, &args.out, &key, report.as_ref()).map_err(EngineError::from)?;
    if cli.json {
        print_json(&info)?;
    } else {
        println!(
            "signed pack {} v{} into {} with key {} ({}), {}; the app loads it only if this key is in assets/trusted-keys/",
            info.id,
            info.version,
            args.out.display(),
            info.key_id,
            info.digest,
            crate::render::simulated(info.simulation.as_deref())
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn policy_verify(cli: &Cli, args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    match pack::verify_pack(&args.dir, &args.trust.keys()?) {
        Ok(p) => {
            if cli.json {
                print_json(&serde_json::json!({"ok": true, "pack": p.info}))?;
            } else {
                let i = &p.info;
                println!(
                    "{}: ok — pack {} v{} signed by {} ({}) {}, policy {} v{} ({}), {} on the roster{}",
                    args.dir.display(),
                    i.id,
                    i.version,
                    i.key_id,
                    i.key_label,
                    crate::render::simulated(i.simulation.as_deref()),
                    i.policy_id,
                    i.policy_version,
                    i.policy_hash,
                    i.roster.len(),
                    if i.has_catalog { ", with a connector catalog" } else { "" }
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(r) => {
            if cli.json {
                print_json(&serde_json::json!({"ok": false, "refusal": r}))?;
            } else {
                println!("{}: REFUSED ({}): {}", args.dir.display(), r.code.as_str(), r.message);
            }
            Ok(ExitCode::from(1))
        }
    }
}

pub fn policy_status(cli: &Cli) -> anyhow::Result<ExitCode> {
    let opened = open(cli)?;
    let engine = &opened.engine;
    let s = engine.policy_status();
    if cli.json {
        print_json(&s)?;
    } else {
        match &s.pack {
            Some(p) => println!(
                "signed pack {} v{} (key {}, {}), {}: policy {} v{} ({})",
                p.id,
                p.version,
                p.key_id,
                p.digest,
                crate::render::simulated(p.simulation.as_deref()),
                s.policy.id,
                s.policy.version,
                s.policy.hash
            ),
            None => println!(
                "DEV MODE: unsigned policy {} v{} ({}); evidence records signed: false",
                s.policy.id, s.policy.version, s.policy.hash
            ),
        }
        if let Some(r) = &s.refused {
            println!("refused ({}): {}; running on the last good pack", r.code.as_str(), r.message);
        }
        let m = engine.managed_settings();
        if let Some(url) = &m.planner_endpoint {
            println!("managed: planner endpoint {url}");
        }
        if let Some(url) = &m.update_endpoint {
            println!("managed: update endpoint {url}");
        }
        if !m.pause_clear_roles.is_empty() {
            println!("managed: pauses cleared by {}", m.pause_clear_roles.join(" or "));
        }
        println!("trusted admin keys: {}", s.trusted_keys.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn log_checkpoint(cli: &Cli) -> anyhow::Result<ExitCode> {
    let opened = open(cli)?;
    let engine = &opened.engine;
    let c = engine.checkpoint()?;
    if cli.json {
        print_json(&c)?;
    } else {
        println!(
            "checkpoint at event {}: {} events, head {}, signed by device {} ({})",
            c.seq, c.count, c.head, c.device_key_id, c.device_key
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The checkpoint lines of `log verify`.
pub fn print_checkpoints(report: &countersign_engine::checkpoints::CheckpointReport) {
    if report.checkpoints.is_empty() {
        println!("no signed checkpoints (write one with `countersign log checkpoint`)");
    }
    for c in &report.checkpoints {
        match &c.problem {
            None => println!("checkpoint at event {}: ok — {} events, device {}", c.seq, c.count, c.device_key_id),
            Some(p) => println!("checkpoint at event {}: BROKEN: {p}", c.seq),
        }
    }
}
