//! Face parity: one scenario — plan, countersign and run, plan again, pause, verify,
//! export — worked once through the `countersign` binary and once through the desktop
//! app's command layer (its real invoke handler in a mock Tauri app, called over IPC the
//! way the webview calls it, under the app's own capability), each on its own data root. Both logs must hold the same
//! evidence, ids and times aside, because both faces are adapters over the same engine.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use countersign_desktop::state::{AppState, Locations, Shell};
use countersign_host::DataRoot;
use serde_json::{Value, json};
use tauri::Manager;
use tauri::test::{INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder};

const BIN: &str = env!("CARGO_BIN_EXE_countersign");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The demo workspace (the demo seller center on loopback), with one case in its inbox
/// that carries no recorded plan, so both faces plan it with the workspace's planner.
fn workspace(dir: &Path) -> PathBuf {
    let demo = repo().join("assets/demo").canonicalize().unwrap();
    let text = std::fs::read_to_string(demo.join("workspace.toml")).unwrap();
    // What both faces must agree on is the evidence of one countersigned step; how the
    // customer is verified is not this test's subject, so here the cancel needs no
    // verification (an agent would record one: `countersign verify-identity`).
    let policy = std::fs::read_to_string(demo.join("policy.toml")).unwrap();
    let cancel = "[actions.cancel_pending_order]\nchanges_order_status = true\nidentity = \"matched\"\n";
    assert!(policy.contains(cancel), "the demo policy's cancel changed: update this test");
    let policy = policy.replace(cancel, "[actions.cancel_pending_order]\nchanges_order_status = true\n");
    std::fs::write(dir.join("policy.toml"), policy).unwrap();
    let text = text
        .replace("knowledge = \"../knowledge\"", &format!("knowledge = {:?}", demo.join("../knowledge")))
        .replace("catalog = \"catalog.toml\"", &format!("catalog = {:?}", demo.join("catalog.toml")))
        .replace("seed = \"../demo-store\"", &format!("seed = {:?}", demo.join("../demo-store")))
        .replace("playbooks = \"playbooks.toml\"", &format!("playbooks = {:?}", demo.join("playbooks.toml")));
    std::fs::create_dir_all(dir.join("cases")).unwrap();
    std::fs::copy(demo.join("example-case.json"), dir.join("cases/example-case.json")).unwrap();
    std::fs::write(dir.join("workspace.toml"), text).unwrap();
    dir.join("workspace.toml")
}

/// `countersign` on `ws` with its data under `root`.
fn cli(ws: &Path, root: &Path, args: &[&str]) -> Value {
    let out = Command::new(BIN)
        .arg("--workspace")
        .arg(ws)
        .arg("--data-dir")
        .arg(root)
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "countersign {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// The desktop app's command layer over the demo workspace with its data under `root`.
struct App {
    _app: tauri::App<MockRuntime>,
    webview: tauri::WebviewWindow<MockRuntime>,
}

impl App {
    fn open(ws: &Path, root: &Path) -> App {
        let shell = Shell::default();
        let locations = Locations {
            assets: repo().join("assets"),
            workspace: Some(ws.to_path_buf()),
            root: DataRoot::named(root),
            log_dir: root.join("logs"),
            live_demo: true,
        };
        shell.open(&locations);
        let app = mock_builder()
            .manage(shell)
            .invoke_handler(countersign_desktop::invoke_handler())
            .build(countersign_desktop::context())
            .unwrap();
        let webview = tauri::WebviewWindowBuilder::new(&app, "main", Default::default()).build().unwrap();
        App { _app: app, webview }
    }

    fn call(&self, cmd: &str, args: Value) -> Value {
        let request = tauri::webview::InvokeRequest {
            cmd: cmd.into(),
            callback: tauri::ipc::CallbackFn(0),
            error: tauri::ipc::CallbackFn(1),
            // The app's own origin on Linux (its UI is served over the `tauri` scheme).
            url: "tauri://localhost".parse().unwrap(),
            body: tauri::ipc::InvokeBody::Json(args),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        };
        match get_ipc_response(&self.webview, request) {
            Ok(body) => body.deserialize::<Value>().unwrap(),
            Err(e) => panic!("the app's {cmd} failed: {e}"),
        }
    }

    fn state(&self) -> &AppState {
        self.webview.state::<Shell>().inner().get().unwrap()
    }
}

/// The progress channel the webview passes to long commands.
fn channel() -> Value {
    json!("__CHANNEL__:7")
}

/// Every event of the log under `root`, read back by the CLI, with what legitimately
/// differs between two runs (times, durations, pause ids, paths, the hashes that cover them)
/// replaced by placeholders.
fn evidence(ws: &Path, root: &Path) -> Vec<Value> {
    let events = cli(ws, root, &["log", "list"]);
    events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let mut e =
                json!({"kind": e["kind"], "actor": e["actor"], "case_id": e["case_id"], "payload": e["payload"]});
            scrub(&mut e, "");
            e
        })
        .collect()
}

