//! Admin commands as an admin runs them: keys (file and OS keyring), signed packs,
//! signed releases, device checkpoints; exit codes 0 ok, 1 refused, 2 usage.

use std::path::Path;
use std::process::{Command, Output};

use super::{BIN, code, cs, failed_saying, repo, stderr, stdout_json};

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `countersign` with a keyring namespace of its own.
fn cs_keyring(service: &str, args: &[&str]) -> Output {
    Command::new(BIN).env("COUNTERSIGN_KEYRING_SERVICE", service).args(args).output().unwrap()
}

fn keygen_file(dir: &Path, name: &str) -> (String, String) {
    let key = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    let o = cs(
        dir,
        &["admin", "keygen", "--out", key.to_str().unwrap(), "--pub", public.to_str().unwrap(), "--label", name],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let secret = std::fs::read_to_string(&key).unwrap();
    let seed =
        secret.lines().find(|l| l.starts_with("countersign-ed25519-secret-key")).unwrap().split(' ').nth(1).unwrap();
    assert!(!out(&o).contains(seed) && !stderr(&o).contains(seed), "the secret key is never printed");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600,
            "a key file only its owner reads"
        );
    }
    (key.to_str().unwrap().to_string(), public.to_str().unwrap().to_string())
}

#[test]
fn a_pack_signed_with_a_key_file_verifies_only_against_that_key_and_intact() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, public) = keygen_file(d, "ops");
    let pack = d.join("pack");
    let source = repo().join("assets/demo/pack-source.toml");
    let o = cs(d, &["policy", "sign", source.to_str().unwrap(), "--out", pack.to_str().unwrap(), "--key", &key]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let p = pack.to_str().unwrap();

    let o = cs(d, &["policy", "verify", p, "--json"]);
    assert_eq!(code(&o), 1, "a key this build does not bundle is not trusted");
    assert_eq!(stdout_json(&o)["refusal"]["code"], "unknown_key");

    let o = cs(d, &["policy", "verify", p, "--trust", &public, "--json"]);
    assert_eq!(code(&o), 0, "{}", out(&o));
    assert_eq!(stdout_json(&o)["pack"]["id"], "demo-retail");

    // Signing into a directory that holds a pack is refused.
    let o = cs(d, &["policy", "sign", source.to_str().unwrap(), "--out", p, "--key", &key]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));

    let policy = pack.join("policy.toml");
    let text = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(&policy, text.replacen("decision = \"confirm\"", "decision = \"auto\"\n", 1)).unwrap();
    let o = cs(d, &["policy", "verify", p, "--trust", &public]);
    assert_eq!(code(&o), 1);
    assert!(out(&o).contains("REFUSED (tampered)") && out(&o).contains("policy.toml"), "{}", out(&o));

    std::fs::write(&policy, text).unwrap();
    std::fs::write(pack.join("extra.toml"), "[[rules]]\n").unwrap();
    let o = cs(d, &["policy", "verify", p, "--trust", &public]);
    assert_eq!(code(&o), 1, "a file beside a signed pack that its manifest does not list is refused");
    assert!(out(&o).contains("REFUSED (unlisted_file)") && out(&o).contains("extra.toml"), "{}", out(&o));

    std::fs::remove_file(pack.join("extra.toml")).unwrap();
    std::fs::remove_file(pack.join("pack.sig")).unwrap();
    let o = cs(d, &["policy", "verify", p, "--trust", &public]);
    assert_eq!(code(&o), 1);
    assert!(out(&o).contains("REFUSED (unsigned)"), "{}", out(&o));
}

