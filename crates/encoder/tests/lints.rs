//! The encoder crate has its own lint table, so that `unsafe_code` can be `deny` here (for
//! `release_freed_memory`) while the workspace forbids it. Every other lint must stay the
//! workspace's: this test fails when the two tables drift apart.

use std::path::Path;

fn table(path: &Path, keys: &[&str]) -> toml::Table {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut value: toml::Value = toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for key in keys {
        value = value.get(key).unwrap_or_else(|| panic!("{}: no [{}]", path.display(), keys.join("."))).clone();
    }
    value.as_table().cloned().unwrap_or_else(|| panic!("{}: [{}] is not a table", path.display(), keys.join(".")))
}

/// Every other member takes the workspace's lints as they are (`[lints] workspace = true`):
/// a crate without a `[lints]` table gets none of them, `forbid` included.
#[test]
fn every_other_member_takes_the_workspaces_lints() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut manifests: Vec<_> = std::fs::read_dir(root.join("crates"))
        .unwrap_or_else(|e| panic!("crates/: {e}"))
        .map(|e| e.unwrap_or_else(|e| panic!("crates/: {e}")).path().join("Cargo.toml"))
        .filter(|p| p.exists())
        .collect();
    manifests.extend([root.join("src-tauri/Cargo.toml"), root.join("tests/e2e/Cargo.toml")]);
    assert!(manifests.len() > 10, "{manifests:?}");
    for manifest in manifests {
        if manifest.ends_with("crates/encoder/Cargo.toml") {
            continue;
        }
        let lints = table(&manifest, &["lints"]);
        assert_eq!(lints.get("workspace").and_then(toml::Value::as_bool), Some(true), "{}", manifest.display());
    }
}

#[test]
fn the_encoder_lints_are_the_workspaces_but_unsafe_code_denied() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ours = here.join("Cargo.toml");
    let workspace = here.join("../../Cargo.toml");
    let mut ours_rust = table(&ours, &["lints", "rust"]);
    let mut ws_rust = table(&workspace, &["workspace", "lints", "rust"]);
    assert_eq!(ws_rust.remove("unsafe_code").and_then(|v| v.as_str().map(str::to_owned)).as_deref(), Some("forbid"));
    assert_eq!(ours_rust.remove("unsafe_code").and_then(|v| v.as_str().map(str::to_owned)).as_deref(), Some("deny"));
    assert_eq!(ours_rust, ws_rust, "[lints.rust] other than unsafe_code");
    assert_eq!(
        table(&ours, &["lints", "clippy"]),
        table(&workspace, &["workspace", "lints", "clippy"]),
        "[lints.clippy]"
    );
    // The same tools' tables: a new one in the workspace must be copied here too.
    let tools = |t: toml::Table| t.keys().cloned().collect::<Vec<_>>();
    assert_eq!(tools(table(&ours, &["lints"])), tools(table(&workspace, &["workspace", "lints"])));
}
