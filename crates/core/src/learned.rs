//! The learned escalation-signal model built into Countersign: a logistic regression per
//! signal category over TF-IDF features of the customer's words (words, pairs of words,
//! and the 3- to 5-letter pieces of each word, so that a typo or a second-language
//! spelling still shares most of its pieces with a known word).
//!
//! It is a second detector beside the policy's patterns, never instead of them: a policy
//! turns it on with `[signal_model]`, naming the model by its SHA-256 (so the policy's hash
//! pins the model too) and the probability at which a category counts as found. It adds
//! signals; only where the policy also sets `patterns_min_probability` (shared, or a
//! category's own) does it set aside a pattern's hit it reads as the words' ordinary sense
//! (`crate::decide::scan`). The model is data, trained by `scripts/signals/train.sh` on the seen
//! parts of the labelled set and compiled in; its file carries check vectors that the tests
//! reproduce here, so this code and the trainer compute the same thing.

// Probabilities, never money: the model is floating-point arithmetic by nature.
#![allow(clippy::float_arithmetic)]

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError, RwLock};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::policy::SignalCategory;

/// A text of fewer words than this is read with its neighbour (see [`text_groups`]).
pub const MIN_WORDS_ALONE: usize = 6;

/// The categories the built-in model and encoder read (a test holds this to the model's
/// own list), known without parsing the model: a policy's thresholds per category may name
/// only these. They are the first seven of [`SignalCategory::ALL`]; harassment and other
/// only patterns find.
pub const CATEGORIES: &[SignalCategory] = SignalCategory::ALL.split_at(7).0;

/// The model file this build carries, gzip-compressed (the JSON is 5.5 MiB).
const BUILTIN_GZ: &[u8] = include_bytes!("../model/signals.json.gz");

/// SHA-256 (hex) of the model this build carries (of its JSON, as the trainer wrote it
/// before compressing it), computed when it was built: a policy naming the model is checked
/// against it without parsing the model.
pub const BUILTIN_SHA256: &str = env!("COUNTERSIGN_SIGNAL_MODEL_SHA256");

/// The model compiled into this build (parsed once, when a case is first scanned with it).
pub static BUILTIN: LazyLock<SignalModel> = LazyLock::new(|| {
    let mut json = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(BUILTIN_GZ), &mut json)
        .expect("the built-in signal model is gzip-compressed UTF-8 (its tests check it)");
    SignalModel::parse(&json).expect("the built-in signal model parses (its tests check it)")
});

/// The fine-tuned encoder built into Countersign (`countersign-encoder`: its update and head
/// compiled in, its base read from the folder [`countersign_encoder::default_base_dir`]
/// names, each file checked against its pinned SHA-256), loaded when a policy that turns it
/// on first scans a case, through [`encoder`]. This is the one place the domain reads a
/// file: the base is 87 MiB and pinned, a resource like the compiled-in model, not an input.
/// When it cannot be loaded the scan fails closed (every category of the encoder is found,
/// with the reason). The outcome of a load is kept, a failure too (the base is not read
/// again at every scan), until [`reload_encoder`] loads it again: after the base has been
/// fetched, while the process runs.
static ENCODER: RwLock<Option<Result<Arc<countersign_encoder::SignalEncoder>, String>>> = RwLock::new(None);

/// The encoder, loaded at the first call (see [`ENCODER`]), or why it cannot be.
pub fn encoder() -> Result<Arc<countersign_encoder::SignalEncoder>, String> {
    if let Some(kept) = kept_encoder() {
        return kept;
    }
    // One load at a time; the kept outcome is not locked while it runs, so whether the
    // encoder is loaded can be asked meanwhile without waiting.
    let _loading = LOADING.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(kept) = kept_encoder() {
        return kept;
    }
    load_and_keep()
}

/// Held while the encoder is loaded.
static LOADING: Mutex<()> = Mutex::new(());

fn kept_encoder() -> Option<Result<Arc<countersign_encoder::SignalEncoder>, String>> {
    ENCODER.read().unwrap_or_else(PoisonError::into_inner).clone()
}

/// Load the encoder's base again (after it was fetched) and keep the outcome: scans made
/// from now on use it. A scan kept from while it could not be loaded is not used again
/// once it can ([`crate::CaseScan::is_for`]).
pub fn reload_encoder() -> Result<(), String> {
    let _loading = LOADING.lock().unwrap_or_else(PoisonError::into_inner);
    load_and_keep().map(|_| ())
}