#[test]
fn the_committed_demo_pack_verifies_against_the_bundled_keys() {
    let dir = tempfile::tempdir().unwrap();
    let o = cs(dir.path(), &["policy", "verify", repo().join("assets/demo-pack").to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}{}", out(&o), stderr(&o));
    let ws = repo().join("assets/demo/workspace-signed.toml");
    let o = Command::new(BIN)
        .args(["--workspace", ws.to_str().unwrap(), "--data-dir", dir.path().to_str().unwrap(), "policy", "status"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(out(&o).starts_with("signed pack demo-retail v26"), "{}", out(&o));
    // The demo workspace itself is dev mode, and says so.
    let o = cs(dir.path().join("dev").as_path(), &["policy", "status"]);
    assert!(out(&o).starts_with("DEV MODE"), "{}", out(&o));
}

#[test]
fn admin_keys_in_the_os_keyring_sign_packs_and_are_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let service = format!("countersign-test-admin-{}", std::process::id());
    let public = d.join("admin.pub");
    let o =
        cs_keyring(&service, &["admin", "keygen", "--name", "release", "--pub", public.to_str().unwrap(), "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout_json(&o)["secret_stored_in"].as_str().unwrap().starts_with("keyring:"));
    let again = cs_keyring(&service, &["admin", "keygen", "--name", "release"]);
    assert_eq!(code(&again), 1, "a key already in the keyring is never overwritten");

    let pack = d.join("pack");
    let source = repo().join("assets/demo/pack-source.toml");
    let o = cs_keyring(
        &service,
        &["policy", "sign", source.to_str().unwrap(), "--out", pack.to_str().unwrap(), "--key-name", "release"],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = cs_keyring(&service, &["policy", "verify", pack.to_str().unwrap(), "--trust", public.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", out(&o));
    let o = cs_keyring(
        &service,
        &["policy", "sign", source.to_str().unwrap(), "--out", d.join("p2").to_str().unwrap(), "--key-name", "nobody"],
    );
    failed_saying(&o, 1, "no admin key named \"nobody\"");
}

#[test]
fn a_signed_release_verifies_and_every_change_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, public) = keygen_file(d, "rel");
    let dist = d.join("dist");
    std::fs::create_dir(&dist).unwrap();
    std::fs::write(dist.join("countersign_0.1.0_amd64.deb"), b"not really a deb").unwrap();
    std::fs::write(dist.join("countersign_0.1.0_amd64.deb.sig"), b"updater signature").unwrap();
    let p = dist.to_str().unwrap();
    let o = cs(d, &["admin", "sign-release", p, "--key", &key]);
    assert_eq!(code(&o), 0, "{}{}", out(&o), stderr(&o));
    let sums = std::fs::read_to_string(dist.join("SHA256SUMS")).unwrap();
    assert_eq!(sums.lines().count(), 2, "{sums}");

    let o = cs(d, &["admin", "verify-release", p, "--trust", &public]);
    assert_eq!(code(&o), 0, "{}", out(&o));
    let o = cs(d, &["admin", "verify-release", p, "--json"]);
    assert_eq!(code(&o), 1, "not signed by a bundled key");
    assert!(stdout_json(&o)["problems"][0].as_str().unwrap().starts_with("unknown_key:"));

    std::fs::write(dist.join("countersign_0.1.0_amd64.deb"), b"not really a deb!").unwrap();
    std::fs::write(dist.join("extra.sh"), b"echo hi").unwrap();
    let o = cs(d, &["admin", "verify-release", p, "--trust", &public, "--json"]);
    assert_eq!(code(&o), 1);
    let problems: Vec<String> =
        stdout_json(&o)["problems"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    assert!(problems.iter().any(|p| p.starts_with("mismatch: countersign_0.1.0_amd64.deb")), "{problems:?}");
    assert!(problems.iter().any(|p| p.starts_with("unlisted_file: extra.sh")), "{problems:?}");

    std::fs::write(dist.join("SHA256SUMS"), sums.replacen("  ", "  x", 1)).unwrap();
    let o = cs(d, &["admin", "verify-release", p, "--trust", &public]);
    assert!(out(&o).contains("bad_signature"), "{}", out(&o));
}

#[test]
fn admin_usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(code(&cs(dir.path(), &["policy", "sign", "x.toml"])), 2, "--out is required");
    assert_eq!(code(&cs(dir.path(), &["admin", "keygen", "--out", "a", "--name", "b"])), 2, "one destination");
    assert_eq!(code(&cs(dir.path(), &["admin", "verify-release"])), 2);
}

#[test]
fn log_checkpoint_signs_the_head_and_verify_checks_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(code(&cs(d, &["demo", "--json"])), 0);
    let o = cs(d, &["log", "checkpoint", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let device = stdout_json(&o)["device_key_id"].as_str().unwrap().to_string();
    let o = cs(d, &["log", "verify"]);
    assert_eq!(code(&o), 0, "{}", out(&o));
    assert!(out(&o).contains(&format!("device {device}")), "{}", out(&o));

    let bundle = d.join("bundle");
    assert_eq!(code(&cs(d, &["log", "export", bundle.to_str().unwrap()])), 0);
    let o = cs(d, &["log", "verify", "--bundle", bundle.to_str().unwrap(), "--json"]);
    assert_eq!(code(&o), 0, "{}", out(&o));
    assert_eq!(
        stdout_json(&o)["checkpoints"]["checkpoints"].as_array().unwrap().len(),
        2,
        "one on demand, one on export"
    );
    // verify.py still checks the chain with the standard library alone.
    let py = Command::new("python3").arg(bundle.join("verify.py")).output().unwrap();
    assert_eq!(code(&py), 0, "{}", out(&py));
    assert!(out(&py).starts_with("OK "), "{}", out(&py));
}

#[test]
fn release_script_signs_whatever_artifacts_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, public) = keygen_file(d, "ship");
    let a = d.join("Countersign_0.1.0_amd64.deb");
    let b = d.join("Countersign_0.1.0_amd64.deb.sig");
    std::fs::write(&a, b"deb bytes").unwrap();
    std::fs::write(&b, b"minisign signature").unwrap();
    let dist = d.join("dist");
    let run = |extra: &[&str]| {
        Command::new("bash")
            .arg(repo().join("scripts/release.sh"))
            .args(["--out", dist.to_str().unwrap(), "--bin", BIN, "--key", &key])
            .args(extra)
            .output()
            .unwrap()
    };
    let o = run(&["--trust", &public, a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}{}", out(&o), stderr(&o));
    let mut names: Vec<String> =
        std::fs::read_dir(&dist).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert_eq!(
        names,
        ["Countersign_0.1.0_amd64.deb", "Countersign_0.1.0_amd64.deb.sig", "SHA256SUMS", "SHA256SUMS.sig"]
    );
    // The sums are in sha256sum's own format.
    let check = Command::new("sha256sum").arg("-c").arg("SHA256SUMS").current_dir(&dist).output().unwrap();
    assert_eq!(code(&check), 0, "{}", out(&check));
    // A non-empty output directory is refused; so is a missing key.
    assert_eq!(code(&run(&[a.to_str().unwrap()])), 1);
    let o = Command::new("bash").arg(repo().join("scripts/release.sh")).args(["--out", "x"]).output().unwrap();
    assert_eq!(code(&o), 2);
}

/// A pack source in `dir` with `policy` as its policy, the demo's roster and catalog.
fn pack_source(dir: &Path, policy: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for f in ["pack-source.toml", "roster.toml", "catalog.toml"] {
        std::fs::copy(repo().join("assets/demo").join(f), dir.join(f)).unwrap();
    }
    std::fs::write(dir.join("policy.toml"), policy).unwrap();
    dir.join("pack-source.toml")
}

#[test]
fn a_draft_is_simulated_over_the_recorded_decisions_and_a_pack_signed_after_it_names_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = d.join("data");
    // An agent's afternoon: the split-refunds case, its customer verified, its three refunds
    // decided (they wait for the agent: a plan file vouches for none of its amounts).
    let case = repo().join("assets/demo/cases/06-split-refunds.json");
    super::verify_customer(|a| cs(&data, a), &case);
    let o = cs(&data, &["--json", "run", "--case", case.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    // The draft refuses every partial refund.
    let demo = std::fs::read_to_string(repo().join("assets/demo/policy.toml")).unwrap();
    let draft = format!(
        "{demo}\n[[rules]]\nid = \"refund.never\"\nreason = \"No partial refunds\"\nactions = [\"refund_partial\"]\ndecision = \"forbid\"\n"
    );
    let source = pack_source(&d.join("src"), &draft);
    let policy = d.join("src/policy.toml");
    let report = d.join("simulation.json");
    let o = cs(&data, &["--json", "policy", "simulate", policy.to_str().unwrap(), "--out", report.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let simulated = stdout_json(&o);
    let digest = simulated["digest"].as_str().unwrap().to_string();
    assert_eq!(simulated["report"]["changed"], 3, "{simulated:#}");
    let refunds = &simulated["report"]["actions"][0];
    assert_eq!(refunds["action"], "refund_partial");
    assert_eq!(
        (refunds["moves"][0]["from"].as_str(), refunds["moves"][0]["to"].as_str()),
        (Some("confirm"), Some("forbid"))
    );
    assert!(report.exists());

    let o = cs(&data, &["policy", "simulate", policy.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let text = out(&o);
    assert!(text.contains("would change") && text.contains("refund_partial") && text.contains(&digest), "{text}");
    assert!(text.contains("confirm → forbid") && text.contains("rule.refund.never"), "the moves are shown: {text}");

    // A draft that does not parse is named with its line and column.
    let broken = d.join("broken.toml");
    std::fs::write(&broken, demo.replacen("[[rules]]", "[[rules]\n", 1)).unwrap();
    let o = cs(&data, &["policy", "simulate", broken.to_str().unwrap()]);
    assert_eq!(code(&o), 1);
    let located = format!("{}:", broken.display());
    let rest = stderr(&o).split_once(&located).map(|(_, r)| r.to_string()).unwrap_or_default();
    assert!(rest.split(':').take(2).all(|n| n.parse::<u32>().is_ok()), "file:line:column: {}", stderr(&o));

    // Signed after it: the manifest names the report, and every face says so.
    let (key, public) = keygen_file(d, "ops");
    let sign = |into: &Path, report: Option<&Path>| {
        let mut args = vec!["policy", "sign", source.to_str().unwrap(), "--out", into.to_str().unwrap(), "--key", &key];
        if let Some(r) = report {
            args.extend(["--simulation", r.to_str().unwrap()]);
        }
        cs(d, &args)
    };
    let pack = d.join("pack");
    let o = sign(&pack, Some(&report));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(out(&o).contains(&format!("signed after a simulation ({digest})")), "{}", out(&o));
    let o = cs(d, &["policy", "verify", pack.to_str().unwrap(), "--trust", &public, "--json"]);
    assert_eq!(stdout_json(&o)["pack"]["simulation"], digest.as_str());
    let manifest = std::fs::read_to_string(pack.join("pack.toml")).unwrap();
    assert!(
        manifest.contains("format = \"countersign-policy-pack/2\""),
        "a format older builds refuse by name: {manifest}"
    );

    // A report of another policy (the demo's own) is refused, and nothing is written.
    let other = d.join("other.json");
    let demo_policy = repo().join("assets/demo/policy.toml");
    let o = cs(&data, &["policy", "simulate", demo_policy.to_str().unwrap(), "--out", other.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let refused = d.join("refused");
    let o = sign(&refused, Some(&other));
    failed_saying(&o, 1, "not of the policy this pack signs");
    assert!(!refused.exists(), "nothing is written for a refused signing");

    // Signed without one, it says so.
    let blind = d.join("blind");
    let o = sign(&blind, None);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = cs(d, &["policy", "verify", blind.to_str().unwrap(), "--trust", &public]);
    assert!(out(&o).contains("signed WITHOUT a simulation"), "{}", out(&o));
    let manifest = std::fs::read_to_string(blind.join("pack.toml")).unwrap();
    assert!(manifest.contains("format = \"countersign-policy-pack/1\""), "{manifest}");
}

#[test]
fn approvals_given_at_once_are_rubber_stamps_and_only_a_lead_records_a_reversal() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let o = cs(&data, &["policy", "autonomy"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(out(&o).contains("No band has a decided step yet"), "{}", out(&o));
    // The split-refunds case's three refunds wait for the agent, who approves each at once.
    let case = repo().join("assets/demo/cases/06-split-refunds.json");
    super::verify_customer(|a| cs(&data, a), &case);
    let o = cs(&data, &["--json", "run", "--case", case.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let queue = stdout_json(&cs(&data, &["--json", "review", "list"]));
    let waiting = queue.as_array().unwrap();
    assert_eq!(waiting.len(), 3, "{queue:#}");
    for s in waiting {
        let o = cs(&data, &["review", "approve", s["plan_id"].as_str().unwrap(), s["step_id"].as_str().unwrap()]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    }
    let o = cs(&data, &["--json", "policy", "autonomy"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let a = stdout_json(&o);
    let counted: u64 = a["records"].as_array().unwrap().iter().map(|r| r["decisions"].as_u64().unwrap()).sum();
    let stamps: u64 = a["records"].as_array().unwrap().iter().map(|r| r["rubber_stamps"].as_u64().unwrap()).sum();
    assert_eq!((counted, stamps), (0, 3), "approved within the 10 s floor: {a:#}");
    assert_eq!(a["proposals"], serde_json::json!([]));
    let o = cs(&data, &["policy", "autonomy", "--save", "refund_partial/x", "--out", dir.path().to_str().unwrap()]);
    failed_saying(&o, 1, "no proposal");
    // Recording a reversal is a lead's, proven with their passphrase: a role claimed at the
    // seat is not proof.
    let (plan, step) = (waiting[0]["plan_id"].as_str().unwrap(), waiting[0]["step_id"].as_str().unwrap());
    let o = Command::new(BIN)
        .args(["--workspace", super::workspace().to_str().unwrap(), "--data-dir", data.to_str().unwrap()])
        .args(["--role", "team_lead", "review", "reverse", plan, step, "--reason", "the bank reversed it"])
        .args(["--as", "lead-demo"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(b"a guess\n")?;
            child.wait_with_output()
        })
        .unwrap();
    failed_saying(&o, 1, "lead-demo");
}
