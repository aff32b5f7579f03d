//! The fine-tuned encoder against what its trainer computed, and its refusals. Needs the
//! base in the user's cache (scripts/fetch-encoder.sh; scripts/setup.sh runs it).
#![allow(clippy::unwrap_used, clippy::float_arithmetic)]

use std::path::PathBuf;

use countersign_encoder::{BASE_FILES, CHECKS, EncoderError, SignalEncoder, builtin_categories, default_base_dir};

fn base() -> PathBuf {
    let dir = default_base_dir().expect("HOME or COUNTERSIGN_ENCODER_DIR is set");
    assert!(
        BASE_FILES.iter().all(|(name, _)| dir.join(name).exists()),
        "the encoder's base is not in {}: run scripts/fetch-encoder.sh",
        dir.display()
    );
    dir
}

#[test]
fn the_encoder_reproduces_its_trainers_probabilities() {
    let encoder = SignalEncoder::load(&base()).unwrap();
    assert_eq!(encoder.categories(), builtin_categories().unwrap());
    assert_eq!(encoder.categories().len(), 7);
    let mut worst = 0.0_f64;
    let mut n = 0;
    for line in CHECKS.lines() {
        let check: serde_json::Value = serde_json::from_str(line).unwrap();
        let text = check["text"].as_str().unwrap();
        let want: Vec<f64> = serde_json::from_value(check["p"].clone()).unwrap();
        let got = encoder.probabilities(text).unwrap();
        assert_eq!(got.len(), want.len(), "{text:?}");
        for (g, w) in got.iter().zip(&want) {
            worst = worst.max((g - w).abs());
        }
        n += 1;
    }
    assert!(n >= 100, "only {n} check vectors");
    eprintln!("{n} check vectors, largest difference from the trainer {worst:.1e}");
    // Single-precision arithmetic in a different order than the trainer's: agreement to
    // well under a thousandth of a probability, and far from every threshold's width.
    assert!(worst < 1e-4, "largest difference from the trainer: {worst:e}");
}

/// Read in batches of like length, padded and masked, each text gets what the trainer
/// computed for it alone.
#[test]
fn batches_of_texts_give_each_text_its_trainers_probabilities() {
    let encoder = SignalEncoder::load(&base()).unwrap();
    let checks: Vec<(String, Vec<f64>)> = CHECKS
        .lines()
        .map(|line| {
            let check: serde_json::Value = serde_json::from_str(line).unwrap();
            (check["text"].as_str().unwrap().to_string(), serde_json::from_value(check["p"].clone()).unwrap())
        })
        .collect();
    let texts: Vec<&str> = checks.iter().map(|(t, _)| t.as_str()).collect();
    let batches = encoder.batches(&texts, 16);
    let mut order: Vec<usize> = batches.iter().flatten().copied().collect();
    order.sort_unstable();
    assert_eq!(order, (0..texts.len()).collect::<Vec<_>>(), "every text in one batch");
    assert!(batches.iter().all(|b| b.len() <= 16) && batches.len() == texts.len().div_ceil(16));
    let mut worst = 0.0_f64;
    let mut from_alone = 0.0_f64;
    for batch in &batches {
        let got = encoder.probabilities_batch(&batch.iter().map(|&i| texts[i]).collect::<Vec<_>>()).unwrap();
        assert_eq!(got.len(), batch.len());
        for (&i, p) in batch.iter().zip(&got) {
            let alone = encoder.probabilities(texts[i]).unwrap();
            for ((g, w), a) in p.iter().zip(&checks[i].1).zip(&alone) {
                worst = worst.max((g - w).abs());
                from_alone = from_alone.max((g - a).abs());
            }
        }
    }
    eprintln!("batched: largest difference from the same text read alone {from_alone:.1e}");
    assert!(from_alone < 1e-5, "a text read in a batch differs from itself alone by {from_alone:e}");
    // Texts of every length together, too: the padding is masked out.
    let all = encoder.probabilities_batch(&texts).unwrap();
    for (p, (_, want)) in all.iter().zip(&checks) {
        for (g, w) in p.iter().zip(want) {
            worst = worst.max((g - w).abs());
        }
    }
    eprintln!("batched: largest difference from the trainer {worst:.1e}");
    assert!(worst < 1e-4, "largest difference from the trainer: {worst:e}");
    assert!(encoder.probabilities_batch(&[]).unwrap().is_empty());
}

#[test]
fn a_changed_base_file_is_refused() {
    let src = base();
    let dir = tempfile::tempdir().unwrap();
    for (name, _) in BASE_FILES {
        std::fs::copy(src.join(name), dir.path().join(name)).unwrap();
    }
    let config = dir.path().join("config.json");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("\"num_hidden_layers\": 6", "\"num_hidden_layers\": 5")).unwrap();
    let err = SignalEncoder::load(dir.path()).unwrap_err();
    assert!(matches!(err, EncoderError::Changed { .. }), "{err}");
    assert!(err.to_string().contains("config.json"), "{err}");
}

#[test]
fn a_missing_base_says_how_to_fetch_it() {
    let dir = tempfile::tempdir().unwrap();
    let err = SignalEncoder::load(dir.path()).unwrap_err();
    assert!(matches!(err, EncoderError::Missing { .. }), "{err}");
    assert!(err.to_string().contains("countersign encoder fetch"), "{err}");
}
