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
    // Single-precision arithmetic in a different order than the trainer's, and the word
    // table kept in half precision (about 2e-4 of it): agreement to under 5e-4 of a
    // probability, far from every threshold's width.
    assert!(worst < 5e-4, "largest difference from the trainer: {worst:e}");
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
    // All the texts in one call, too (their windows read 16 at a time, shortest first):
    // the padding is masked out.
    let all = encoder.probabilities_batch(&texts).unwrap();
    for (p, (_, want)) in all.iter().zip(&checks) {
        for (g, w) in p.iter().zip(want) {
            worst = worst.max((g - w).abs());
        }
    }
    eprintln!("batched: largest difference from the trainer {worst:.1e}");
    assert!(worst < 5e-4, "largest difference from the trainer: {worst:e}");
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

/// A long text (a pasted email) is read in overlapping windows: a sentence past the first
/// 128 word pieces counts about as it would alone, and ordinary words around it do not
/// raise it. Past the last window ([`MAX_WINDOWS`]) the encoder reads nothing.
#[test]
fn a_long_text_is_read_in_windows_to_its_end() {
    let encoder = SignalEncoder::load(&base()).unwrap();
    let self_harm = encoder.categories().iter().position(|c| c == "self_harm").unwrap();
    let filler = "The parcel came on Tuesday and the box was fine, but the blue mug inside had a chip on \
                  the handle, so I would like to swap it for the same mug in green if you still have it. "
        .repeat(5);
    let sentence = "Honestly I do not want to be alive anymore and I keep thinking about ending it tonight.";
    let alone = encoder.probabilities(sentence).unwrap()[self_harm];
    let ordinary = encoder.probabilities(&filler).unwrap()[self_harm];
    let at_the_end = encoder.probabilities(&format!("{filler}{sentence}")).unwrap()[self_harm];
    let at_the_start = encoder.probabilities(&format!("{sentence} {filler}")).unwrap()[self_harm];
    eprintln!(
        "self_harm: alone {alone:.3}, ordinary {ordinary:.3}, at the end {at_the_end:.3}, at the start {at_the_start:.3}"
    );
    assert!(alone > 0.9 && ordinary < 0.1, "alone {alone}, ordinary {ordinary}");
    assert!(at_the_end > 0.7, "a sentence after the first window: {at_the_end}");
    assert!(at_the_start > 0.7, "a sentence in the first window: {at_the_start}");
    // Read in a batch with short texts, the long one gets what it gets alone.
    let long = format!("{filler}{sentence}");
    let batch = encoder.probabilities_batch(&[sentence, &long, "Where is my order?"]).unwrap();
    assert!((batch[1][self_harm] - at_the_end).abs() < 1e-5, "{} against {at_the_end}", batch[1][self_harm]);
    assert!((batch[0][self_harm] - alone).abs() < 1e-5);
    // Beyond MAX_WINDOWS windows, nothing more is read (the model and patterns read it all).
    let beyond = format!("{}{sentence}", filler.repeat(countersign_encoder::MAX_WINDOWS * 2));
    let p = encoder.probabilities(&beyond).unwrap()[self_harm];
    assert!(p < 0.1, "past the last window: {p}");
}
