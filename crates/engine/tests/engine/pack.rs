//! Signed policy packs and device checkpoints, with real files, a real SQLite store and
//! (for the device key) the real OS keyring.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use countersign_core::evidence::Verdict;
use countersign_engine::keys::{SecretKey, TrustedKeys};
use countersign_engine::pack::sign_pack;
use countersign_engine::{
    Engine, EngineError, EngineOptions, ErrorCode, LogFilter, PolicyMode, RefusalCode, StepState,
};

use countersign_test_support::packs::{copy_dir, signed};

use super::{Fixed, ProcessVerified as _, assets, recorded};

/// A workspace whose policy comes from the pack in `pack`.
fn workspace_on(pack: &Path) -> tempfile::TempDir {
    let ws = tempfile::tempdir().unwrap();
    let text = format!(
        "[workspace]\nid = \"t\"\nname = \"t\"\npack = {:?}\nknowledge = {:?}\ncases = {:?}\n\n\
         [connector]\nkind = \"snapshot\"\ndataset = {:?}\n\n[operator]\nid = \"agent-1\"\nrole = \"agent\"\n",
        pack,
        assets().join("knowledge"),
        assets().join("demo/cases"),
        assets().join("demo-store")
    );
    std::fs::write(ws.path().join("workspace.toml"), text).unwrap();
    ws
}

/// An admin key, the demo's pack version 1 signed by it, and a workspace on that pack.
fn signed_workspace() -> (SecretKey, tempfile::TempDir, tempfile::TempDir) {
    let admin = SecretKey::generate().unwrap();
    let pack = signed(&admin, 1, |p| p);
    let ws = workspace_on(pack.path());
    (admin, pack, ws)
}

fn options(workspace: &Path, data: &Path) -> EngineOptions {
    EngineOptions { workspace: workspace.to_path_buf(), data_dir: data.to_path_buf(), operator: None, connector: None }
}

fn open_trusting(workspace: &Path, data: &Path, key: &SecretKey) -> Result<Engine, EngineError> {
    Engine::open_with_trust(options(workspace, data), Arc::new(Fixed), TrustedKeys::new(vec![key.public("test admin")]))
}

/// Flip one byte of `file` (inside a TOML comment or string, so it stays valid text).
fn change_one_byte(file: &Path, at_text: &str) {
    let mut bytes = std::fs::read(file).unwrap();
    let i = String::from_utf8_lossy(&bytes).find(at_text).unwrap_or_else(|| panic!("{at_text:?} in {file:?}"));
    bytes[i] = if bytes[i] == b'x' { b'y' } else { b'x' };
    std::fs::write(file, bytes).unwrap();
}

fn events(e: &Engine, kind: &str) -> Vec<serde_json::Value> {
    e.log_list(&LogFilter { kind: Some(kind.into()), ..LogFilter::default() })
        .unwrap()
        .into_iter()
        .map(|ev| ev.event.payload())
        .collect()
}

#[test]
fn a_pack_signed_by_a_trusted_key_loads_with_its_roster_and_settings() {
    let (admin, _pack, ws) = signed_workspace();
    let data = tempfile::tempdir().unwrap();
    let e = open_trusting(&ws.path().join("workspace.toml"), data.path(), &admin).unwrap();
    let status = e.policy_status();
    assert_eq!(status.mode, PolicyMode::Signed);
    let info = status.pack.unwrap();
    assert_eq!((info.id.as_str(), info.version), ("demo-retail", 1));
    assert_eq!(info.key_id, admin.public("").id());
    let loaded = events(&e, "policy_loaded");
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0]["signed"], true);
    assert_eq!(loaded[0]["pack"]["version"], 1);
    assert_eq!(loaded[0]["pack"]["key_id"], admin.public("").id().as_str());
    assert_eq!(
        e.roster().iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        ["lead-demo"],
        "the roster comes from the pack"
    );
    assert_eq!(e.managed_settings().pause_clear_roles, ["team_lead"]);
    assert_eq!(
        e.managed_settings().update_endpoint.as_deref(),
        Some("https://updates.example.com/countersign/{{target}}/{{arch}}/{{current_version}}"),
        "the app's update endpoint comes from the pack"
    );
    let pause = e.pause_set(countersign_core::model::PauseScope::Channel, "chat", "test").unwrap();
    let err = e.pause_clear(&pause.id, "done").unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotPermitted, "the pack lets only team leads clear pauses: {err}");
    // Opening again records nothing new.
    drop(e);
    let e = open_trusting(&ws.path().join("workspace.toml"), data.path(), &admin).unwrap();
    assert_eq!(events(&e, "policy_loaded").len(), 1);
    assert!(events(&e, "policy_refused").is_empty());
}

