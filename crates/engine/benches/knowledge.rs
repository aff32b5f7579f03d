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

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use countersign_engine::knowledge::index_dir;
use countersign_store::Store;

#[rustfmt::skip]
const DOMAIN: &[&str] = &[
    "order", "refund", "return", "exchange", "cancel", "cancellation", "pending", "processed", "delivered", "shipping",
    "tracking", "carrier", "parcel", "package", "address", "payment", "card", "credit", "paypal", "gift", "balance",
    "customer", "agent", "team", "lead", "escalation", "complaint", "goodwill", "coupon", "policy", "window", "days",
    "business", "warehouse", "item", "variant", "size", "colour", "price", "difference", "account", "password", "email",
    "verify", "identity", "privacy", "security", "warranty", "defect", "damaged", "missing", "parts", "replacement",
    "store", "seller", "center", "status", "request", "reason", "amount", "charge", "bank", "dispute", "chargeback",
    "delay", "lost", "label", "receipt", "confirm", "review", "promise", "exception", "limit", "fee", "free", "express",
    "standard", "international", "domestic", "product", "catalog", "stock", "availability", "discount", "voucher",
    "subscription", "invoice", "tax", "currency", "dollar", "weekend", "holiday", "morning", "evening", "phone", "chat",
    "instagram", "tiktok", "message", "reply", "apology", "survey", "feedback", "bicycle", "laptop", "headphones",
    "jacket", "sneakers", "kettle", "blender", "desk", "chair", "lamp", "backpack", "watch", "camera", "speaker",
];

#[rustfmt::skip]
const FILLER: &[&str] = &[
    "the", "a", "to", "of", "and", "is", "in", "for", "on", "with", "it", "be", "can", "we", "they", "when", "if",
    "not", "this", "that", "or", "by", "as", "are", "from", "at", "their", "our", "you", "your", "will", "must",
];

#[rustfmt::skip]
const HEADINGS: &[&str] = &[
    "Summary", "When it applies", "Steps", "What to tell the customer", "Exceptions", "Timing", "Fees", "Limits",
    "Escalation", "Evidence needed", "Common questions", "What not to say", "After the request", "Before you start",
    "Examples", "Related articles", "Edge cases", "Who decides", "Records", "Channels",
];

const OWNERS: &[&str] = &["cx-policy-team", "cx-ops-team", "payments-team", "logistics-team", "trust-safety-team"];

/// splitmix64: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n).unwrap()).unwrap()
    }

    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
}

/// Words with Zipf-like weights (weight of rank r ∝ 1/r), sampled by binary search.
struct Vocabulary {
    words: Vec<String>,
    cumulative: Vec<u64>,
}

impl Vocabulary {
    fn new(rng: &mut Rng) -> Vocabulary {
        const SYLLABLES: &[&str] = &[
            "ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "za", "bre", "cor", "dal", "fen", "gri", "hul", "jor",
            "kes", "lum", "mar", "nol", "pra", "qui", "ros", "sul", "tam", "ver", "wil", "xan", "yor", "zel",
        ];
        let mut made_up = Vec::with_capacity(20_000);
        while made_up.len() < 20_000 {
            let n = rng.range(2, 4);
            made_up.push((0..n).map(|_| SYLLABLES[rng.below(SYLLABLES.len())]).collect::<String>());
        }
        // Support words sit at ranks 2, 5, 8, … among made-up ones; weight ∝ 1/(rank + 8), so
        // the most frequent content word is in about half the passages (as `order` and
        // `customer` are in the demo knowledge base), rank 10 in a third, rank 100 in 6%.
        let mut words: Vec<String> = Vec::with_capacity(made_up.len() + DOMAIN.len());
        let mut domain = DOMAIN.iter();
        let mut made = made_up.into_iter();
        loop {
            let next = if words.len() % 3 == 1 { domain.next().map(|w| (*w).to_string()) } else { None };
            match next.or_else(|| made.next()) {
                Some(w) => words.push(w),
                None => break,
            }
        }
        let mut cumulative = Vec::with_capacity(words.len());
        let mut total = 0u64;
        for rank in 1..=words.len() {
            total += 100_000_000 / (u64::try_from(rank).unwrap() + 8);
            cumulative.push(total);
        }
        Vocabulary { words, cumulative }
    }

    fn sample(&self, rng: &mut Rng) -> &str {
        let total = *self.cumulative.last().unwrap();
        let x = rng.next() % total;
        let i = self.cumulative.partition_point(|c| *c <= x);
        &self.words[i.min(self.words.len() - 1)]
    }
}

fn article(i: usize, rng: &mut Rng, vocab: &Vocabulary) -> String {
    let id = format!("kb-{i:05}");
    let mut s = String::with_capacity(2600);
    let title_words: Vec<&str> = (0..rng.range(3, 6)).map(|_| vocab.sample(rng)).collect();
    let tags: Vec<&str> = (0..rng.range(2, 4)).map(|_| DOMAIN[rng.below(DOMAIN.len())]).collect();
    let _ = write!(
        s,
        "---\nid: {id}\ntitle: {}: {}\nversion: {}\ntags: [{}]\nowner: {}\n---\n",
        DOMAIN[rng.below(DOMAIN.len())],
        title_words.join(" "),
        rng.range(1, 5),
        tags.join(", "),
        OWNERS[rng.below(OWNERS.len())]
    );
    let sections = rng.range(3, 5);
    let words_per_section = 300 / sections;
    let first = rng.below(HEADINGS.len());
    for k in 0..sections {
        let heading = HEADINGS[(first + k * 7) % HEADINGS.len()];
        let _ = write!(s, "\n## {heading}\n\n");
        let mut written = 0;
        while written < words_per_section {
            let len = rng.range(8, 16);
            let mut sentence = Vec::with_capacity(len);
            for _ in 0..len {
                if rng.below(3) == 0 {
                    sentence.push(FILLER[rng.below(FILLER.len())].to_string());
                } else if rng.below(40) == 0 {
                    sentence.push(format!("{}", rng.range(2, 60)));
                } else {
                    sentence.push(vocab.sample(rng).to_string());
                }
            }
            let mut text = sentence.join(" ");
            if let Some(c) = text.get_mut(0..1) {
                c.make_ascii_uppercase();
            }
            let _ = write!(s, "{text}. ");
            written += len;
        }
        s.push('\n');
    }
    s
}

fn generate(dir: &Path, n: usize) -> (Vocabulary, u64) {
    let mut rng = Rng(0x00C0_FFEE);
    let vocab = Vocabulary::new(&mut rng);
    let mut bytes = 0;
    for i in 0..n {
        let text = article(i, &mut rng, &vocab);
        bytes += text.len() as u64;
        std::fs::write(dir.join(format!("kb-{i:05}.md")), text).unwrap();
    }
    (vocab, bytes)
}

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
    let mut rng = Rng(0x5EA2C4);
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
