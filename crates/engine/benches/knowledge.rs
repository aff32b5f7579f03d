//! Knowledge base benchmark: index build time for a generated knowledge base and search
//! latency over it.
//!
//! `cargo bench -p countersign-engine --bench knowledge`
//!
//! Generates `KB_BENCH_ARTICLES` (default 10,000) Markdown articles in a temp dir: about
//! 300 words each in 3–5 `## ` sections, front matter like the demo's; a third of the
//! words are function words, the rest drawn from a Zipf-like distribution over 120
//! support words and 20,000 made-up ones, tuned so word/passage frequencies look like
//! the demo knowledge base's (the commonest content word in about half the passages). Then, through the same code `Engine::open` runs
//! (`knowledge::index_dir`: read, hash, parse, one transaction into FTS5):
//! a full index into a fresh store (`KB_BENCH_RUNS` times, default 3), a re-index with nothing changed, a
//! re-index with one file changed; then `KB_BENCH_QUERIES` (default 2,000) searches of
//! 1–4 words (limit 10) for p50/p90/p99.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use countersign_engine::knowledge::index_dir;
use countersign_store::Store;

mod kbgen;
use kbgen::{DOMAIN, Rng, generate};

fn pct(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it too: keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let n = if quick { 200 } else { env_usize("KB_BENCH_ARTICLES", 10_000) };
    let queries = if quick { 50 } else { env_usize("KB_BENCH_QUERIES", 2_000) };
    let runs = env_usize("KB_BENCH_RUNS", 3).max(1);

    let tmp = tempfile::TempDir::new().unwrap();
    let kb = tmp.path().join("knowledge");
    std::fs::create_dir(&kb).unwrap();
    let t = Instant::now();
    let (vocab, bytes) = generate(&kb, n);
    println!("generated {n} articles ({} KiB of Markdown) in {:.2?}", bytes / 1024, t.elapsed());

    let mut full = Vec::new();
    let mut store = None;
    for run in 0..runs {
        let db = tmp.path().join(format!("run-{run}.sqlite"));
        let s = Store::open(&db).unwrap();
        let t = Instant::now();
        let report = index_dir(&s, &kb, false).unwrap();
        let took = t.elapsed();
        assert_eq!((report.added, report.failed), (n, 0), "{:?}", report.errors.first());
        println!("full index run {run}: {took:.2?} ({} articles)", report.articles);
        full.push(took);
        store = Some((s, db));
    }
    let (store, db) = store.unwrap();
    if std::env::var_os("KB_BENCH_KEEP").is_some() {
        println!("keeping {}", db.display());
        let _ = tmp.keep();
        return;
    }
    full.sort();

    let t = Instant::now();
    let r = index_dir(&store, &kb, false).unwrap();
    let nothing = t.elapsed();
    assert!(!r.did_work() && r.unchanged == n, "{r:?}");

    let one = kb.join("kb-00042.md");
    let text = std::fs::read_to_string(&one).unwrap();
    std::fs::write(&one, text.replacen("## ", "## Changed ", 1)).unwrap();
    let t = Instant::now();
    let r = index_dir(&store, &kb, false).unwrap();
    let one_changed = t.elapsed();
    assert_eq!((r.updated, r.unchanged), (1, n - 1), "{r:?}");

    let t = Instant::now();
    let versions = store.kb_versions().unwrap();
    let versions_took = t.elapsed();
    assert_eq!(versions.len(), n);

    let db_size = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(format!("{}-wal", db.display())).map(|m| m.len()).unwrap_or(0);

    // Queries: 1–4 words, mostly from the support vocabulary, some made-up tail words and
    // prefixes, as an agent or planner would type them.
    let mut rng = Rng::seeded(0x5EA2C4);
    let qs: Vec<String> = (0..queries)
        .map(|_| {
            let words: Vec<String> = (0..rng.range(1, 4))
                .map(|_| match rng.below(10) {
                    0 => format!("{}*", &DOMAIN[rng.below(DOMAIN.len())][..3]),
                    1 | 2 => vocab.sample(&mut rng).to_string(),
                    _ => DOMAIN[rng.below(DOMAIN.len())].to_string(),
                })
                .collect();
            words.join(" ")
        })
        .collect();
    for q in qs.iter().take(50) {
        store.kb_search(q, 10).unwrap(); // warm the page cache and statement cache
    }
    let mut timed = Vec::with_capacity(qs.len());
    let mut hits = 0usize;
    for q in &qs {
        let t = Instant::now();
        let h = store.kb_search(q, 10).unwrap();
        timed.push((t.elapsed(), q.as_str()));
        hits += h.len();
    }
    timed.sort();
    let lat: Vec<Duration> = timed.iter().map(|(d, _)| *d).collect();
    let (with_prefix, plain): (Vec<_>, Vec<_>) = timed.iter().partition(|(_, q)| q.contains('*'));
    let plain: Vec<Duration> = plain.iter().map(|(d, _)| *d).collect();
    let with_prefix: Vec<Duration> = with_prefix.iter().map(|(d, _)| *d).collect();

    println!();
    println!("| measure ({n} articles, {} KiB) | time |", bytes / 1024);
    println!("|---|---:|");
    println!("| full index (read, hash, parse, FTS5 insert), best of {runs} | {:.2?} |", full[0]);
    println!("| full index, worst of {runs} | {:.2?} |", full[runs - 1]);
    println!("| re-index, nothing changed (read + hash every file) | {nothing:.2?} |");
    println!("| re-index, one file changed | {one_changed:.2?} |");
    println!("| `kb_versions` (id → version map for `Facts`) | {versions_took:.2?} |");
    println!("| search p50 ({queries} queries, limit 10) | {:.2?} |", pct(&lat, 50));
    println!("| search p90 | {:.2?} |", pct(&lat, 90));
    println!("| search p99 | {:.2?} |", pct(&lat, 99));
    println!("| search max | {:.2?} |", lat[lat.len() - 1]);
    if !plain.is_empty() && !with_prefix.is_empty() {
        println!(
            "| plain words only ({} queries): p50 / p99 | {:.2?} / {:.2?} |",
            plain.len(),
            pct(&plain, 50),
            pct(&plain, 99)
        );
        println!(
            "| with a `word*` prefix ({} queries): p50 / p99 | {:.2?} / {:.2?} |",
            with_prefix.len(),
            pct(&with_prefix, 50),
            pct(&with_prefix, 99)
        );
    }
    println!();
    let slowest: Vec<String> = timed.iter().rev().take(5).map(|(d, q)| format!("{q:?} {d:.1?}")).collect();
    println!("slowest queries: {}", slowest.join(", "));
    println!("database size {} MiB; {} hits per query on average", db_size / (1024 * 1024), hits / qs.len().max(1));
}
