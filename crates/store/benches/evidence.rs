//! Evidence log benchmarks: durable appends (one appender, eight with group commit),
//! `verify` over a million events, and the disk's own limit (write + fsync per record).
//!
//! `cargo bench -p countersign-store --bench evidence`
//! Set `EVIDENCE_BENCH_VERIFY_EVENTS` to change the size of the verify log (default 1,000,000).
#![allow(clippy::unwrap_used)]

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use countersign_store::{NewEvent, Store, verify};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use jiff::Timestamp;
use serde_json::json;
use tempfile::TempDir;

/// A step_finished-sized event: ~330 bytes of canonical body.
fn event(i: u64) -> NewEvent {
    NewEvent {
        case_id: Some(format!("case-{:06}", i % 5000)),
        kind: "step_finished".into(),
        actor: "agent-0042".into(),
        at: Timestamp::from_second(1_750_000_000 + i64::try_from(i).unwrap()).unwrap(),
        payload: json!({
            "step": "s2",
            "action": "refund_order",
            "params": { "order_id": format!("#W{:07}", i % 10_000_000), "amount": "42.50", "currency": "USD" },
            "outcome": "ok",
            "idempotency_key": format!("{:032x}", u128::from(i) * 0x9e37_79b9_7f4a_7c15),
            "note": "refund issued to the original payment method",
        }),
    }
}

fn body_len() -> usize {
    let dir = TempDir::new().unwrap();
    let store = Store::open(dir.path().join("probe.db")).unwrap();
    store.append(event(1)).unwrap();
    store.event(1).unwrap().unwrap().body.len()
}

fn durable_appends(c: &mut Criterion) {
    let record = vec![b'x'; body_len()];
    let mut g = c.benchmark_group("durable_append");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6))
        .throughput(Throughput::Elements(1));

    let dir = TempDir::new().unwrap();

    let store = Store::open(dir.path().join("single.db")).unwrap();
    let mut i = 0;
    g.bench_function("1_appender", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                i += 1;
                store.append(event(i)).unwrap();
            }
            start.elapsed()
        })
    });
    drop(store);

    let store = Store::open(dir.path().join("eight.db")).unwrap();
    g.bench_function("8_appenders_group_commit", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            let threads: Vec<_> = (0..8u64)
                .map(|t| {
                    let w = store.writer();
                    // Exactly `iters` appends in all, spread over the threads.
                    let per = iters / 8 + u64::from(t < iters % 8);
                    std::thread::spawn(move || {
                        for n in 0..per {
                            w.append(event(t * 1_000_000_000 + n)).unwrap();
                        }
                    })
                })
                .collect();
            threads.into_iter().for_each(|t| t.join().unwrap());
            start.elapsed()
        })
    });
    drop(store);

    let raw_path = dir.path().join("raw.log");
    let mut file = OpenOptions::new().create(true).append(true).open(&raw_path).unwrap();
    g.bench_function("raw_write_fsync", |b| {
        b.iter(|| {
            file.write_all(&record).unwrap();
            file.sync_all().unwrap();
        })
    });
    g.bench_function("raw_write_fdatasync", |b| {
        b.iter(|| {
            file.write_all(&record).unwrap();
            file.sync_data().unwrap();
        })
    });
    g.finish();
    eprintln!("record size (canonical body) = {} bytes; temp dir {}", record.len(), dir.path().display());
}

fn build_log(path: &Path, n: u64) {
    let start = Instant::now();
    let store = Store::open(path).unwrap();
    let w = store.writer();
    let mut next = 1;
    while next <= n {
        let end = (next + 10_000).min(n + 1);
        w.append_batch((next..end).map(event).collect()).unwrap();
        next = end;
    }
    store.close().unwrap();
    let ms = start.elapsed().as_millis().max(1);
    let mb = std::fs::metadata(path).unwrap().len() / (1 << 20);
    eprintln!("built {n} events with append_batch(10k) in {ms} ms ({} events/s), {mb} MiB", u128::from(n) * 1000 / ms);
}

fn verify_log(c: &mut Criterion) {
    let n: u64 = std::env::var("EVIDENCE_BENCH_VERIFY_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("million.db");
    build_log(&path, n);

    let mut g = c.benchmark_group("verify");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(n));
    g.bench_function(format!("{n}_events"), |b| {
        b.iter(|| {
            let r = verify(&path).unwrap();
            assert!(r.ok && r.count == n);
        })
    });
    g.finish();
}

criterion_group!(benches, durable_appends, verify_log);
criterion_main!(benches);
