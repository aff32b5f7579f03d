//! `countersign-team`: the team service. It keeps the team's desktops current with a
//! signed lease every few seconds (see `countersign_plane::lease`); a desktop that stops
//! seeing it falls back to the policy's `[cut_off]`. Given a PostgreSQL database
//! (`--database-url` or `COUNTERSIGN_TEAM_DATABASE_URL`), it also projects every desk's
//! evidence into it, verified as it goes (`countersign_team::project`), and answers the
//! leads' team views from it (`countersign_team::view`).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use countersign_connectors::credentials::Secret;

#[derive(Parser)]
#[command(name = "countersign-team", version, about = "The Countersign team service")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Publish the team's lease until stopped (Ctrl-C or SIGTERM).
    Serve {
        /// The team folder `countersign team init` made.
        #[arg(long)]
        dir: PathBuf,
        /// The server's URL, when not the one in team.toml.
        #[arg(long)]
        url: Option<String>,
        /// Milliseconds between leases.
        #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(100..=60_000))]
        every_ms: u64,
        /// The team's PostgreSQL database (postgres://USER:PASSWORD@HOST:PORT/DB); also
        /// read from COUNTERSIGN_TEAM_DATABASE_URL, which keeps the password out of the
        /// process list. Without one, no evidence is projected.
        #[arg(long)]
        database_url: Option<String>,
        /// Seconds between applying the signed pack's `[team.retention]`.
        #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(10..=86_400))]
        retention_every_s: u64,
        /// Also trust the admin public keys in FILE (besides this build's) for the signed
        /// pack whose roster says which leads see which desks in the team view.
        #[arg(long, value_name = "FILE")]
        trust: Vec<PathBuf>,
    },
    /// Release a desk the team holds, once its alert has been looked at: the projection
    /// reads it again from where it was held (held again there if the cause remains).
    /// Its evidence key becomes the one the team folder has on file for it (set it with
    /// `countersign team device-key`), or, with --forget-key, is learnt again from its
    /// next checkpoint.
    Release {
        /// The team folder `countersign team init` made.
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        device: String,
        /// Who releases it (recorded with the release).
        #[arg(long)]
        by: String,
        /// Why (recorded with the release).
        #[arg(long)]
        reason: String,
        /// Without a key on file for the desk, forget the one the team holds it to.
        #[arg(long)]
        forget_key: bool,
        /// As for `serve` (or COUNTERSIGN_TEAM_DATABASE_URL).
        #[arg(long)]
        database_url: Option<String>,
    },
}

/// The env var the database URL may come from instead of `--database-url`.
const DATABASE_URL_ENV: &str = "COUNTERSIGN_TEAM_DATABASE_URL";

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Serve { dir, url, every_ms, database_url, retention_every_s, trust } => {
            serve(dir, url, every_ms, database_url, retention_every_s, &trust)
        }
        Command::Release { dir, device, by, reason, forget_key, database_url } => {
            release(&dir, &device, &by, &reason, forget_key, database_url)
        }
    }
}

/// The database `--database-url` or the environment names, if any.
fn database(flag: Option<String>) -> Result<Option<sqlx::postgres::PgConnectOptions>, String> {
    match flag.or_else(|| std::env::var(DATABASE_URL_ENV).ok()).filter(|u| !u.is_empty()) {
        Some(u) => countersign_team::project::connect_options(&Secret::new(u)).map(Some).map_err(|e| e.to_string()),
        None => Ok(None),
    }
}

fn release(
    dir: &std::path::Path,
    device: &str,
    by: &str,
    reason: &str,
    forget_key: bool,
    database_url: Option<String>,
) -> ExitCode {
    let run = || -> Result<countersign_team::project::release::Released, String> {
        let database =
            database(database_url)?.ok_or_else(|| format!("no database: give --database-url or {DATABASE_URL_ENV}"))?;
        let file = countersign_plane::authority::TeamFile::read(dir).map_err(|e| e.to_string())?;
        let enrolled = file.device_key(device).map(str::to_string);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let pool = countersign_team::project::connect(&database).await.map_err(|e| e.to_string())?;
            countersign_team::project::release::check_schema(&pool).await.map_err(|e| e.to_string())?;
            countersign_team::project::release::release(&pool, device, by, reason, enrolled.as_deref(), forget_key)
                .await
                .map_err(|e| e.to_string())
        })
    };
    match run() {
        Ok(r) => {
            let kind = r.alert_kind.as_deref().unwrap_or("no alert");
            let key = match (&r.device_key_before, &r.device_key_after) {
                (before, after) if before == after => {
                    after.clone().unwrap_or_else(|| "none yet (learnt from its next checkpoint)".into())
                }
                (before, after) => format!(
                    "{} (was {})",
                    after.as_deref().unwrap_or("learnt from its next checkpoint"),
                    before.as_deref().unwrap_or("none")
                ),
            };
            let said = writeln!(
                std::io::stdout(),
                "released {} (held at event {}, {kind}); read again from stream message {}\n  evidence key: {key}",
                r.device,
                r.held_at_seq,
                r.from_stream_seq
            );
            if said.is_err() {
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("countersign-team: {e}");
            ExitCode::from(1)
        }
    }
}

