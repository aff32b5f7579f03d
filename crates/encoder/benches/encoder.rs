//! The fine-tuned encoder's cost on the desk: loading it (reading and hashing its 87 MiB
//! base, applying the update) and reading one text, short, of the decision bench's length
//! (~300 characters) and long (cut at 128 word pieces). A case is read once per revision,
//! each message on its own.
//!
//! Run: `cargo bench -p countersign-encoder` (about 40 s; needs scripts/fetch-encoder.sh).
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
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
