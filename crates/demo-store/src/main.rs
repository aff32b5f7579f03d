//! `countersign-demo-store serve --db PATH --addr 127.0.0.1:PORT --token-file FILE`:
//! runs the demo seller center until Ctrl-C (or SIGTERM). `--simulate-buyers SECONDS`
//! has simulated buyers write a message every SECONDS.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use std::time::Duration;

use countersign_demo_store::{
    ApiToken, BuyerSimulation, DEFAULT_BUYER_SCRIPT, DEFAULT_CASES_DIR, DEFAULT_SEED_DIR, DemoStore, ServeOptions,
};

#[derive(Debug, Parser)]
#[command(name = "countersign-demo-store", about = "A demo seller center on loopback")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP JSON API.
    Serve {
        /// SQLite file; created and seeded on first use, reused afterwards.
        #[arg(long)]
        db: PathBuf,
        /// Address to listen on. Loopback only unless --allow-non-loopback.
        #[arg(long, default_value = "127.0.0.1:8787")]
        addr: SocketAddr,
        /// File holding the bearer token clients must send.
        #[arg(long)]
        token_file: PathBuf,
        /// Folder with users.json, orders.json and products.json (read only to seed).
        #[arg(long, default_value = DEFAULT_SEED_DIR)]
        seed_dir: PathBuf,
        /// Folder of sample cases the buyer conversations are seeded from (read once, when
        /// the database has no conversations seeded yet).
        #[arg(long, default_value = DEFAULT_CASES_DIR)]
        cases_dir: PathBuf,
        /// Simulated buyers: write one buyer message every SECONDS (from --buyer-script).
        #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
        simulate_buyers: Option<u64>,
        /// The simulated buyers' messages, written in order (then again from the top).
        #[arg(long, default_value = DEFAULT_BUYER_SCRIPT)]
        buyer_script: PathBuf,
        /// Listen on a non-loopback address (the store has demo data and one token).
        #[arg(long)]
        allow_non_loopback: bool,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let Command::Serve { db, addr, token_file, seed_dir, cases_dir, simulate_buyers, buyer_script, allow_non_loopback } =
        Cli::parse().command;
    if !addr.ip().is_loopback() && !allow_non_loopback {
        bail!("{addr} is not a loopback address; pass --allow-non-loopback to serve on it");
    }
    let token =
        std::fs::read_to_string(&token_file).with_context(|| format!("reading token file {}", token_file.display()))?;
    let token = ApiToken::new(token).with_context(|| format!("token file {}", token_file.display()))?;
    let store = DemoStore::open_with_messages(&db, &seed_dir, Some(&cases_dir))
        .with_context(|| format!("opening demo store {}", db.display()))?;
    let simulate_buyers = simulate_buyers
        .map(|seconds| BuyerSimulation::load(&buyer_script, Duration::from_secs(seconds)))
        .transpose()
        .with_context(|| format!("reading the buyer script {}", buyer_script.display()))?;

    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
        let server = store.serve_with(listener, token, ServeOptions { simulate_buyers, ..ServeOptions::default() })?;
        tracing::info!(addr = %server.local_addr(), "serving; Ctrl-C to stop");
        shutdown_signal().await;
        tracing::info!("shutting down");
        server.shutdown().await.context("stopping the server")
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