/// Whether the encoder is loaded now (a failed or not yet tried load is not).
pub fn encoder_loaded() -> bool {
    matches!(ENCODER.read().unwrap_or_else(PoisonError::into_inner).as_ref(), Some(Ok(_)))
}

/// Load the encoder from its folder and keep the outcome (the caller holds [`LOADING`]).
fn load_and_keep() -> Result<Arc<countersign_encoder::SignalEncoder>, String> {
    let loaded = countersign_encoder::default_base_dir()
        .ok_or_else(|| NO_FOLDER.to_string())
        .and_then(|dir| countersign_encoder::SignalEncoder::load(&dir).map(Arc::new).map_err(|e| e.to_string()));
    *ENCODER.write().unwrap_or_else(PoisonError::into_inner) = Some(loaded.clone());
    loaded
}

/// Texts the encoder has read, and what it gave for each (see [`encoder_probabilities`]).
static SEEN: LazyLock<Mutex<HashMap<String, Vec<f64>>>> = LazyLock::new(Default::default);

fn remember(text: &str, p: &[f64]) {
    if let Ok(mut seen) = SEEN.lock() {
        if seen.len() >= REMEMBERED {
            seen.clear();
        }
        seen.insert(text.to_string(), p.to_vec());
    }
}

/// The encoder's probabilities for a text, remembered: the same words give the same
/// probabilities, and a case's texts are read again whenever a decision is made without a
/// kept scan (tests, simulations, `decide` on a plan file). At most [`REMEMBERED`] texts;
/// when full, it starts again empty.
pub fn encoder_probabilities(text: &str) -> Result<Vec<f64>, String> {
    let encoder = encoder()?;
    if let Some(p) = SEEN.lock().ok().and_then(|seen| seen.get(text).cloned()) {
        return Ok(p);
    }
    let p = encoder.probabilities(text).map_err(|e| e.to_string())?;
    remember(text, &p);
    Ok(p)
}

/// How many texts are read together by [`encoder_read_ahead`] (the encoder's bench, on two
/// cores, session 24: 100 texts in 0.78 s in batches of 16, against 1.47 s one at a time,
/// 0.84 s in batches of 8 and 0.83 s of 32; docs/benchmarks.md). A text read in a batch gets what it
/// gets alone to rounding (4e-7 at most on the check texts; the encoder's tests hold it
/// under 1e-5).
const BATCH: usize = 16;

/// Read `texts` with the encoder ahead of the scans that need them, in batches of like
/// length, and remember what it gives for each: [`encoder_probabilities`] then finds them.
/// Texts remembered already are not read again. An encoder that fails here is said by the
/// scans themselves (they fail closed), so nothing is returned.
pub fn encoder_read_ahead(texts: &[String]) {
    let Ok(encoder) = encoder() else { return };
    let unseen: Vec<&str> = {
        let Ok(seen) = SEEN.lock() else { return };
        let mut unseen: Vec<&str> = texts.iter().map(String::as_str).filter(|t| !seen.contains_key(*t)).collect();
        unseen.sort_unstable();
        unseen.dedup();
        // No more than the memory keeps without starting again (which would forget the
        // first batches before their scans read them): the rest is read one by one.
        unseen.truncate(REMEMBERED.saturating_sub(seen.len() + 1));
        unseen
    };
    if unseen.is_empty() {
        return;
    }
    for batch in encoder.batches(&unseen, BATCH) {
        let batch: Vec<&str> = batch.iter().map(|&i| unseen[i]).collect();
        // A batch that fails is left to the scans, which read each text alone and fail
        // closed with the reason.
        let Ok(ps) = encoder.probabilities_batch(&batch) else { continue };
        for (text, p) in batch.iter().zip(&ps) {
            remember(text, p);
        }
    }
    // The batches' activations are freed: handed back to the system, not kept idle in the
    // allocator's arenas.
    countersign_encoder::release_freed_memory();
}

/// How many texts [`encoder_probabilities`] remembers.
const REMEMBERED: usize = 4096;

/// For a policy that turns the encoder on: whether its base is there (see
/// [`encoder_present`]); `Ok` for any other policy. A replay of decisions (a simulation)
/// must not run without it: every replayed case would count as handed off.
pub fn check_encoder_for(policy: &crate::policy::Policy) -> Result<(), String> {
    match &policy.signal_model {
        Some(m) if m.encoder.is_some() => encoder_present(),
        _ => Ok(()),
    }
}

