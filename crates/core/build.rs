//! Hashes the built-in signal model once per build, so a policy naming it is checked
//! without reading the model (the model itself is parsed only when a case is first scanned).

use sha2::{Digest, Sha256};

fn main() {
    let path = "model/signals.json";
    println!("cargo:rerun-if-changed={path}");
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    println!("cargo:rustc-env=COUNTERSIGN_SIGNAL_MODEL_SHA256={}", hex::encode(Sha256::digest(&bytes)));
}