fn serve(
    dir: PathBuf,
    url: Option<String>,
    every_ms: u64,
    database_url: Option<String>,
    retention_every_s: u64,
    trust: &[PathBuf],
) -> ExitCode {
    let mut trusted = countersign_trust::keys::TrustedKeys::bundled();
    for file in trust {
        if let Err(e) = trusted.add_file(file) {
            eprintln!("countersign-team: {e}");
            return ExitCode::from(2);
        }
    }
    let database = match database(database_url) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("countersign-team: {e}");
            return ExitCode::from(2);
        }
    };
    let identity = match countersign_plane::lease::ServiceIdentity::load(&dir, url.as_deref()) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("countersign-team: {e}");
            return ExitCode::from(1);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("countersign-team: {e}");
            return ExitCode::from(1);
        }
    };
    let identity_team = identity.team.clone();
    let (stopped, stop) = tokio::sync::watch::channel(false);
    let result = runtime.block_on(async move {
        // SIGTERM is handled from here on (before saying we run, so a supervisor that
        // stops us as soon as we say so stops us cleanly).
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let signal = async {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
        };
        eprintln!(
            "countersign-team: publishing team {:?}'s lease on {} every {every_ms} ms",
            identity.team, identity.url
        );
        if let Some(d) = &database {
            // Named without its password.
            eprintln!(
                "countersign-team: projecting the team's evidence into {}",
                countersign_team::project::describe(d)
            );
        }
        let until_stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        // A connection of its own, so a long batch never delays a lease.
        let projection_client = match &database {
            Some(_) => Some(identity.connect().await.map_err(|e| e.to_string())?),
            None => None,
        };
        // And one for the leads' team views.
        let view_client = match &database {
            Some(_) => Some(identity.connect().await.map_err(|e| e.to_string())?),
            None => None,
        };
        let view_database = database.clone();
        let retention_database = database.clone();
        let retention_client = match &database {
            Some(_) => Some(identity.connect().await.map_err(|e| e.to_string())?),
            None => None,
        };
        let retention_trusted = trusted.clone();
        let view_team = identity_team.clone();
        let projection = async {
            let (Some(database), Some(client)) = (database, projection_client) else { return Ok(()) };
            let witness = countersign_team::project::Witness::load(&dir, &identity_team).map_err(|e| e.to_string())?;
            let options = countersign_team::project::Options {
                witness: Some(std::sync::Arc::new(witness)),
                team_dir: Some(dir.clone()),
                ..countersign_team::project::Options::default()
            };
            countersign_team::project::run(client, database, options, until_stopped(stop.clone()))
                .await
                .map_err(|e| e.to_string())
        };
        let view = async {
            let (Some(database), Some(client)) = (view_database, view_client) else { return Ok(()) };
            let options = countersign_team::view::ViewOptions { team: view_team, trusted };
            countersign_team::view::run(client, database, options, until_stopped(stop.clone()))
                .await
                .map_err(|e| e.to_string())
        };
        let retention = async {
            let (Some(database), Some(client)) = (retention_database, retention_client) else { return Ok(()) };
            let every = Duration::from_secs(retention_every_s);
            countersign_team::retention::run(client, database, retention_trusted, every, until_stopped(stop.clone()))
                .await
                .map_err(|e| e.to_string())
        };
        let lease = async {
            countersign_plane::lease::run(identity, Duration::from_millis(every_ms), until_stopped(stop.clone()))
                .await
                .map_err(|e| e.to_string())
        };
        let signalled = async {
            signal.await;
            let _ = stopped.send(true);
            Ok::<(), String>(())
        };
        // The first to fail stops the service (a stopped service is safe: desks fall back).
        tokio::try_join!(lease, projection, view, retention, signalled).map(drop)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("countersign-team: {e}");
            ExitCode::from(1)
        }
    }
}