/// Whether the encoder's base is where [`encoder`] will read it from, without reading it (a
/// workspace whose policy turns the encoder on checks this when it opens); a load that
/// failed is said as it failed.
pub fn encoder_present() -> Result<(), String> {
    if let Some(Err(e)) = ENCODER.read().unwrap_or_else(PoisonError::into_inner).as_ref() {
        return Err(e.clone());
    }
    let dir = countersign_encoder::default_base_dir().ok_or(NO_FOLDER)?;
    countersign_encoder::check_present(&dir).map_err(|e| e.to_string())
}

const NO_FOLDER: &str = "the signal encoder: no folder to read its base from (none of COUNTERSIGN_ENCODER_DIR, \
     XDG_CACHE_HOME and HOME is set)";

/// A trained model: for each feature its IDF and one weight per category.
#[derive(Debug)]
pub struct SignalModel {
    sha256: String,
    categories: Vec<SignalCategory>,
    intercepts: Vec<f64>,
    index: HashMap<String, usize>,
    idf: Vec<f64>,
    /// `weights[feature * categories + category]`.
    weights: Vec<f64>,
    checks: Vec<Check>,
}

/// A text, its features and the probabilities the trainer computed for it.
#[derive(Debug, Clone, Deserialize)]
pub struct Check {
    pub text: String,
    /// Every feature of the text, in the trainer's order (in the vocabulary or not).
    #[serde(default)]
    pub features: Vec<String>,
    pub p: Vec<f64>,
}

#[derive(Deserialize)]
struct RawModel {
    format: u32,
    categories: Vec<SignalCategory>,
    intercepts: Vec<f64>,
    features: Vec<(String, f64, Vec<f64>)>,
    #[serde(default)]
    checks: Vec<Check>,
}

impl SignalModel {
    /// Read a model file (the trainer's JSON).
    pub fn parse(json: &str) -> Result<SignalModel, String> {
        let raw: RawModel = serde_json::from_str(json).map_err(|e| format!("signal model: {e}"))?;
        if raw.format != 1 {
            return Err(format!("signal model: format {} is not one this build reads (1)", raw.format));
        }
        let n = raw.categories.len();
        if n == 0 || raw.intercepts.len() != n {
            return Err(format!("signal model: {} categories but {} intercepts", n, raw.intercepts.len()));
        }
        let mut index = HashMap::with_capacity(raw.features.len());
        let mut idf = Vec::with_capacity(raw.features.len());
        let mut weights = Vec::with_capacity(raw.features.len() * n);
        for (i, (name, f_idf, w)) in raw.features.into_iter().enumerate() {
            if w.len() != n {
                return Err(format!("signal model: feature {name:?} has {} weights for {n} categories", w.len()));
            }
            if !f_idf.is_finite() || w.iter().any(|v| !v.is_finite()) {
                return Err(format!("signal model: feature {name:?} has a weight that is not a number"));
            }
            if index.insert(name.clone(), i).is_some() {
                return Err(format!("signal model: feature {name:?} is listed twice"));
            }
            idf.push(f_idf);
            weights.extend(w);
        }
        Ok(SignalModel {
            sha256: hex::encode(Sha256::digest(json.as_bytes())),
            categories: raw.categories,
            intercepts: raw.intercepts,
            index,
            idf,
            weights,
            checks: raw.checks,
        })
    }

    /// SHA-256 (hex) of the model file: what a policy's `[signal_model]` names.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    pub fn categories(&self) -> &[SignalCategory] {
        &self.categories
    }

    /// The texts and probabilities the trainer recorded, for checking this code against it.
    pub fn checks(&self) -> &[Check] {
        &self.checks
    }

    /// The highest probability of each category over a case's texts (its subject and
    /// messages), each group of [`text_groups`] read on its own, as the model was trained.
    pub fn case_probabilities(&self, texts: &[&str]) -> Vec<f64> {
        let mut best = vec![0.0_f64; self.categories.len()];
        for g in &text_groups(texts) {
            for (b, p) in best.iter_mut().zip(self.probabilities(g)) {
                *b = b.max(p);
            }
        }
        best
    }

    /// The probability of each category (in [`SignalModel::categories`]' order) for a text.
    pub fn probabilities(&self, text: &str) -> Vec<f64> {
        let n = self.categories.len();
        let mut counts: HashMap<usize, u32> = HashMap::new();
        for_each_feature(text, |f| {
            if let Some(&i) = self.index.get(f) {
                *counts.entry(i).or_default() += 1;
            }
        });
        let mut values: Vec<(usize, f64)> =
            counts.into_iter().map(|(i, c)| (i, (1.0 + f64::from(c).ln()) * self.idf[i])).collect();
        // Summed in the feature list's order, as the trainer sums: the same text gives the
        // same probability to the last bit, run after run.
        values.sort_unstable_by_key(|&(i, _)| i);
        let norm = values.iter().map(|(_, v)| v * v).sum::<f64>().sqrt();
        (0..n)
            .map(|j| {
                let mut z = self.intercepts[j];
                if norm > 0.0 {
                    z += values.iter().map(|&(i, v)| v / norm * self.weights[i * n + j]).sum::<f64>();
                }
                1.0 / (1.0 + (-z).exp())
            })
            .collect()
    }
}

