//! Time per step: the browser connector against the HTTP connector, on the same demo store.
//!
//! `cargo bench -p countersign-browser --bench steps` (`STEP_BENCH_ROUNDS`, default 30)
//!
//! The demo store runs on loopback; Chromium is headless with the flags the tests use.
//! For each connector, timed back to back:
//! - a read step through the engine (`Engine::execute` of `get_order_details`, auto):
//!   checks, `step_started`, the call, `step_finished` — for the browser, the call opens
//!   the order page, checks it, reads the fields and stores a screenshot and a DOM
//!   snapshot as blobs;
//! - a write alone (`Connector::call` of `cancel_pending_order` on a fresh pending order):
//!   HTTP is one POST; the browser opens the form, checks it, fills it, captures the
//!   before evidence, clicks, waits for the result page and captures the after evidence.
//!
//! The browser is started (and signed in, as the agent would by hand) before timing.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::float_arithmetic)]

use std::sync::Arc;
use std::time::Instant;

use countersign_test_support::bench::{self, percentile};
use countersign_test_support::packs::assets;
use countersign_test_support::{demo, sign_in};

use countersign_browser::{BrowserConnector, BrowserOptions, PageActions};
use countersign_connectors::credentials::{CredentialName, ProcessCredential, Secret};
use countersign_connectors::{Catalog, Connector, HttpConnector};
use countersign_engine::{CaseFile, Engine, EngineOptions, SystemClock};
use countersign_test_support::bench::ms;
use serde_json::json;

const TOKEN: &str = "bench-token-browser";
const ORDER: &str = "#W4817420";
const CUSTOMER: &str = "ava_moore_2033";

fn one_read_step(tag: &str, n: usize) -> CaseFile {
    serde_json::from_value(bench::one_read_step(&format!("bench-{tag}-{n}"), ORDER, CUSTOMER)).unwrap()
}

fn pending_orders() -> Vec<String> {
    let text = std::fs::read_to_string(assets().join("demo-store/orders.json")).unwrap();
    let orders: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut ids: Vec<String> = orders
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, o)| o["status"] == "pending")
        .map(|(id, _)| id.clone())
        .collect();
    ids.sort();
    ids
}

fn main() {
    let rounds: usize = std::env::var("STEP_BENCH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(30).max(5);
    let dir = tempfile::tempdir().unwrap();
    let server = demo::start_in(dir.path(), TOKEN);
    let credentials = Arc::new(ProcessCredential::new(
        CredentialName::new("demo_seller_center", "demo").unwrap(),
        Secret::new(TOKEN),
    ));
    let catalog = Catalog::load(&assets().join("demo/catalog.toml")).unwrap();
    let http: Arc<dyn Connector> =
        Arc::new(HttpConnector::new(catalog, credentials).unwrap().with_base_url(&server.url()).unwrap());

    let pages = PageActions::load(&assets().join("demo/pages.toml")).unwrap().with_base_url(&server.url()).unwrap();
    let options =
        BrowserOptions { no_sandbox: true, headless: true, ..BrowserOptions::new(dir.path().join("data-browser")) };
    sign_in::sign_in_by_hand(&options.profile_dir(&pages.profile), &server.url(), TOKEN);
    let browser = BrowserConnector::new(pages, options).unwrap();
    let started = Instant::now();
    browser.start().unwrap();
    let launch = started.elapsed();
    let browser: Arc<dyn Connector> = Arc::new(browser);

    let engine_for = |c: &Arc<dyn Connector>, name: &str| {
        Engine::open(
            EngineOptions {
                workspace: assets().join("demo/workspace-snapshot.toml"),
                data_dir: dir.path().join(format!("data-{name}")),
                operator: None,
                connector: Some(c.clone()),
            },
            Arc::new(SystemClock),
        )
        .unwrap()
    };
    let mut pending = pending_orders().into_iter();
    let mut rows = Vec::new();
    for (name, connector) in [("http", &http), ("browser", &browser)] {
        let engine = engine_for(connector, name);
        // Warm up.
        for n in 0..3 {
            let f = one_read_step(&format!("{name}-warm"), n);
            engine.process(&f.case, &f.plan).unwrap();
            engine.execute(&f.plan.id, "s1").unwrap();
        }
        let mut reads = Vec::new();
        let mut writes = Vec::new();
        for n in 0..rounds {
            let f = one_read_step(name, n);
            engine.process(&f.case, &f.plan).unwrap();
            let t = Instant::now();
            let run = engine.execute(&f.plan.id, "s1").unwrap();
            reads.push(t.elapsed());
            assert_eq!(run.state, countersign_engine::StepState::Succeeded, "{run:?}");

            let order = pending.next().unwrap();
            let params = json!({"order_id": order, "reason": "no longer needed"}).as_object().unwrap().clone();
            let t = Instant::now();
            connector.call("cancel_pending_order", &params, Some(&format!("bench-{name}-{n}"))).unwrap();
            writes.push(t.elapsed());
        }
        reads.sort_unstable();
        writes.sort_unstable();
        rows.push((format!("{name}: read step (Engine::execute)"), reads));
        rows.push((format!("{name}: cancel write (connector call)"), writes));
    }
    println!("time per step, {rounds} rounds each, loopback demo store, headless Chromium");
    println!("browser start (not in the figures below): {:.0} ms", ms(launch));
    println!("{:<44} {:>9} {:>9} {:>9}", "", "p50 ms", "p90 ms", "max ms");
    for (label, v) in &rows {
        println!(
            "{label:<44} {:>9.1} {:>9.1} {:>9.1}",
            ms(percentile(v, 50)),
            ms(percentile(v, 90)),
            ms(*v.last().unwrap())
        );
    }
}
