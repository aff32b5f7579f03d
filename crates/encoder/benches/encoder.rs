//! The fine-tuned encoder's cost on the desk: loading it (reading and hashing its 87 MiB
//! base, applying the update) and reading one text, short, of the decision bench's length
//! (~300 characters) and long (four times that: three windows of up to 128 word pieces). A case is read once per revision,
//! each message on its own.
//!
//! And an inbox's worth of texts, one at a time against batches of like length.
//!
//! Run: `cargo bench -p countersign-encoder` (about 90 s; needs scripts/fetch-encoder.sh).
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::time::Duration;

use countersign_encoder::{SignalEncoder, default_base_dir};
use criterion::{Criterion, criterion_group, criterion_main};

const SHORT: &str = "where is my parcel? order 4471";
const MEDIUM: &str = "Hi, the mug in my last order arrived with a crack down the handle, so I'd like a \
     replacement or a refund for it. Also, please cancel order #W2378156 if it hasn't shipped yet: I \
     ordered the wrong size of the hiking boots and will place a new order instead. Thanks for your help.";

fn bench(c: &mut Criterion) {
    let dir = default_base_dir().unwrap();
    let long = MEDIUM.repeat(4);
    let mut g = c.benchmark_group("encoder");
    g.sample_size(10).measurement_time(Duration::from_secs(8)).warm_up_time(Duration::from_secs(1));
    g.bench_function("load", |b| b.iter(|| SignalEncoder::load(black_box(&dir)).unwrap()));
    let encoder = SignalEncoder::load(&dir).unwrap();
    for (name, text) in [("short", SHORT), ("medium", MEDIUM), ("long", long.as_str())] {
        g.bench_function(name, |b| b.iter(|| encoder.probabilities(black_box(text)).unwrap()));
    }
    // An inbox's worth of texts (the 100 check texts, of every length): one at a time, and
    // in batches of like length.
    let texts: Vec<String> = countersign_encoder::CHECKS
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["text"].as_str().unwrap().to_string())
        .collect();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    g.bench_function("100 texts, one at a time", |b| {
        b.iter(|| {
            for t in &texts {
                black_box(encoder.probabilities(t).unwrap());
            }
        })
    });
    for size in [8, 16, 32] {
        g.bench_function(format!("100 texts, batches of {size}"), |b| {
            b.iter(|| {
                for batch in encoder.batches(&texts, size) {
                    let batch: Vec<&str> = batch.iter().map(|&i| texts[i]).collect();
                    black_box(encoder.probabilities_batch(&batch).unwrap());
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