/// A case's texts (its subject and messages) as the learned models read them: one message at
/// a time, as they were trained, except that a text of fewer than [`MIN_WORDS_ALONE`] words
/// (a subject line, "thanks") is read together with the text after it (the last one with
/// the text before it), since a model is unsure of so few words: "Payment issue" alone
/// looks like a dispute.
pub fn text_groups(texts: &[&str]) -> Vec<String> {
    let mut groups: Vec<String> = Vec::new();
    let mut pending = String::new();
    for t in texts {
        if !pending.is_empty() {
            pending.push('\n');
        }
        pending.push_str(t);
        if words(t).len() >= MIN_WORDS_ALONE {
            groups.push(std::mem::take(&mut pending));
        }
    }
    if !pending.is_empty() {
        match groups.last_mut() {
            Some(last) => {
                last.push('\n');
                last.push_str(&pending);
            }
            None => groups.push(pending),
        }
    }
    groups
}

/// How many words the learned models read in `text`, when they read the same words as the
/// patterns (the words of [`crate::normalize::normalize`]'s form); `None` when they do not:
/// a letter the patterns see through and the models read as another (a look-alike from
/// another script, a symbol that looks like a letter, a combining mark or an invisible
/// character inside a word), or an accented, Cyrillic or Greek letter, which the normal
/// form folds and the models keep. A full-width letter is the same to both. A word in
/// letters of any other script (Chinese, which the normal form leaves alone) is not read
/// alike either: the models were trained on English only, so their reading of it says
/// nothing.
pub fn words_alike(text: &str) -> Option<usize> {
    let ours = words(text);
    if !ours.iter().all(|w| w.is_ascii()) {
        return None;
    }
    let normal = crate::normalize::normalize(text);
    ours.iter().map(String::as_str).eq(normal.split_whitespace()).then_some(ours.len())
}