fn scrub(v: &mut Value, key: &str) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                scrub(x, k);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| scrub(x, key)),
        Value::String(s) => {
            let time = s.len() >= 20 && s.as_bytes().get(4) == Some(&b'-') && s.contains('T');
            // A decision's inputs digest covers the time it was decided.
            let differs = matches!(key, "path" | "head" | "signature" | "idempotency_key" | "digest")
                || (key == "id" && s.starts_with("pause-"))
                || key == "pause_id";
            if time || differs {
                *s = format!("<{key}>");
            }
            if s.starts_with("http://127.0.0.1:") {
                *s = "<demo store>".into();
            }
        }
        // How long a platform call took.
        Value::Number(_) if key == "duration_ms" => *v = Value::String("<duration_ms>".into()),
        _ => {}
    }
}

#[test]
fn the_cli_and_the_apps_commands_leave_the_same_evidence() {
    let (ws_dir, cli_root, app_root) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ws = workspace(ws_dir.path());
    let super_cli = cli;
    let cli = |args: &[&str]| cli(&ws, cli_root.path(), args);
    let case = ws_dir.path().join("cases/example-case.json");
    let case_id = serde_json::from_str::<Value>(&std::fs::read_to_string(&case).unwrap()).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let case = case.to_str().unwrap();

    // 1. Plan: the workspace's planner plans the case, what may run alone runs.
    let ran = cli(&["run", "--case", case]);
    let app = App::open(&ws, app_root.path());
    let view = app.call("open_case", json!({"caseId": case_id, "onProgress": channel()}));
    let plan_id = ran["decision"]["plan_id"].as_str().unwrap().to_string();
    assert_eq!(view["plan_id"], plan_id.as_str(), "both faces planned the same plan");
    let waiting: Vec<String> = ran["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["state"] == "waiting")
        .map(|s| s["step_id"].as_str().unwrap().to_string())
        .collect();
    assert!(!waiting.is_empty(), "the scenario needs a step to countersign: {ran}");

    // 2. Countersign the first waiting step; it runs at once.
    cli(&["review", "approve", &plan_id, &waiting[0], "--reason", "customer confirmed", "--run"]);
    app.call(
        "review_step",
        json!({"caseId": case_id, "planId": plan_id, "stepId": waiting[0], "verdict": "approve",
               "reason": "customer confirmed", "lead": null, "onProgress": channel()}),
    );

    // 3. Plan again over the changed platform data.
    cli(&["run", "--case", case]);
    app.call("replan_case", json!({"caseId": case_id, "onProgress": channel()}));

    // 4. Pause an action.
    cli(&["pause", "set", "--scope", "action", "--value", "refund_partial", "--reason", "audit"]);
    app.call("pause_set", json!({"scope": "action", "value": "refund_partial", "reason": "audit"}));

    // 5. Verify, then export a bundle (which signs a checkpoint first).
    let verified = cli(&["log", "verify"]);
    assert_eq!(verified["ok"], true, "{verified}");
    let v = app.call("log_verify", json!({}));
    assert_eq!(v["ok"], true, "{v}");
    cli(&["log", "export", cli_root.path().join("bundle").to_str().unwrap()]);
    let exported = app.call("log_export", json!({}));
    assert_eq!(exported["verified"], true, "{exported}");

    let data_dir = app.state().info.data_dir.clone();
    drop(app);
    // The faces share a workspace's folder: the CLI on the app's data root sees the app's
    // pause (and so stops on it), and its log.
    let pauses = super_cli(&ws, app_root.path(), &["pause", "list"]);
    assert_eq!(pauses.as_array().map(Vec::len), Some(1), "the app's pause, seen by the CLI: {pauses}");
    assert_eq!(
        PathBuf::from(data_dir),
        app_root.path().join("demo"),
        "the app keeps the workspace's data where the CLI does"
    );

    let (from_cli, from_app) = (evidence(&ws, cli_root.path()), evidence(&ws, app_root.path()));
    for (i, (c, a)) in from_cli.iter().zip(&from_app).enumerate() {
        assert_eq!(c, a, "event {} differs between the faces", i + 1);
    }
    assert_eq!(from_cli.len(), from_app.len(), "the same number of events");
    let kinds: Vec<&str> = from_cli.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    for kind in
        ["plan_proposed", "decided", "review_decided", "step_finished", "pause_changed", "checkpoint", "export_made"]
    {
        assert!(kinds.contains(&kind), "the scenario records {kind}: {kinds:?}");
    }
}
