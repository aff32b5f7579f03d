//! Bundle the admin public keys this build trusts: every `*.pub` file in
//! `assets/trusted-keys/` (or in the directory `COUNTERSIGN_TRUSTED_KEYS_DIR` names, for
//! an organisation building its own installer) becomes part of the binary.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=COUNTERSIGN_TRUSTED_KEYS_DIR");
    let dir = match std::env::var_os("COUNTERSIGN_TRUSTED_KEYS_DIR") {
        Some(d) => PathBuf::from(d),
        // Read at run time, not baked in with env!(): cargo reuses a compiled build script
        // across checkouts that share a target dir, and the keys must be this checkout's.
        None => {
            PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default()).join("../../assets/trusted-keys")
        }
    };
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "pub")).collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut out = String::from("pub(super) const FILES: &[(&str, &str)] = &[\n");
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let text = std::fs::read_to_string(f).unwrap_or_default();
        out.push_str(&format!("    ({name:?}, {text:?}),\n"));
    }
    out.push_str("];\n");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    if let Err(e) = std::fs::write(out_dir.join("trusted_keys.rs"), out) {
        println!("cargo:warning=cannot write trusted_keys.rs: {e}");
        std::process::exit(1);
    }
}
