//! A generated knowledge base for benchmarks: `n` Markdown articles like the demo's.
//!
//! About 300 words each in 3–5 `## ` sections, front matter like the demo's; a third of the
//! words are function words, the rest drawn from a Zipf-like distribution over 120 support
//! words and 20,000 made-up ones, tuned so word/passage frequencies look like the demo
//! knowledge base's (the commonest content word in about half the passages).
#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::Path;

#[rustfmt::skip]
pub const DOMAIN: &[&str] = &[
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
pub const FILLER: &[&str] = &[
    "the", "a", "to", "of", "and", "is", "in", "for", "on", "with", "it", "be", "can", "we", "they", "when", "if",
    "not", "this", "that", "or", "by", "as", "are", "from", "at", "their", "our", "you", "your", "will", "must",
];

#[rustfmt::skip]
pub const HEADINGS: &[&str] = &[
    "Summary", "When it applies", "Steps", "What to tell the customer", "Exceptions", "Timing", "Fees", "Limits",
    "Escalation", "Evidence needed", "Common questions", "What not to say", "After the request", "Before you start",
    "Examples", "Related articles", "Edge cases", "Who decides", "Records", "Channels",
];

pub const OWNERS: &[&str] = &["cx-policy-team", "cx-ops-team", "payments-team", "logistics-team", "trust-safety-team"];

/// The workspace's seedable generator (`countersign_test_support::rng`), with the
/// `usize` picks this generator's callers use. The same seed gives the same corpus.
pub struct Rng(pub countersign_test_support::rng::Rng);

impl Rng {
    pub fn seeded(seed: u64) -> Rng {
        Rng(countersign_test_support::rng::Rng(seed))
    }

    pub fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    pub fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.0.below(u64::try_from(n).unwrap())).unwrap()
    }

    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
}

/// Words with Zipf-like weights (weight of rank r ∝ 1/r), sampled by binary search.
pub struct Vocabulary {
    words: Vec<String>,
    cumulative: Vec<u64>,
}

impl Vocabulary {
    pub fn new(rng: &mut Rng) -> Vocabulary {
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

    pub fn sample(&self, rng: &mut Rng) -> &str {
        let total = *self.cumulative.last().unwrap();
        let x = rng.next() % total;
        let i = self.cumulative.partition_point(|c| *c <= x);
        &self.words[i.min(self.words.len() - 1)]
    }
}

pub fn article(i: usize, rng: &mut Rng, vocab: &Vocabulary) -> String {
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

pub fn generate(dir: &Path, n: usize) -> (Vocabulary, u64) {
    let mut rng = Rng::seeded(0x00C0_FFEE);
    let vocab = Vocabulary::new(&mut rng);
    let mut bytes = 0;
    for i in 0..n {
        let text = article(i, &mut rng, &vocab);
        bytes += text.len() as u64;
        std::fs::write(dir.join(format!("kb-{i:05}.md")), text).unwrap();
    }
    (vocab, bytes)
}