#[test]
fn a_workspace_with_a_pack_cannot_add_its_own_roster() {
    let (admin, _pack, ws) = signed_workspace();
    let file = ws.path().join("workspace.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{text}\n[[roster]]\nid = \"me\"\nrole = \"team_lead\"\npassphrase = \"x\"\n"))
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let err = open_trusting(&file, data.path(), &admin).unwrap_err();
    assert_eq!(err.code(), ErrorCode::ConfigInvalid, "{err}");
    assert!(err.to_string().contains("roster from the pack"), "{err}");
}

/// Each bad pack is refused with its own reason, at open and at a live load, and the
/// engine keeps running on the last good pack.
#[test]
fn bad_packs_are_refused_and_the_last_good_pack_stays() {
    let admin = SecretKey::generate().unwrap();
    let stranger = SecretKey::generate().unwrap();
    let v1 = signed(&admin, 1, |p| p);
    let v2 = signed(&admin, 2, |p| p.replace("title = \"Demo retail store: permission map\"", "title = \"v2\""));
    let data = tempfile::tempdir().unwrap();
    let good_ws = workspace_on(v2.path());
    let e = open_trusting(&good_ws.path().join("workspace.toml"), data.path(), &admin).unwrap();
    let good_hash = e.policy().hash.clone();
    assert_eq!(e.policy().title, "v2");

    let tampered_policy = copy_dir(v2.path());
    change_one_byte(&tampered_policy.path().join("policy.toml"), "permission map");
    let tampered_manifest = copy_dir(v2.path());
    change_one_byte(&tampered_manifest.path().join("pack.toml"), "Demo retail store");
    let unsigned = copy_dir(v2.path());
    std::fs::remove_file(unsigned.path().join("pack.sig")).unwrap();
    let unknown = signed(&stranger, 3, |p| p);
    let unlisted = copy_dir(v2.path());
    std::fs::write(unlisted.path().join("policy-override.toml"), "[[rules]]\n").unwrap();
    let cases: [(&str, &Path, RefusalCode); 6] = [
        ("a byte of policy.toml changed", tampered_policy.path(), RefusalCode::Tampered),
        ("a byte of pack.toml changed", tampered_manifest.path(), RefusalCode::BadSignature),
        ("no signature", unsigned.path(), RefusalCode::Unsigned),
        ("signed by an unknown key", unknown.path(), RefusalCode::UnknownKey),
        ("an older version", v1.path(), RefusalCode::Downgrade),
        ("a file the manifest does not list", unlisted.path(), RefusalCode::UnlistedFile),
    ];
    for (what, dir, code) in cases {
        // A live load is refused and changes nothing.
        let err = e.load_pack(dir).unwrap_err();
        let EngineError::PackRefused { refusal } = &err else { panic!("{what}: {err}") };
        assert_eq!(refusal.code, code, "{what}: {refusal}");
        assert_eq!(err.code(), ErrorCode::PackRefused);
        assert_eq!(e.policy().hash, good_hash, "{what}: the engine keeps the last good pack");
        assert_eq!(e.policy_status().pack.unwrap().version, 2);
        let refused = events(&e, "policy_refused");
        assert_eq!(refused.last().unwrap()["code"], code.as_str(), "{what}: the refusal is evidence");

        // Opening on it is refused the same way; the engine runs on its copy of v2.
        let ws = workspace_on(dir);
        let reopened = open_trusting(&ws.path().join("workspace.toml"), data.path(), &admin).unwrap();
        let status = reopened.policy_status();
        assert_eq!(status.refused.as_ref().map(|r| r.code), Some(code), "{what}");
        assert_eq!(status.pack.unwrap().version, 2, "{what}: still on the last good pack");
        assert_eq!(reopened.policy().hash, good_hash);
        assert_eq!(status.mode, PolicyMode::Signed);
    }
    // The same version with other contents is refused too.
    let reused = signed(&admin, 2, |p| p.replace("title = \"Demo retail store: permission map\"", "title = \"v2b\""));
    let err = e.load_pack(reused.path()).unwrap_err();
    assert!(
        matches!(&err, EngineError::PackRefused { refusal } if refusal.code == RefusalCode::VersionReused),
        "{err}"
    );
    assert!(e.log_verify().unwrap().ok);
}

