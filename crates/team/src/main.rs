//! `countersign-team`: the team service. Today it keeps the team's desktops current with
//! a signed lease every few seconds (see `countersign_plane::lease`); a desktop that
//! stops seeing it falls back to the policy's `[cut_off]`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

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
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let Cli { command: Command::Serve { dir, url, every_ms } } = Cli::parse();
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
    eprintln!("countersign-team: publishing team {:?}'s lease on {} every {every_ms} ms", identity.team, identity.url);
    let stop = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
    };
    match runtime.block_on(countersign_plane::lease::run(identity, Duration::from_millis(every_ms), stop)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("countersign-team: {e}");
            ExitCode::from(1)
        }
    }
}
