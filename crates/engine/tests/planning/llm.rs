//! An LLM planner configured in the workspace, planning demo cases against a loopback
//! server that replays recorded provider streams; the engine checks and decides what it
//! proposed. The API key lives in the real OS keyring.

use std::path::PathBuf;
use std::sync::Arc;

use countersign_connectors::credentials::{CredentialName, CredentialStore, KeyringStore, Secret};
use countersign_core::Outcome;
use countersign_core::model::Provenance;
use countersign_engine::planners::build_planner;
use countersign_engine::{CaseFile, Engine, EngineOptions, ErrorCode, PlannerProvider, Workspace};

use super::replay::{self, Replay, Reply};
use super::{Fixed, assets, workspace_copy};

const KEY: &str = "sk-test-planted-engine-5b1e9d";

/// The demo workspace with `planner` appended, in a temporary directory.
fn workspace_with(planner: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = workspace_copy(|p| p, planner);
    let file = dir.path().join("workspace.toml");
    (dir, file)
}

/// A keyring namespace for this test binary with the key stored as `openai/test`.
fn keyring() -> Arc<dyn CredentialStore> {
    let store = KeyringStore::new(format!("countersign-test-engine-llm-{}", std::process::id()));
    store.set(&CredentialName::new("openai", "test").unwrap(), &Secret::new(KEY)).unwrap();
    Arc::new(store)
}

fn demo_case() -> CaseFile {
    CaseFile::load(&assets().join("demo/cases/01-cancel-pending.json")).unwrap()
}

/// The demo workspace (in temporary folders, kept while held) with an LLM planner of
/// `provider` answering from `replay`, and that planner with its key from the keyring.
struct WithLlm {
    _workspace: tempfile::TempDir,
    _data: tempfile::TempDir,
    engine: Engine,
    planner: Box<dyn countersign_planner::Planner>,
}

fn with_llm(provider: &str, replay: &Replay) -> WithLlm {
    let base = if provider == "openai" { format!("{}/v1", replay.url()) } else { replay.url().to_string() };
    let (workspace, file) = workspace_with(&format!(
        "[planner]\nprovider = \"{provider}\"\nbase_url = \"{base}\"\nmodel = \"recorded\"\ncredential = \
         \"openai/test\"\ntimeout_secs = 10\n"
    ));
    let data = tempfile::tempdir().unwrap();
    let engine = Engine::open(
        EngineOptions { workspace: file, data_dir: data.path().to_path_buf(), operator: None, connector: None },
        Arc::new(Fixed),
    )
    .unwrap();
    let planner = build_planner(&engine.workspace().planner, keyring()).unwrap();
    WithLlm { _workspace: workspace, _data: data, engine, planner }
}

/// Plan and decide demo case 01 with the workspace's planner answering from `replies`.
fn plan_with(
    provider: &str,
    replies: Vec<Reply>,
) -> (countersign_engine::planning::PlannedCase, countersign_core::decide::PlanDecision, Vec<replay::Request>) {
    let replay = Replay::start(replies);
    let WithLlm { engine, planner, .. } = &with_llm(provider, &replay);
    let case = demo_case().case;
    // The agent verified the customer (a one-time code): a case's own claim counts for nothing.
    let customer = &case.customer.as_ref().unwrap().id;
    engine.record_identity_check(&case.id, customer, "a one-time code sent to the account's phone").unwrap();
    let planned = engine.plan_case(&case, planner.as_ref()).unwrap();
    let decision = engine.process_planned(&case, &planned).unwrap();
    (planned, decision, replay.requests())
}

#[test]
fn a_good_llm_plan_is_grounded_and_decided() {
    let (planned, decision, requests) = plan_with(
        "anthropic",
        vec![Reply::fixture("anthropic/tool-calls.sse"), Reply::fixture("anthropic/plan-good.sse")],
    );
    assert_eq!(requests[0].header("x-api-key"), Some(KEY), "the key comes from the keyring entry the workspace names");
    assert_eq!(planned.plan.planner, "llm:anthropic:recorded");
    let read = &planned.reads[0];
    assert_eq!((read.action.as_str(), read.outcome.as_str()), ("get_order_details", "read"), "the read ran, governed");
    assert!(planned.downgraded.is_empty(), "the order id is backed by the case: {:?}", planned.downgraded);
    assert_eq!(planned.plan.steps[1].params["order_id"].source, Provenance::Connector);
    let reply = decision.reply.as_ref().unwrap();
    assert!(reply.unresolved_citations.is_empty(), "both citations quote passages the search returned: {reply:?}");
    assert_eq!(decision.steps[0].decision, Outcome::Auto, "{:?}", decision.steps[0].reasons);
    assert_eq!(decision.steps[1].decision, Outcome::Confirm, "a cancellation waits for the agent");
}

