//! The TypeScript declarations in `ui/src/bindings/` are generated from the Rust types in
//! `src/dto.rs` and the engine's views (`countersign_engine::views`); this test fails when they drift. Regenerate with
//! `UPDATE_BINDINGS=1 cargo test -p countersign-desktop --test bindings`.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use countersign_desktop::dto::*;
use ts_rs::TS;

fn generate(dir: &Path) {
    AppError::export_all_to(dir).unwrap();
    AppInfo::export_all_to(dir).unwrap();
    InboxItem::export_all_to(dir).unwrap();
    CaseView::export_all_to(dir).unwrap();
    Progress::export_all_to(dir).unwrap();
    Verdict::export_all_to(dir).unwrap();
    LeadProof::export_all_to(dir).unwrap();
    PassageView::export_all_to(dir).unwrap();
    EventView::export_all_to(dir).unwrap();
    LogQuery::export_all_to(dir).unwrap();
    VerifyView::export_all_to(dir).unwrap();
    ExportView::export_all_to(dir).unwrap();
    PauseView::export_all_to(dir).unwrap();
    Metrics::export_all_to(dir).unwrap();
    CredentialList::export_all_to(dir).unwrap();
    ReplyCheck::export_all_to(dir).unwrap();
    BlobView::export_all_to(dir).unwrap();
    UpdateCheck::export_all_to(dir).unwrap();
}

fn read_dir(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            for (k, v) in read_dir(&path) {
                out.insert(format!("{}/{k}", entry.file_name().to_string_lossy()), v);
            }
        } else if path.extension().is_some_and(|e| e == "ts") {
            out.insert(entry.file_name().to_string_lossy().into_owned(), std::fs::read_to_string(&path).unwrap());
        }
    }
    out
}

#[test]
fn bindings_match_the_rust_types() {
    let checked_in = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ui/src/bindings");
    let fresh = tempfile::tempdir().unwrap();
    generate(fresh.path());
    let generated = read_dir(fresh.path());
    assert!(generated.contains_key("CaseView.ts"), "generation wrote nothing: {:?}", generated.keys());
    if std::env::var_os("UPDATE_BINDINGS").is_some() {
        let _ = std::fs::remove_dir_all(&checked_in);
        generate(&checked_in);
        return;
    }
    let current = read_dir(&checked_in);
    let stale: Vec<&String> = generated.keys().filter(|k| current.get(*k) != generated.get(*k)).collect();
    let extra: Vec<&String> = current.keys().filter(|k| !generated.contains_key(*k)).collect();
    assert!(
        stale.is_empty() && extra.is_empty(),
        "ui/src/bindings/ is out of date with src-tauri/src/dto.rs (changed or missing: {stale:?}; no longer \
         generated: {extra:?}); run UPDATE_BINDINGS=1 cargo test -p countersign-desktop --test bindings"
    );
}