#[test]
fn with_no_good_pack_to_fall_back_on_opening_fails_and_says_why() {
    let admin = SecretKey::generate().unwrap();
    let pack = signed(&admin, 1, |p| p);
    change_one_byte(&pack.path().join("roster.toml"), "DEMO ONLY");
    let ws = workspace_on(pack.path());
    let data = tempfile::tempdir().unwrap();
    let err = open_trusting(&ws.path().join("workspace.toml"), data.path(), &admin).unwrap_err();
    assert!(
        matches!(&err, EngineError::PackRefused { refusal } if refusal.code == RefusalCode::Tampered
            && refusal.message.contains("roster.toml")),
        "{err}"
    );
    // The refusal is in the log even though the engine did not open.
    let store = countersign_store::Store::open(data.path().join("evidence.sqlite")).unwrap();
    let refused =
        store.list_events(&LogFilter { kind: Some("policy_refused".into()), ..LogFilter::default() }).unwrap();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].payload["code"], "tampered");
}

#[test]
fn a_copy_of_the_last_good_pack_that_was_edited_is_not_used() {
    let (admin, pack, ws) = signed_workspace();
    let data = tempfile::tempdir().unwrap();
    drop(open_trusting(&ws.path().join("workspace.toml"), data.path(), &admin).unwrap());
    // Someone edits the engine's copy and removes the pack the workspace names.
    change_one_byte(&data.path().join("pack/policy.toml"), "permission map");
    std::fs::remove_file(pack.path().join("pack.sig")).unwrap();
    let err = open_trusting(&ws.path().join("workspace.toml"), data.path(), &admin).unwrap_err();
    assert!(matches!(&err, EngineError::PackRefused { refusal } if refusal.code == RefusalCode::Unsigned), "{err}");
}

#[test]
fn dev_mode_is_flagged_and_ends_once_a_signed_pack_has_loaded() {
    let data = tempfile::tempdir().unwrap();
    let admin = SecretKey::generate().unwrap();
    // Dev mode (an unsigned policy); the snapshot workspace needs no demo store beside it.
    let dev_ws = assets().join("demo/workspace-snapshot.toml");
    {
        let e = open_trusting(&dev_ws, data.path(), &admin).unwrap();
        assert_eq!(e.policy_status().mode, PolicyMode::Dev);
        assert_eq!(events(&e, "policy_loaded")[0]["signed"], false);
        assert!(events(&e, "policy_loaded")[0].get("pack").is_none());
    }
    let pack = signed(&admin, 1, |p| p.replace("version = 1", "version = 7"));
    let ws = workspace_on(pack.path());
    let pack_hash =
        open_trusting(&ws.path().join("workspace.toml"), data.path(), &admin).unwrap().policy().hash.clone();
    // Back to the unsigned workspace: refused, the pack stays.
    let e = open_trusting(&dev_ws, data.path(), &admin).unwrap();
    let status = e.policy_status();
    assert_eq!(status.refused.map(|r| r.code), Some(RefusalCode::Unsigned));
    assert_eq!(status.mode, PolicyMode::Signed);
    assert_eq!(e.policy().hash, pack_hash);
}

#[test]
fn a_new_pack_invalidates_pending_approvals_when_it_loads() {
    let admin = SecretKey::generate().unwrap();
    let v1 = signed(&admin, 1, |p| p);
    let v2 = signed(&admin, 2, |p| p.replace("title = \"Demo retail store: permission map\"", "title = \"v2\""));
    let ws = workspace_on(v1.path());
    let data = tempfile::tempdir().unwrap();
    let e = open_trusting(&ws.path().join("workspace.toml"), data.path(), &admin).unwrap();
    let cancel = recorded(&e, "01-cancel-pending");
    let waiting = e.review_queue().unwrap();
    let step = waiting.iter().find(|s| s.action == "cancel_pending_order").unwrap().clone();
    let approved: Vec<_> =
        e.case_steps(&cancel.case.id).unwrap().into_iter().filter(|s| s.state == StepState::Approved).collect();
    assert!(!approved.is_empty(), "the case has an auto step approved and not yet run");

    e.load_pack(v2.path()).unwrap();
    assert!(e.review_queue().unwrap().is_empty(), "nothing waits under the old policy");
    for s in e.case_steps(&cancel.case.id).unwrap() {
        assert_eq!(s.state, StepState::Invalidated, "{} was decided under the old policy", s.step_id);
    }
    let invalidated = events(&e, "step_invalidated");
    assert_eq!(invalidated.len(), 1 + approved.len(), "one event per invalidated step");
    assert_eq!(invalidated[0]["policy_hash"], e.policy().hash.as_str());
    let err = e.review(&step.plan_id, &step.step_id, Verdict::Approved, "").unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict, "{err}");

    // A pack with the same policy (only the version differs) is a new pack too: what
    // waits under v2 is invalidated when v3 loads.
    let mut again = cancel.plan.clone();
    again.id = "plan-again".into();
    e.process_verified(&cancel.case, &again).unwrap();
    assert_eq!(e.review_queue().unwrap().len(), 1);
    let v3 = signed(&admin, 3, |p| p.replace("title = \"Demo retail store: permission map\"", "title = \"v2\""));
    let hash = e.policy().hash.clone();
    e.load_pack(v3.path()).unwrap();
    assert_eq!(e.policy().hash, hash, "the same policy");
    assert!(e.review_queue().unwrap().is_empty(), "a new pack invalidates what waits, even with the same policy");
    assert!(e.log_verify().unwrap().ok);
}