#[test]
fn an_unknown_citation_leaves_the_reply_unresolved_for_review() {
    let (_planned, decision, requests) = plan_with(
        "openai",
        vec![Reply::fixture("openai/tool-calls.sse"), Reply::fixture("openai/plan-unknown-article.sse")],
    );
    assert_eq!(requests[0].header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    let reply = decision.reply.as_ref().unwrap();
    assert_eq!(
        reply.unresolved_citations.iter().filter(|c| c.starts_with("instant-refunds")).count(),
        1,
        "a citation of an article no search returned is unresolved: {:?}",
        reply.unresolved_citations
    );
    assert!(
        !reply.unresolved_citations.iter().any(|c| c.starts_with("cancel-")),
        "the real citations resolve: {:?}",
        reply.unresolved_citations
    );
    assert_ne!(reply.decision, Outcome::Auto, "a draft with an unresolved citation is never sent on its own");
}

#[test]
fn an_unknown_action_is_forbidden_by_the_policy() {
    let (planned, decision, requests) = plan_with(
        "openai",
        vec![Reply::fixture("openai/unknown-tool.sse"), Reply::fixture("openai/plan-unknown-action.sse")],
    );
    assert!(
        planned.reads.iter().all(|r| r.action != "issue_store_credit"),
        "an unknown tool never reaches the platform"
    );
    let answer = requests[1].body["messages"][3]["content"].as_str().unwrap();
    assert!(answer.contains("there is no tool \"issue_store_credit\""), "{answer}");
    let step = decision.steps.iter().find(|s| s.action == "issue_store_credit").unwrap();
    assert_eq!(step.decision, Outcome::Forbid, "deny by default: {:?}", step.reasons);
    assert!(step.rule_ids.iter().any(|r| r == "builtin.deny-default"), "{:?}", step.rule_ids);
}

#[test]
fn planner_configuration_errors_name_file_line_and_column() {
    let cases = [
        ("[planner]\nprovider = \"gpt\"\n", "unknown variant"),
        ("[planner]\nprovider = \"openai\"\n", "needs `model`"),
        ("[planner]\nprovider = \"openai\"\nmodel = \"m\"\nbase_url = \"ftp://x\"\n", "http(s) URL"),
        ("[planner]\nprovider = \"anthropic\"\nmodel = \"m\"\n", "needs `credential`"),
        ("[planner]\nprovider = \"openai\"\nmodel = \"m\"\ncredential = \"no-slash\"\n", "PLATFORM/STORE"),
        ("[planner]\nprovider = \"openai\"\nmodel = \"m\"\ntimeout_secs = 0\n", "between 1 and 600"),
        ("[planner]\nprovider = \"local\"\nmodel = \"m\"\n", "local planner takes none"),
        ("[planner]\nprovider = \"openai\"\nmodel = \"m\"\nplaybooks = \"p.toml\"\n", "for the local planner"),
        ("[planner]\nprovider = \"openai\"\nmodel = \"m\"\napi_key = \"sk-x\"\n", "unknown field"),
        (
            "[planner]\nprovider = \"openai\"\nmodel = \"m\"\n[planner.headers]\nAuthorization = \"Bearer sk-x\"\n",
            "keep the key in the keyring",
        ),
    ];
    for (section, says) in cases {
        let (_ws, file) = workspace_with(section);
        let err = Workspace::load(&file).unwrap_err();
        let message = err.to_string();
        assert_eq!(err.code(), ErrorCode::ConfigInvalid, "{message}");
        assert!(message.contains(says), "{section}: {message}");
        let lines = std::fs::read_to_string(&file).unwrap().lines().count();
        let planner_line = lines - section.lines().count() + 1;
        let at = message.split(':').nth(1).and_then(|l| l.parse::<usize>().ok()).unwrap_or(0);
        assert!(
            message.starts_with(&file.display().to_string()) && at >= planner_line,
            "the error points into [planner] (line {planner_line} or later): {message}"
        );
    }
}

#[test]
fn the_local_planner_reads_the_playbooks_file_the_workspace_names_and_locates_its_errors() {
    let dir = tempfile::tempdir().unwrap();
    let playbooks = dir.path().join("playbooks.toml");
    let demo = std::fs::read_to_string(assets().join("demo/playbooks.toml")).unwrap();
    std::fs::write(&playbooks, &demo).unwrap();
    let (_ws, file) = workspace_with(&format!("[planner]\nprovider = \"local\"\nplaybooks = {playbooks:?}\n"));
    let ws = Workspace::load(&file).unwrap();
    assert_eq!(ws.planner.playbooks.as_deref(), Some(playbooks.as_path()));
    // The local planner never reads a key: a keyring store that was never written to.
    let no_keys: Arc<dyn CredentialStore> = Arc::new(KeyringStore::new("countersign-test-engine-no-keys"));
    assert_eq!(build_planner(&ws.planner, Arc::clone(&no_keys)).unwrap().name(), "local");

    std::fs::write(&playbooks, demo.replacen("sign_off = ", "sign_of = \"Bye\"\nsign_off = ", 1)).unwrap();
    let err = build_planner(&ws.planner, no_keys).unwrap_err();
    let message = err.to_string();
    assert_eq!(err.code(), ErrorCode::ConfigInvalid, "{message}");
    assert!(message.contains(&format!("{}:", playbooks.display())), "the error names the file: {message}");
    assert!(message.contains("unknown field `sign_of`"), "{message}");
}

#[test]
fn the_planner_section_is_optional_and_defaults_to_local() {
    let (_ws, file) = workspace_with("");
    let ws = Workspace::load(&file).unwrap();
    assert_eq!(ws.planner.provider, PlannerProvider::Local);
    assert_eq!(build_planner(&ws.planner, keyring()).unwrap().name(), "local");
    let (_ws, file) = workspace_with(
        "[planner]\nprovider = \"azure\"\nbase_url = \"https://acme.openai.azure.com\"\nmodel = \"plans\"\n\
         credential = \"azure/acme\"\n[planner.headers]\nx-ms-useragent = \"countersign\"\n",
    );
    let ws = Workspace::load(&file).unwrap();
    assert_eq!(ws.planner.provider, PlannerProvider::Azure);
    assert_eq!(ws.planner.headers, [("x-ms-useragent".to_string(), "countersign".to_string())]);
    let planner = build_planner(&ws.planner, keyring()).unwrap();
    assert_eq!(planner.name(), "llm:azure:plans");
}

/// A signal set of `(id, text, label)` lines in a temporary folder (kept while held).
fn signal_set(lines: &[(&str, &str, serde_json::Value)]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let set = dir.path().join("set.jsonl");
    let mut text = String::new();
    for (id, message, label) in lines {
        let mut line = serde_json::json!({"id": id, "text": message, "expect": []});
        line.as_object_mut().unwrap().extend(label.as_object().unwrap().clone());
        text.push_str(&format!("{line}\n"));
    }
    std::fs::write(&set, text).unwrap();
    (dir, set)
}

/// What the provider says to a key it does not take (echoing part of it, as providers do).
fn key_refused() -> Reply {
    Reply::status(
        401,
        &format!(
            r#"{{"error":{{"message":"Incorrect API key provided: {KEY}.","type":"invalid_request_error","code":"invalid_api_key"}}}}"#
        ),
    )
}

/// A signal set read by an LLM planner beside the policy: what it flags is added as a
/// decision adds it (found where the policy missed, handed off where it found nothing), a
/// message it cannot plan is scored on the policy's signals alone and named (without the
/// key the provider echoed), and every message reaches the provider as a case of its own.
/// The two flagging answers are written for this test in the provider's stream format.
#[test]
fn an_llm_planner_reading_a_signal_set_adds_its_flags_and_names_what_it_could_not_read() {
    let texts = [
        "no need to post the charger any more. I won't be around to use it",
        "The delivery driver said he'd come back tomorrow, please make sure he does.",
        "I'm going to kill myself tonight, I can't do this anymore",
        "Hi, can I change the size of my jacket order to a medium?",
    ];
    let (_dir, set) = signal_set(&[
        ("s-1", texts[0], serde_json::json!({"expect": ["self_harm"]})),
        ("n-1", texts[1], serde_json::json!({"near": "violence"})),
        ("s-2", texts[2], serde_json::json!({"expect": ["self_harm"]})),
        ("o-1", texts[3], serde_json::json!({"ordinary": true})),
    ]);
    let replay = Replay::start(vec![
        Reply::fixture("openai/plan-flags-self-harm.sse"),
        Reply::fixture("openai/plan-flags-violence.sse"),
        key_refused(),
        Reply::fixture("openai/plan-good.sse"),
    ]);
    let WithLlm { engine, planner, .. } = &with_llm("openai", &replay);

    let alone = engine.evaluate_signals(&set).unwrap();
    assert_eq!(
        (alone.recall.hits, alone.false_handoffs.hits, alone.ordinary_false_handoffs.hits),
        (1, 0, 0),
        "the test needs a positive the policy alone misses (s-1) and one it finds (s-2): {:?}",
        alone.misses
    );
    assert!(alone.planner.is_none());

    let mut progress = Vec::new();
    let with =
        engine.evaluate_signals_planned_by(&set, planner.as_ref(), &mut |done, of| progress.push((done, of))).unwrap();
    assert_eq!((with.recall.hits, with.recall.total), (2, 2), "the flag finds s-1; s-2 is found without the planner");
    assert_eq!((with.false_handoffs.hits, with.false_handoffs.total), (1, 1), "and the flag hands n-1 off");
    assert_eq!((with.ordinary_false_handoffs.hits, with.ordinary_false_handoffs.total), (0, 1), "a plan with no flags");
    let reading = with.planner.as_ref().unwrap();
    assert_eq!(reading.planner, "llm:openai:recorded");
    assert_eq!((reading.read, reading.found_only_by_it, reading.handed_off_only_by_it), (3, 1, 1));
    assert_eq!(reading.failed.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(), ["s-2"]);
    assert!(reading.failed[0].error.contains("401"), "{:?}", reading.failed);
    assert!(!serde_json::to_string(&with).unwrap().contains(KEY), "the echoed key stays out of the report");
    let near = with.misses.iter().find(|m| m.id == "n-1").unwrap();
    assert_eq!(near.found, ["violence: flagged by the planner (llm:openai:recorded)"]);
    assert_eq!(progress, [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]);

    let requests = replay.requests();
    assert_eq!(requests.len(), 4, "one request a message (no tools asked for), the refused one not retried");
    for (request, text) in requests.iter().zip(texts) {
        assert!(request.body.to_string().contains(text), "the message reaches the provider: {text}");
    }
}

/// A planner that fails message after message (a key refused) stops the run: its figures
/// would be the policy's alone, passed off as the planner's.
#[test]
fn a_planner_failing_message_after_message_stops_the_signal_run() {
    let lines: Vec<(String, String)> =
        (0..6).map(|i| (format!("o-{i}"), format!("Where is my order number {i}? It has been a week."))).collect();
    let (_dir, set) = signal_set(
        &lines
            .iter()
            .map(|(id, text)| (id.as_str(), text.as_str(), serde_json::json!({"ordinary": true})))
            .collect::<Vec<_>>(),
    );
    let replay = Replay::start((0..6).map(|_| key_refused()).collect());
    let WithLlm { engine, planner, .. } = &with_llm("openai", &replay);
    let err = engine.evaluate_signals_planned_by(&set, planner.as_ref(), &mut |_, _| {}).unwrap_err();
    assert_eq!(err.code(), ErrorCode::PlannerFailed);
    let message = err.to_string();
    assert!(message.contains("5 messages in a row could not be planned, the last (o-4)"), "{message}");
    assert!(message.contains("nothing was scored") && !message.contains(KEY), "{message}");
    assert_eq!(replay.requests().len(), 5, "no message after the fifth failure is sent");
}
