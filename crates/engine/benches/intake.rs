//! Intake from a case source, over loopback against the real demo seller center.
//!
//! `cargo bench -p countersign-engine --bench intake` (`INTAKE_BENCH_BACKLOG`, default
//! 10000; `INTAKE_BENCH_ROUNDS`, default 50)
//!
//! - **Backlog:** the seller center holds `INTAKE_BENCH_BACKLOG` unread buyer
//!   conversations (written straight into its database before it starts). Timed: the
//!   syncs that take them all in — list by cursor (100 a page), read each thread, record
//!   each case revision with its evidence (durable) — then listing the inbox once.
//! - **Message → inbox:** a buyer writes (HTTP, as a buyer's app does); timed from before
//!   that request until the engine's inbox shows the message after one sync. A running
//!   app syncs every `poll_seconds`, so its latency is this plus the wait for the next
//!   poll (on average half the interval).
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::float_arithmetic)]

use std::sync::Arc;
use std::time::Instant;

use countersign_connectors::credentials::{CredentialName, ProcessCredential, Secret};
use countersign_connectors::source::demo::DemoMessages;
use countersign_connectors::source::{Source, SourceKind, SourceSettings};
use countersign_core::model::Channel;
use countersign_engine::{Engine, EngineOptions, SystemClock};
use countersign_test_support::bench::ms;
use countersign_test_support::bench::percentile;
use countersign_test_support::packs::assets;

const TOKEN: &str = "bench-token-intake";

fn main() {
    let env = |name: &str, default: usize| std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default);
    let backlog = env("INTAKE_BENCH_BACKLOG", 10_000).max(1);
    let rounds = env("INTAKE_BENCH_ROUNDS", 50).max(5);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo-store.sqlite3");
    let written = Instant::now();
    countersign_demo_store::DemoStore::open(&db, assets().join("demo-store"))
        .unwrap()
        .add_backlog(backlog, "Hi, where is my parcel? It has been a while.")
        .unwrap();
    println!("backlog of {backlog} conversations written in {:.1} s", written.elapsed().as_secs_f64());
    let server = countersign_demo_store::BackgroundServer::start(
        db,
        assets().join("demo-store"),
        countersign_demo_store::ApiToken::new(TOKEN).unwrap(),
    )
    .unwrap();

    let name = CredentialName::new("demo_seller_center", "demo").unwrap();
    let credentials = Arc::new(ProcessCredential::new(name.clone(), Secret::new(TOKEN)));
    let adapter = Arc::new(DemoMessages::new("demo-messages", &server.url(), credentials, name).unwrap());
    let settings = SourceSettings {
        base_url: Some(server.url()),
        credential: Some("demo_seller_center/demo".into()),
        ..SourceSettings::new(
            "demo-messages",
            SourceKind::DemoSellerCenter,
            ("acme", "acme-us", "demo_seller_center"),
            Channel::Chat,
        )
    };
    let data = dir.path().join("data");
    let engine = Engine::open(
        EngineOptions {
            workspace: assets().join("demo/workspace-snapshot.toml"),
            data_dir: data,
            operator: None,
            connector: None,
        },
        Arc::new(SystemClock),
    )
    .unwrap()
    .with_sources(vec![Source { settings, adapter }]);

    let started = Instant::now();
    let (mut cases, mut syncs) = (0u32, 0);
    loop {
        let report = engine.sync_sources().unwrap().remove(0);
        cases += report.new_cases;
        syncs += 1;
        if !report.more {
            break;
        }
    }
    let took = started.elapsed();
    let listed = Instant::now();
    let inbox = engine.inbox().unwrap();
    let listing = listed.elapsed();
    println!(
        "intake: {cases} conversations in {:.1} s over {syncs} sync(s): {:.0} conversations/s ({:.2} ms each)",
        took.as_secs_f64(),
        f64::from(cases) / took.as_secs_f64(),
        ms(took) / f64::from(cases.max(1))
    );
    println!("inbox of {} cases listed in {:.0} ms", inbox.len(), ms(listing));

    let client = countersign_http::blocking_client_builder().no_proxy().build().unwrap();
    let buyers: Vec<String> = inbox.iter().filter_map(|i| i.customer_id.clone()).take(rounds).collect();
    let mut latencies = Vec::new();
    let mut with_inbox = Vec::new();
    for (n, buyer) in buyers.iter().enumerate() {
        let text = format!("Any news? (round {n})");
        let t0 = Instant::now();
        let r = client
            .post(format!("{}/buyer/messages", server.url()))
            .bearer_auth(TOKEN)
            .header("Idempotency-Key", format!("bench-{n}"))
            .json(&serde_json::json!({ "user_id": buyer, "text": text }))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        let report = engine.sync_sources().unwrap().remove(0);
        assert!(report.new_cases + report.updated >= 1, "{report:?}");
        latencies.push(t0.elapsed());
        let shown = engine.inbox().unwrap().iter().any(|i| i.last_message == text);
        assert!(shown, "the message is in the inbox after one sync");
        with_inbox.push(t0.elapsed());
    }
    latencies.sort();
    with_inbox.sort();
    println!(
        "message → recorded case (one sync), {} rounds: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms",
        latencies.len(),
        ms(percentile(&latencies, 50)),
        ms(percentile(&latencies, 90)),
        ms(percentile(&latencies, 99))
    );
    println!(
        "message → inbox listed (sync + inbox of {} cases): p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms",
        inbox.len(),
        ms(percentile(&with_inbox, 50)),
        ms(percentile(&with_inbox, 90)),
        ms(percentile(&with_inbox, 99))
    );
}