#[test]
fn the_demo_pack_in_assets_verifies_with_the_keys_this_build_bundles() {
    let data = tempfile::tempdir().unwrap();
    let e = Engine::open(options(&assets().join("demo/workspace-signed.toml"), data.path()), Arc::new(Fixed)).unwrap();
    let status = e.policy_status();
    assert_eq!(status.mode, PolicyMode::Signed, "{:?}", status.refused);
    assert!(status.refused.is_none());
    // The signed copy carries the demo's current sources, not an older policy.
    for f in ["policy.toml", "roster.toml", "catalog.toml"] {
        assert!(
            std::fs::read(assets().join("demo-pack").join(f)).unwrap()
                == std::fs::read(assets().join("demo").join(f)).unwrap(),
            "assets/demo-pack/{f} differs from assets/demo/{f}: raise [pack] version in pack-source.toml and run scripts/demo-pack.sh"
        );
    }
}

// ------------------------------------------------------------- device checkpoints

fn rows(db: &Path) -> Vec<(i64, String)> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut s = c.prepare("SELECT seq, body FROM evidence ORDER BY seq").unwrap();
    s.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(Result::unwrap).collect()
}

/// Rewrite event `seq`'s body and re-hash the chain and head after it, as someone with
/// write access to the database (but not the device key) could.
pub(super) fn rewrite_chain(db: &Path, seq: i64, edit: impl Fn(&str) -> String) {
    let all = rows(db);
    let c = rusqlite::Connection::open(db).unwrap();
    // The attacker owns the file: the append-only trigger is no obstacle.
    c.execute_batch("DROP TRIGGER evidence_no_update").unwrap();
    let mut prev = countersign_store::Hash::genesis();
    for (s, body) in all {
        let body = if s == seq { edit(&body) } else { body };
        let h = countersign_store::Hash::link(&prev, body.as_bytes());
        c.execute("UPDATE evidence SET body = ?1, hash = ?2 WHERE seq = ?3", rusqlite::params![body, &h.0[..], s])
            .unwrap();
        prev = h;
    }
    c.execute("UPDATE chain_head SET head = ?1 WHERE id = 1", rusqlite::params![&prev.0[..]]).unwrap();
}

#[test]
fn device_checkpoints_sign_the_log_and_catch_a_rewrite() {
    let data = tempfile::tempdir().unwrap();
    let db: PathBuf = data.path().join("evidence.sqlite");
    let e = super::open(data.path());
    recorded(&e, "01-cancel-pending");
    let c = e.checkpoint().unwrap();
    assert_eq!(c.device_key_id, e.device_public_key().unwrap().id(), "the device key is stable");
    let report = e.verify_checkpoints().unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!(report.devices, std::slice::from_ref(&c.device_key_id));

    // An export writes a checkpoint first; the bundle's checkpoints verify.
    let bundle = tempfile::tempdir().unwrap();
    e.log_export(&bundle.path().join("b")).unwrap();
    let b = countersign_engine::checkpoints::check_bundle_checkpoints(&bundle.path().join("b")).unwrap();
    assert!(b.ok && b.checkpoints.len() == 2, "{b:?}");
    drop(e);

    // Rewrite an event the checkpoint covers, re-hashing chain and head: the chain alone
    // verifies, the checkpoint does not.
    let before = rows(&db)[1].1.clone();
    rewrite_chain(&db, 2, |body| body.replacen("agent-demo", "agent-evil", 1));
    assert_ne!(rows(&db)[1].1, before, "event 2 was rewritten");
    let e = super::open(data.path());
    let chain = e.log_verify().unwrap();
    let cp = e.verify_checkpoints().unwrap();
    assert!(chain.ok, "the re-hashed chain verifies on its own: {chain:?}");
    assert!(!cp.ok, "the device-signed checkpoint catches the rewrite: {cp:?}");
    assert!(cp.checkpoints[0].problem.as_deref().unwrap_or_default().contains("rewritten"), "{cp:?}");

    // The device key's secret is in the keyring and nowhere else.
    let keyring = countersign_engine::credentials::keyring();
    let secret = keyring.get_key(countersign_engine::device::DEVICE_SLOT).unwrap().unwrap();
    let seed = secret.expose().split_whitespace().last().unwrap().to_string();
    assert_eq!(seed.len(), 64);
    let wal = data.path().join("evidence.sqlite-wal");
    for file in [db.clone(), wal, bundle.path().join("b/events.jsonl"), bundle.path().join("b/manifest.json")] {
        let Ok(bytes) = std::fs::read(&file) else { continue };
        assert!(!String::from_utf8_lossy(&bytes).contains(&seed), "the device secret leaked into {file:?}");
    }
}