/// Runs of letters and digits of the text's NFKC form, lower-cased as a whole string (so a
/// word-final sigma is `ς`, as Python's `str.lower` has it); combining marks split words, as
/// they do for Python's `str.isalnum`, which the trainer uses.
fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let folded: String = text.nfkc().collect::<String>().to_lowercase();
    for ch in folded.chars() {
        // Negative circled and squared letters (🅰, 🅿) are alphabetic for Rust, not for
        // Python's `isalnum`, and NFKC leaves them: they split words, as in the trainer.
        if ch.is_alphanumeric() && !is_combining_mark(ch) && !('\u{1F150}'..='\u{1F189}').contains(&ch) {
            cur.push(ch);
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Every feature of a text, as the trainer names them: `w:word`, `b:word word` and
/// `c:` + 3 to 5 characters of ` word ` (a word padded with a space on each side).
fn for_each_feature(text: &str, mut f: impl FnMut(&str)) {
    let ws = words(text);
    let mut buf = String::new();
    for w in &ws {
        buf.clear();
        buf.push_str("w:");
        buf.push_str(w);
        f(&buf);
    }
    for pair in ws.windows(2) {
        buf.clear();
        buf.push_str("b:");
        buf.push_str(&pair[0]);
        buf.push(' ');
        buf.push_str(&pair[1]);
        f(&buf);
    }
    let mut padded: Vec<char> = Vec::new();
    for w in &ws {
        padded.clear();
        padded.push(' ');
        padded.extend(w.chars());
        padded.push(' ');
        for n in 3..=5 {
            if padded.len() < n {
                break;
            }
            for piece in padded.windows(n) {
                buf.clear();
                buf.push_str("c:");
                buf.extend(piece);
                f(&buf);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_taken_at_build_time_is_the_models() {
        assert_eq!(BUILTIN.sha256(), BUILTIN_SHA256);
    }

    /// What a policy's thresholds per category are checked against is what both learned
    /// readers read (a category neither reads would take a threshold that changes nothing).
    #[test]
    fn the_categories_known_without_the_model_are_the_models_and_the_encoders() {
        let mut model = BUILTIN.categories().to_vec();
        model.sort_by_key(|c| c.as_str());
        let mut known = CATEGORIES.to_vec();
        known.sort_by_key(|c| c.as_str());
        assert_eq!(model, known);
        let mut encoder = countersign_encoder::builtin_categories().unwrap();
        encoder.sort();
        assert_eq!(encoder, known.iter().map(|c| c.as_str().to_string()).collect::<Vec<_>>());
    }

    #[test]
    fn the_built_in_model_reproduces_every_probability_the_trainer_recorded() {
        let model = &*BUILTIN;
        assert!(model.checks().len() >= 20, "the model file carries its check vectors");
        for check in model.checks() {
            let mine = model.probabilities(&check.text);
            assert_eq!(mine.len(), check.p.len());
            for (a, b) in mine.iter().zip(&check.p) {
                assert!((a - b).abs() < 1e-9, "{:?}: {mine:?} vs the trainer's {:?}", check.text, check.p);
            }
        }
    }

    #[test]
    fn every_check_text_has_the_features_the_trainer_found() {
        for check in BUILTIN.checks() {
            let mut mine = Vec::new();
            for_each_feature(&check.text, |f| mine.push(f.to_string()));
            assert_eq!(mine, check.features, "{:?}", check.text);
        }
        assert!(
            BUILTIN.checks().iter().any(|c| c.text.contains('ς') || c.text.contains('Σ')),
            "unicode cases are checked"
        );
    }

    #[test]
    fn features_are_named_as_the_trainer_names_them() {
        let mut seen = Vec::new();
        for_each_feature("Hi, KMS", |f| seen.push(f.to_string()));
        let expected = [
            "w:hi", "w:kms", "b:hi kms", "c: hi", "c:hi ", "c: hi ", "c: km", "c:kms", "c:ms ", "c: kms", "c:kms ",
            "c: kms ",
        ];
        assert_eq!(seen, expected);
    }

    #[test]
    fn a_short_text_is_read_with_its_neighbour_and_a_long_one_alone() {
        let model = &*BUILTIN;
        let subject = "Payment issue";
        let ordinary = "Hi, where is my order #W5432440? It was due on Monday and nothing came yet.";
        let joined = format!("{subject}\n{ordinary}");
        assert_eq!(model.case_probabilities(&[subject, ordinary]), model.probabilities(&joined));
        assert_eq!(
            model.case_probabilities(&[ordinary, subject]),
            model.probabilities(&format!("{ordinary}\n{subject}"))
        );
        assert_eq!(model.case_probabilities(&[subject]), model.probabilities(subject), "alone when it is all there is");
        let signal = "I have the pills lined up on the counter. I just wanted someone to know before I do it.";
        let each: Vec<f64> =
            model.probabilities(ordinary).iter().zip(model.probabilities(signal)).map(|(a, b)| a.max(b)).collect();
        assert_eq!(model.case_probabilities(&[ordinary, signal]), each, "two long texts, each on its own");
    }

    #[test]
    fn a_text_without_a_known_feature_gets_the_intercepts_alone() {
        let model = &*BUILTIN;
        let p = model.probabilities("");
        assert_eq!(p, model.intercepts.iter().map(|z| 1.0 / (1.0 + (-z).exp())).collect::<Vec<_>>());
    }

    #[test]
    fn a_malformed_model_is_refused_with_a_reason() {
        let bad = r#"{"format":1,"categories":["legal"],"intercepts":[0.1],"features":[["w:a",1.0,[0.1,0.2]]]}"#;
        assert!(SignalModel::parse(bad).unwrap_err().contains("2 weights for 1 categories"));
        assert!(
            SignalModel::parse(r#"{"format":2,"categories":[],"intercepts":[],"features":[]}"#)
                .unwrap_err()
                .contains("format 2")
        );
        let twice = r#"{"format":1,"categories":["legal"],"intercepts":[0.1],"features":[["w:a",1.0,[0.1]],["w:a",1.0,[0.1]]]}"#;
        assert!(SignalModel::parse(twice).unwrap_err().contains("listed twice"));
    }
}
