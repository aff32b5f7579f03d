//! `countersign-team`: the team service. It keeps the team's desktops current with a
//! signed lease every few seconds (see `countersign_plane::lease`); a desktop that stops
//! seeing it falls back to the policy's `[cut_off]`. Given a PostgreSQL database
//! (`--database-url` or `COUNTERSIGN_TEAM_DATABASE_URL`), it also projects every desk's
//! evidence into it, verified as it goes (`countersign_team::project`), and answers the
//! leads' team views from it (`countersign_team::view`).

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
}

/// The env var the database URL may come from instead of `--database-url`.
const DATABASE_URL_ENV: &str = "COUNTERSIGN_TEAM_DATABASE_URL";

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let Cli { command: Command::Serve { dir, url, every_ms, database_url, retention_every_s, trust } } = Cli::parse();
    let mut trusted = countersign_trust::keys::TrustedKeys::bundled();
    for file in &trust {
        if let Err(e) = trusted.add_file(file) {
            eprintln!("countersign-team: {e}");
            return ExitCode::from(2);
        }
    }
    let database = match database_url.or_else(|| std::env::var(DATABASE_URL_ENV).ok()).filter(|u| !u.is_empty()) {
        Some(u) => match countersign_team::project::connect_options(&Secret::new(u)) {
            Ok(o) => Some(o),
            Err(e) => {
                eprintln!("countersign-team: {e}");
                return ExitCode::from(2);
            }
        },
        None => None,
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