#[test]
fn under_a_signed_pack_an_llm_planner_may_call_only_the_endpoint_the_pack_names() {
    let (admin, _pack, ws) = signed_workspace();
    let file = ws.path().join("workspace.toml");
    let base = std::fs::read_to_string(&file).unwrap();
    let data = tempfile::tempdir().unwrap();
    let planner = |provider_lines: &str| {
        std::fs::write(&file, format!("{base}\n[planner]\n{provider_lines}")).unwrap();
        let e = open_trusting(&file, data.path(), &admin).unwrap();
        assert!(e.policy_is_signed());
        e.configured_planner().map(|p| p.name().to_string())
    };
    // The demo pack source names http://127.0.0.1:11434/v1 as the only LLM endpoint.
    let elsewhere = planner("provider = \"openai\"\nmodel = \"m\"\nbase_url = \"https://api.openai.com/v1\"\n");
    let err = elsewhere.unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotPermitted, "{err}");
    assert!(err.to_string().contains("http://127.0.0.1:11434/v1"), "{err}");
    let allowed = planner("provider = \"openai\"\nmodel = \"m\"\nbase_url = \"http://127.0.0.1:11434/v1/\"\n");
    assert!(allowed.is_ok(), "{allowed:?}");
    assert_eq!(planner("provider = \"local\"\n").unwrap(), "local");
}

/// Signing errors come from `countersign-trust`; the engine gives them the codes the
/// faces have always seen (the CLI's `error [Code]`, the app's screens).
#[test]
fn trust_errors_keep_the_codes_the_faces_see() {
    let admin = SecretKey::generate().unwrap();
    let src = countersign_test_support::packs::source_with_unknown_roster_role();
    let out = tempfile::tempdir().unwrap();
    let err = EngineError::from(sign_pack(&src.path().join("pack-source.toml"), out.path(), &admin).unwrap_err());
    assert_eq!(err.code(), ErrorCode::BadInput, "contents that do not check: {err}");
    assert!(err.to_string().contains("\"owner\""), "the message is trust's own: {err}");

    let pack = signed(&admin, 1, |p| p);
    let err = EngineError::from(sign_pack(&assets().join("demo/pack-source.toml"), pack.path(), &admin).unwrap_err());
    assert_eq!(err.code(), ErrorCode::Conflict, "a directory that holds a pack: {err}");

    let err = EngineError::from(sign_pack(&src.path().join("nowhere.toml"), out.path(), &admin).unwrap_err());
    assert_eq!(err.code(), ErrorCode::Io, "{err}");
}

#[test]
fn a_pack_whose_policy_lacks_the_seats_role_is_refused_recorded_and_the_running_pack_stays() {
    let (admin, _v1, ws) = signed_workspace();
    let data = tempfile::tempdir().unwrap();
    let e = open_trusting(&ws.path().join("workspace.toml"), data.path(), &admin).unwrap();
    let before = e.policy_status().pack.unwrap();
    // Version 2 renames the seat's role (`agent`) everywhere its policy names it.
    let v2 = signed(&admin, 2, |p| p.replace("\"agent\"", "\"clerk\""));
    let err = e.load_pack(v2.path()).unwrap_err();
    let EngineError::PackRefused { refusal } = &err else { panic!("{err}") };
    assert_eq!(refusal.code, RefusalCode::InvalidContents, "{err}");
    assert!(refusal.message.contains("\"agent\""), "{err}");
    assert_eq!(e.policy_status().pack.unwrap().digest, before.digest, "the running pack stays");
    assert_eq!(e.policy_status().refused.map(|r| r.version), Some(Some(2)));
    let refused = events(&e, "policy_refused");
    assert_eq!(refused.last().map(|r| r["pack_version"].clone()), Some(serde_json::json!(2)), "{refused:?}");
}
