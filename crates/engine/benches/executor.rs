//! Executor overhead per auto step, over loopback, without the server's own work.
//!
//! `cargo bench -p countersign-engine --bench executor` (`EXEC_BENCH_STEPS`, default 1000)
//!
//! The real demo store runs on loopback. Each round decides and queues a one-step plan
//! (`get_order_details`, auto) for a fresh case — not timed — then times, back to back:
//! - `Engine::execute` of that step: load and check it (digest; plan, decision and
//!   approval in the evidence log; expiry; pauses), `step_started` (durable: an fsync),
//!   the connector's call (schema check, encoding, credential read, HTTP GET, JSON parse,
//!   redaction), `step_finished` (durable: an fsync);
//! - the same `GET /orders/{id}` sent raw with `reqwest` (bearer token, body read to the
//!   end): the server's work plus loopback plus an HTTP client, which the executor cannot
//!   avoid.
//!
//! The difference is what the executor adds. Credentials come from memory here; what the
//! OS keyring adds per call (the connector reads it at every call) is timed separately
//! when a Secret Service is reachable.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::float_arithmetic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use countersign_test_support::bench::{self, percentile};
use countersign_test_support::demo;
use countersign_test_support::packs::assets;

use countersign_connectors::credentials::{CredentialName, CredentialStore, KeyringStore, ProcessCredential, Secret};
use countersign_connectors::{Catalog, HttpConnector};
use countersign_engine::{CaseFile, Engine, EngineOptions, SystemClock};
use serde_json::json;

const TOKEN: &str = "bench-token-executor";
const ORDER: &str = "#W4817420";
const CUSTOMER: &str = "ava_moore_2033";

fn one_read_step(n: usize) -> CaseFile {
    serde_json::from_value(bench::one_read_step(&format!("bench-{n}"), ORDER, CUSTOMER)).unwrap()
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// One row of the table: p50, p90 and p99 of `sorted`, in µs.
fn print_row(label: &str, sorted: &[Duration]) {
    println!(
        "{label:<44} {:>10.0} {:>10.0} {:>10.0}",
        micros(percentile(sorted, 50)),
        micros(percentile(sorted, 90)),
        micros(percentile(sorted, 99))
    );
}

fn main() {
    let steps: usize = std::env::var("EXEC_BENCH_STEPS").ok().and_then(|s| s.parse().ok()).unwrap_or(1000).max(10);
    let dir = tempfile::tempdir().unwrap();
    let server = demo::start_in(dir.path(), TOKEN);
    let name = CredentialName::new("demo_seller_center", "demo").unwrap();
    let credentials = Arc::new(ProcessCredential::new(name.clone(), Secret::new(TOKEN)));
    let catalog = Catalog::load(&assets().join("demo/catalog.toml")).unwrap();
    let probe = HttpConnector::new(catalog.clone(), credentials.clone()).unwrap().with_base_url(&server.url()).unwrap();
    let connector = HttpConnector::new(catalog, credentials).unwrap().with_base_url(&server.url()).unwrap();
    let engine = Engine::open(
        EngineOptions {
            workspace: assets().join("demo/workspace-snapshot.toml"),
            data_dir: dir.path().join("data"),
            operator: None,
            connector: Some(Arc::new(connector)),
        },
        Arc::new(SystemClock),
    )
    .unwrap();
    let raw = countersign_http::blocking_client_builder().no_proxy().build().unwrap();
    let url = format!("{}/orders/{}", server.url(), ORDER.replace('#', "%23"));
    let raw_get = || {
        let r = raw.get(&url).bearer_auth(TOKEN).header("accept", "application/json").send().unwrap();
        assert!(r.status().is_success());
        r.bytes().unwrap().len()
    };

    // Warm up connections, caches and the server's reader pool.
    for n in 0..20 {
        let f = one_read_step(1_000_000 + n);
        engine.process(&f.case, &f.plan).unwrap();
        engine.execute(&f.plan.id, "s1").unwrap();
        raw_get();
    }

    let order_params = json!({"order_id": ORDER}).as_object().unwrap().clone();
    let mut call = Vec::with_capacity(steps);
    let mut evidence = Vec::with_capacity(steps);
    let mut exec = Vec::with_capacity(steps);
    let mut get = Vec::with_capacity(steps);
    let mut diff = Vec::with_capacity(steps);
    for n in 0..steps {
        let f = one_read_step(n);
        engine.process(&f.case, &f.plan).unwrap();
        let t = Instant::now();
        let run = engine.execute(&f.plan.id, "s1").unwrap();
        let e = t.elapsed();
        assert_eq!(run.state, countersign_engine::StepState::Succeeded);
        let t = Instant::now();
        raw_get();
        let g = t.elapsed();
        let t = Instant::now();
        countersign_connectors::Connector::call(&probe, "get_order_details", &order_params, None).unwrap();
        call.push(t.elapsed());
        let t = Instant::now();
        engine.log_case(&f.case.id).unwrap();
        evidence.push(t.elapsed());
        exec.push(e);
        get.push(g);
        diff.push(e.saturating_sub(g));
    }
    call.sort_unstable();
    evidence.sort_unstable();
    exec.sort_unstable();
    get.sort_unstable();
    diff.sort_unstable();
    println!("executor overhead per auto read step, {steps} steps, loopback, demo store, the token held in memory");
    println!("{:<44} {:>10} {:>10} {:>10}", "", "p50 µs", "p90 µs", "p99 µs");
    for (label, v) in [
        ("Engine::execute (get_order_details)", &exec),
        ("raw reqwest GET /orders/{id}", &get),
        ("difference, per step (executor overhead)", &diff),
        ("connector call alone (the GET included)", &call),
        ("reading the case's events back (log_case)", &evidence),
    ] {
        print_row(label, v);
    }

    // The floor under the two durable transitions: a 4 KiB append and fsync in the same
    // directory (SQLite's WAL commit with synchronous=FULL syncs once per transaction).
    let mut file = std::fs::File::create(dir.path().join("fsync-probe")).unwrap();
    let page = vec![0u8; 4096];
    let mut syncs: Vec<Duration> = (0..200)
        .map(|_| {
            use std::io::Write as _;
            let t = Instant::now();
            file.write_all(&page).unwrap();
            file.sync_data().unwrap();
            t.elapsed()
        })
        .collect();
    syncs.sort_unstable();
    print_row("4 KiB append + fsync (two per step)", &syncs);

    // What the OS keyring adds to every call, when there is one to ask.
    let keyring = KeyringStore::new(format!("countersign-bench-{}", std::process::id()));
    if keyring.set(&name, &Secret::new(TOKEN)).is_ok() {
        let mut reads: Vec<Duration> = (0..50)
            .map(|_| {
                let t = Instant::now();
                keyring.get(&name).unwrap();
                t.elapsed()
            })
            .collect();
        reads.sort_unstable();
        print_row("OS keyring read (per call, not included above)", &reads);
        let _ = keyring.delete(&name);
    } else {
        println!("(no Secret Service reachable: keyring read not timed)");
    }
}
