//! Signed policy packs for tests: the demo's sources signed by a key made in the test.

use std::path::{Path, PathBuf};

use countersign_trust::keys::SecretKey;
use countersign_trust::pack::sign_pack;

/// The repository's `assets/`.
pub fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets")
}

/// Pack `version` signed by `key` from the demo's sources: the policy (edited by `edit`),
/// the roster, the catalog and the managed settings.
pub fn signed(key: &SecretKey, version: u64, edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let src = tempfile::tempdir().unwrap();
    let demo = assets().join("demo");
    let policy = edit(std::fs::read_to_string(demo.join("policy.toml")).unwrap());
    std::fs::write(src.path().join("policy.toml"), policy).unwrap();
    for f in ["roster.toml", "catalog.toml"] {
        std::fs::copy(demo.join(f), src.path().join(f)).unwrap();
    }
    std::fs::write(src.path().join("pack-source.toml"), demo_source_at(version)).unwrap();
    let out = tempfile::tempdir().unwrap();
    sign_pack(&src.path().join("pack-source.toml"), out.path(), key).unwrap();
    out
}

/// The version the demo's pack source (`assets/demo/pack-source.toml`) is at.
pub fn demo_pack_version() -> u64 {
    let source = std::fs::read_to_string(assets().join("demo/pack-source.toml")).unwrap();
    let line = source.lines().find_map(|l| l.strip_prefix("version = ")).expect("the demo source has a version line");
    line.split_whitespace().next().unwrap().parse().unwrap()
}

/// The demo's pack source with its version set to `version` (whatever the demo is at),
/// the rest of it as it is.
pub fn demo_source_at(version: u64) -> String {
    let source: String = std::fs::read_to_string(assets().join("demo/pack-source.toml"))
        .unwrap()
        .lines()
        .map(|l| match l.strip_prefix("version = ") {
            Some(rest) => match rest.split_once(' ') {
                Some((_, comment)) => format!("version = {version} {comment}\n"),
                None => format!("version = {version}\n"),
            },
            None => format!("{l}\n"),
        })
        .collect();
    assert!(source.contains(&format!("version = {version}")), "the demo source has a version line");
    source
}

/// A copy of a flat folder (a pack) to tamper with.
pub fn copy_dir(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, to.path().join(p.file_name().unwrap())).unwrap();
    }
    to
}

/// The demo's pack sources with a roster role the policy does not declare: contents that
/// signing refuses. Returns the folder; the source is its `pack-source.toml`.
pub fn source_with_unknown_roster_role() -> tempfile::TempDir {
    let src = tempfile::tempdir().unwrap();
    let demo = assets().join("demo");
    for f in ["policy.toml", "catalog.toml", "pack-source.toml"] {
        std::fs::copy(demo.join(f), src.path().join(f)).unwrap();
    }
    let roster =
        std::fs::read_to_string(demo.join("roster.toml")).unwrap().replace("role = \"team_lead\"", "role = \"owner\"");
    std::fs::write(src.path().join("roster.toml"), roster).unwrap();
    src
}
