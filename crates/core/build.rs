//! Hashes the built-in signal model once per build, so a policy naming it is checked
//! without reading the model (the model itself is parsed only when a case is first scanned).
//! The model is stored gzip-compressed; its hash is of the JSON inside, what the trainer
//! wrote and what a policy's `[signal_model]` names.

use std::io::Read;

use sha2::{Digest, Sha256};

fn main() {
    let path = "model/signals.json.gz";
    println!("cargo:rerun-if-changed={path}");
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(file).read_to_end(&mut json).unwrap_or_else(|e| panic!("{path}: {e}"));
    println!("cargo:rustc-env=COUNTERSIGN_SIGNAL_MODEL_SHA256={}", hex::encode(Sha256::digest(&json)));
}
