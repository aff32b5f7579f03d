//! Read throughput of the demo store: `GET /orders/{id}` over loopback with a few
//! concurrent keep-alive clients, against a real seeded SQLite file.
//!
//! `cargo bench -p countersign-demo-store --bench reads` (optionally `-- --requests N`).
//! Bounded: each round stops after its request count or 30 seconds, whichever is first.

#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::float_arithmetic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use countersign_demo_store::{ApiToken, DEFAULT_SEED_DIR, DemoStore};

const TOKEN: &str = "bench-token";
const ROUND_LIMIT: Duration = Duration::from_secs(30);

fn order_ids() -> Vec<String> {
    let text = std::fs::read_to_string(format!("{DEFAULT_SEED_DIR}/orders.json")).unwrap();
    let orders: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text).unwrap();
    // `#` is sent as %23 in a path.
    orders.keys().map(|id| id.trim_start_matches('#').to_owned()).collect()
}

fn requests_per_round() -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.windows(2).find(|w| w[0] == "--requests").and_then(|w| w[1].parse().ok()).unwrap_or(6_000)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let store = DemoStore::open(dir.path().join("bench.sqlite3"), DEFAULT_SEED_DIR).unwrap();
    println!("open + seed: {:?}", started.elapsed());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = store.serve(listener, ApiToken::new(TOKEN).unwrap()).unwrap();
    let base = format!("http://{}", server.local_addr());
    let ids = Arc::new(order_ids());
    let total = requests_per_round();

    println!("GET /orders/{{id}}, {total} requests per round, loopback, keep-alive");
    for clients in [1usize, 4, 8] {
        // Warm up the connections and the reader pool.
        run_round(&base, &ids, clients, clients * 20).await;
        let (done, elapsed, mut latencies) = run_round(&base, &ids, clients, total).await;
        latencies.sort_unstable();
        let pct = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
        println!(
            "{clients:>2} clients: {:>7.0} req/s  ({done} in {:.2?}; p50 {:?}, p99 {:?})",
            done as f64 / elapsed.as_secs_f64(),
            elapsed,
            pct(50),
            pct(99),
        );
    }
    server.shutdown().await.unwrap();
}

/// `clients` tasks share `total` requests; returns how many completed, the wall time and
/// every request's latency.
async fn run_round(
    base: &str,
    ids: &Arc<Vec<String>>,
    clients: usize,
    total: usize,
) -> (usize, Duration, Vec<Duration>) {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..clients {
        let client = countersign_http::client_builder().build().unwrap();
        let ids = Arc::clone(ids);
        let base = base.to_owned();
        let share = total / clients;
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(share);
            for n in 0..share {
                if started.elapsed() > ROUND_LIMIT {
                    break;
                }
                let id = &ids[(worker * 7919 + n * 31) % ids.len()];
                let sent = Instant::now();
                let response = client.get(format!("{base}/orders/{id}")).bearer_auth(TOKEN).send().await.unwrap();
                assert!(response.status().is_success(), "{}", response.status());
                let body = response.bytes().await.unwrap();
                assert!(!body.is_empty());
                latencies.push(sent.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    (latencies.len(), started.elapsed(), latencies)
}
