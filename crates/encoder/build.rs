//! Hashes the compiled-in update and head once per build, so a policy naming them is checked
//! without reading them.

use sha2::{Digest, Sha256};

fn main() {
    let path = "model/signals-encoder.safetensors";
    println!("cargo:rerun-if-changed={path}");
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    println!("cargo:rustc-env=COUNTERSIGN_SIGNAL_ENCODER_SHA256={}", hex::encode(Sha256::digest(&bytes)));
}
