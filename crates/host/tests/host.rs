//! The host as both faces use it: one data folder per workspace under one root, earlier
//! folders moved into place with their logs intact, and the demo seller center started
//! beside the engine. Real files, a real SQLite log, the real demo store on loopback.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use countersign_connectors::source::SourceKind;
use countersign_core::model::PauseScope;
use countersign_engine::{Engine, EngineOptions, LogFilter, SystemClock};
use countersign_host::{DataRoot, Options, open};
use countersign_test_support::demo::demo_workspace;

fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets")
}

fn snapshot() -> PathBuf {
    assets().join("demo/workspace-snapshot.toml")
}

fn options(workspace: PathBuf, root: DataRoot) -> Options {
    Options { workspace, root, operator_id: None, role: None }
}

/// A log written the way an earlier version wrote it: the engine opened on `dir` itself.
fn earlier_log(dir: &Path) -> usize {
    let engine = Engine::open(
        EngineOptions { workspace: snapshot(), data_dir: dir.to_path_buf(), operator: None, connector: None },
        std::sync::Arc::new(SystemClock),
    )
    .unwrap();
    engine.pause_set(PauseScope::Action, "refund_partial", "set before the move").unwrap();
    engine.log_list(&LogFilter::default()).unwrap().len()
}

fn data_moved(engine: &Engine) -> Vec<String> {
    engine
        .log_list(&LogFilter { kind: Some("data_moved".into()), ..LogFilter::default() })
        .unwrap()
        .into_iter()
        .map(|e| e.event.payload()["from"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_workspace_has_its_folder_under_the_root() {
    let root = tempfile::tempdir().unwrap();
    let a = open(options(snapshot(), DataRoot::named(root.path()))).unwrap();
    assert_eq!(a.data_dir, root.path().join("demo-snapshot"));
    assert!(a.data_dir.join("evidence.sqlite").is_file());
    a.engine.pause_set(PauseScope::Store, "acme-us", "seen by every face").unwrap();
    drop(a);
    // The same root and workspace, opened again (another face, another process): the
    // same folder, the same log, the pause in force.
    let b = open(options(snapshot(), DataRoot::named(root.path()))).unwrap();
    assert_eq!(b.engine.pauses().unwrap().len(), 1, "a pause set by one face stops the other");
    assert!(b.moved.is_none() && b.left_behind.is_none());
}

#[test]
fn a_folder_the_command_line_kept_files_in_directly_is_moved_into_place() {
    let root = tempfile::tempdir().unwrap();
    let events = earlier_log(root.path());
    let opened = open(options(snapshot(), DataRoot::named(root.path()))).unwrap();
    let dir = root.path().join("demo-snapshot");
    assert_eq!(opened.moved.as_ref().map(|m| (&m.from, &m.to)), Some((&root.path().to_path_buf(), &dir)));
    assert!(!root.path().join("evidence.sqlite").exists(), "the earlier log moved, not copied");
    let v = opened.engine.verify().unwrap();
    assert!(v.ok(), "the moved log still verifies: {v:?}");
    assert_eq!(v.chain.count as usize, events + 1, "every earlier event is there, and the move");
    assert_eq!(opened.engine.pauses().unwrap().len(), 1, "the earlier pause still applies");
    assert_eq!(data_moved(&opened.engine), [root.path().display().to_string()], "the move is evidence");
    drop(opened);
    let again = open(options(snapshot(), DataRoot::named(root.path()))).unwrap();
    assert!(again.moved.is_none(), "moved once");
    assert_eq!(data_moved(&again.engine).len(), 1);
}

#[test]
fn the_desktop_apps_earlier_folder_is_moved_into_the_default_root() {
    let base = tempfile::tempdir().unwrap();
    let earlier = base.path().join("app.countersign.desktop");
    let events = earlier_log(&earlier.join("demo-snapshot"));
    let root = DataRoot::default_at(base.path().join("countersign"), &earlier);
    let opened = open(options(snapshot(), root.clone())).unwrap();
    assert_eq!(opened.data_dir, base.path().join("countersign/demo-snapshot"));
    assert!(opened.moved.is_some() && !earlier.join("demo-snapshot").exists());
    let v = opened.engine.verify().unwrap();
    assert!(v.ok() && v.chain.count as usize == events + 1, "{v:?}");
    assert_eq!(opened.engine.pauses().unwrap().len(), 1);
}

#[test]
fn two_logs_of_one_workspace_are_never_merged() {
    let base = tempfile::tempdir().unwrap();
    let earlier = base.path().join("app.countersign.desktop");
    earlier_log(&earlier.join("demo-snapshot"));
    let new = earlier_log(&base.path().join("countersign/demo-snapshot"));
    let opened = open(options(snapshot(), DataRoot::default_at(base.path().join("countersign"), &earlier))).unwrap();
    assert!(opened.moved.is_none());
    assert_eq!(opened.left_behind, Some(earlier.join("demo-snapshot")), "the faces say where the other log is");
    assert!(earlier.join("demo-snapshot/evidence.sqlite").is_file(), "left where it was");
    assert_eq!(opened.engine.verify().unwrap().chain.count as usize, new);
}

#[test]
fn the_demo_workspace_runs_on_a_demo_store_the_host_starts() {
    let root = tempfile::tempdir().unwrap();
    let opened = open(options(assets().join("demo/workspace.toml"), DataRoot::named(root.path()))).unwrap();
    let url = opened.services.demo_store_url().expect("the host started the demo seller center");
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(opened.data_dir.join("demo-store.sqlite3").is_file(), "its database is in the workspace's folder");
    // The engine alone does not start one: a face goes through the host.
    let err = Engine::open(
        EngineOptions {
            workspace: assets().join("demo/workspace.toml"),
            data_dir: root.path().join("engine-alone"),
            operator: None,
            connector: None,
        },
        std::sync::Arc::new(SystemClock),
    )
    .unwrap_err();
    assert!(err.to_string().contains("countersign_host::open"), "{err}");
}

#[test]
fn a_named_folder_that_is_the_workspaces_own_is_used_in_place() {
    let root = tempfile::tempdir().unwrap();
    let own = root.path().join("demo-snapshot");
    let events = earlier_log(&own);
    // `--data-dir` pointing at the workspace's own folder, as the command line once taught.
    let opened = open(options(snapshot(), DataRoot::named(&own))).unwrap();
    assert_eq!(opened.data_dir, own, "used where it is");
    assert!(opened.moved.is_none() && !own.join("demo-snapshot").exists(), "never nested into itself");
    assert_eq!(opened.engine.verify().unwrap().chain.count as usize, events);
}

#[test]
fn another_workspaces_log_is_left_where_it_is() {
    let root = tempfile::tempdir().unwrap();
    earlier_log(root.path());
    // A workspace on another policy: the flat log in the folder is not its own.
    let ws = tempfile::tempdir().unwrap();
    let demo = assets().join("demo").canonicalize().unwrap();
    let policy = std::fs::read_to_string(demo.join("policy.toml")).unwrap().replacen(
        "id = \"demo-retail\"",
        "id = \"other-retail\"",
        1,
    );
    std::fs::write(ws.path().join("policy.toml"), policy).unwrap();
    let toml = std::fs::read_to_string(demo.join("workspace-snapshot.toml")).unwrap();
    let toml = toml
        .replace("id = \"demo-snapshot\"", "id = \"other\"")
        .replace("knowledge = \"../knowledge\"", &format!("knowledge = {:?}", demo.join("../knowledge")))
        .replace("cases = \"cases\"", &format!("cases = {:?}", demo.join("cases")))
        .replace("dataset = \"../demo-store\"", &format!("dataset = {:?}", demo.join("../demo-store")));
    std::fs::write(ws.path().join("workspace.toml"), toml).unwrap();
    let opened = open(options(ws.path().join("workspace.toml"), DataRoot::named(root.path()))).unwrap();
    assert_eq!(opened.engine.policy().id, "other-retail");
    assert!(opened.moved.is_none(), "another workspace's log is never taken");
    assert_eq!(opened.left_behind.as_deref(), Some(root.path()), "the faces say where it is");
    assert!(root.path().join("evidence.sqlite").is_file());
}

#[test]
fn a_move_cut_short_is_finished_and_recorded_at_the_next_start() {
    let root = tempfile::tempdir().unwrap();
    let events = earlier_log(root.path());
    // The earlier start staged the log and stopped before the last rename.
    let staging = root.path().join(".demo-snapshot.moving");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::write(staging.join(countersign_host::data::MOVED_FROM), root.path().display().to_string()).unwrap();
    std::fs::rename(root.path().join("evidence.sqlite"), staging.join("evidence.sqlite")).unwrap();
    let opened = open(options(snapshot(), DataRoot::named(root.path()))).unwrap();
    assert!(!staging.exists(), "the staged files reached their place");
    let v = opened.engine.verify().unwrap();
    assert!(v.ok() && v.chain.count as usize == events + 1, "the whole log, and the move: {v:?}");
    assert_eq!(data_moved(&opened.engine), [root.path().display().to_string()]);
    assert!(!opened.data_dir.join(countersign_host::data::MOVED_FROM).exists(), "the note goes once recorded");
}

/// A Zendesk source whose webhooks arrive at a loopback listener (its API is never
/// called here: a push only wakes a sync).
fn pushing_source(name: &str, listen: &str) -> countersign_connectors::source::Source {
    use countersign_connectors::credentials::{CredentialName, ProcessCredential, Secret};
    use countersign_connectors::source::zendesk::{Zendesk, ZendeskAuth};
    use countersign_connectors::source::{Source, SourceKind, SourceSettings};
    let api = CredentialName::new("zendesk", "acme").unwrap();
    let unused = std::sync::Arc::new(ProcessCredential::new(api.clone(), Secret::new("unused")));
    let adapter = Zendesk::new(name, "http://127.0.0.1:9", unused, api, ZendeskAuth::ApiToken).unwrap();
    let settings = SourceSettings {
        base_url: Some("http://127.0.0.1:9".into()),
        credential: Some("zendesk/acme".into()),
        poll_seconds: 60,
        push_listen: Some(listen.into()),
        push_secret: Some("zendesk/acme-webhook".into()),
        ..SourceSettings::new(
            name,
            SourceKind::Zendesk,
            ("acme", "acme-us", "zendesk"),
            countersign_core::model::Channel::Email,
        )
    };
    settings.check().unwrap();
    Source { settings, adapter: std::sync::Arc::new(adapter) }
}

#[test]
fn a_signed_webhook_wakes_its_source_and_anything_else_is_refused() {
    use countersign_connectors::credentials::{CredentialName, ProcessCredential, Secret};
    use countersign_connectors::source::push::{ZENDESK_SIGNATURE, ZENDESK_TIMESTAMP, sign_zendesk};
    let secret = "webhook-signing-secret-for-this-test";
    let keyring = std::sync::Arc::new(ProcessCredential::new(
        CredentialName::new("zendesk", "acme-webhook").unwrap(),
        Secret::new(secret),
    ));
    let pushed = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let heard = pushed.clone();
    let sources = [pushing_source("zendesk-acme", "127.0.0.1:0")];
    let listeners = countersign_host::push::listen(
        &sources,
        keyring,
        std::sync::Arc::new(move |s: &str| heard.lock().unwrap().push(s.to_owned())),
    )
    .unwrap();
    assert_eq!(listeners.len(), 1);
    let url = format!("http://{}/webhooks", listeners[0].addr());
    let client = countersign_http::blocking_client_builder().no_proxy().build().unwrap();
    let body = br#"{"type":"zen:event-type:ticket.comment_added","detail":{"id":"35436"}}"#.to_vec();
    let now = jiff::Timestamp::now();
    let ts = jiff::Timestamp::from_second(now.as_second()).unwrap().to_string();
    let send = |source: &str, sig: &str, body: Vec<u8>| {
        client
            .post(format!("{url}/{source}"))
            .header(ZENDESK_TIMESTAMP, &ts)
            .header(ZENDESK_SIGNATURE, sig)
            .body(body)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    let good = sign_zendesk(&Secret::new(secret), &ts, &body);
    assert_eq!(send("zendesk-acme", &good, body.clone()), 202);
    assert_eq!(*pushed.lock().unwrap(), vec!["zendesk-acme".to_owned()], "the source was woken once");

    let forged = sign_zendesk(&Secret::new("a guess"), &ts, &body);
    assert_eq!(send("zendesk-acme", &forged, body.clone()), 401);
    let mut changed = body.clone();
    changed.push(b' ');
    assert_eq!(send("zendesk-acme", &good, changed), 401, "the body is signed");
    assert_eq!(send("another-source", &good, body), 404);
    assert_eq!(pushed.lock().unwrap().len(), 1, "nothing else woke anything");
    drop(listeners);
    assert!(client.post(format!("{url}/zendesk-acme")).send().is_err(), "a dropped listener stops listening");
}

#[test]
fn webhooks_listen_on_loopback_only_and_need_their_secret() {
    let mut source = pushing_source("zendesk-acme", "127.0.0.1:8788").settings;
    source.push_listen = Some("0.0.0.0:8788".into());
    assert!(source.check().unwrap_err().contains("loopback"), "{:?}", source.check());
    source.push_listen = Some("127.0.0.1:8788".into());
    source.push_secret = None;
    assert!(source.check().unwrap_err().contains("go together"));
}

/// `assets/demo/workspace-browser.toml` with absolute paths and its `[[sources]]` example
/// switched on, written into `dir`.
fn browser_workspace_with_pages_source(dir: &Path) -> PathBuf {
    let text = demo_workspace("workspace-browser.toml", &[])
        .replace("# [[sources]]", "[[sources]]")
        .replace("# name = \"seller-pages\"", "name = \"seller-pages\"")
        .replace("# kind = ", "kind = ")
        .replace("# tenant = ", "tenant = ")
        .replace("# store = ", "store = ")
        .replace("# platform = ", "platform = ")
        .replace("# channel = ", "channel = ");
    let file = dir.join("workspace-browser.toml");
    std::fs::write(&file, text).unwrap();
    file
}

#[test]
fn a_pages_source_drives_the_browser_workspaces_connector_and_needs_one() {
    let root = tempfile::tempdir().unwrap();
    let file = browser_workspace_with_pages_source(root.path());
    // Chromium starts at the first call, so opening needs none.
    let opened = open(options(file.clone(), DataRoot::named(root.path().join("data")))).unwrap();
    let sources = opened.engine.sources();
    assert_eq!(sources.len(), 1, "the example's [[sources]] entry is wired: {sources:?}");
    assert_eq!(sources[0].settings.kind, SourceKind::DemoSellerCenterPages);
    assert_eq!(sources[0].adapter.name(), "seller-pages");
    assert!(sources[0].adapter.capabilities().reply_idempotency, "the form token is the reply's key");
    drop(opened);

    // Its settings are the connector's: a base_url or credential here is refused.
    let text = std::fs::read_to_string(&file).unwrap();
    let with_url =
        text.replace("name = \"seller-pages\"", "name = \"seller-pages\"\nbase_url = \"http://127.0.0.1:9\"");
    std::fs::write(&file, with_url).unwrap();
    let err = open(options(file.clone(), DataRoot::named(root.path().join("data")))).unwrap_err();
    assert!(err.to_string().contains("browser connector"), "{err}");

    // Beside the demo store's HTTP connector there is no browser to drive.
    let http = demo_workspace("workspace.toml", &[])
        .replace("kind = \"demo_seller_center\"", "kind = \"demo_seller_center_pages\"");
    let file = root.path().join("workspace.toml");
    std::fs::write(&file, http).unwrap();
    let err = open(options(file, DataRoot::named(root.path().join("data2")))).unwrap_err();
    assert!(err.to_string().contains("[connector] kind = \"browser\""), "{err}");
}

#[test]
fn the_demo_seller_center_seeds_the_workspace_cases_and_can_have_buyers_writing() {
    use countersign_connectors::source::CaseSource;
    use countersign_connectors::source::demo::DemoMessages;
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let every = Duration::from_millis(200);
    let buyers =
        countersign_demo_store::BuyerSimulation::load(assets().join("demo/buyer-messages.json"), every).unwrap();
    let options = countersign_demo_store::ServeOptions {
        simulate_buyers: Some(buyers),
        cases_dir: Some(assets().join("demo/cases")),
    };
    let (server, _http, token) = countersign_host::start_demo_store(
        &assets().join("demo/catalog.toml"),
        &assets().join("demo-store"),
        dir.path(),
        options,
    )
    .unwrap();
    let messages = DemoMessages::new("demo-messages", &server.url(), token.clone(), token.name().clone()).unwrap();
    let seeded = messages.changes(None).unwrap();
    assert!(seeded.conversations.len() >= 20, "the workspace's sample cases are the conversations");
    let started = Instant::now();
    let written = loop {
        let later = messages.changes(Some(&seeded.cursor)).unwrap();
        if !later.conversations.is_empty() || started.elapsed() > Duration::from_secs(10) {
            break later;
        }
        std::thread::sleep(every);
    };
    assert!(!written.conversations.is_empty(), "a simulated buyer wrote within {:?}", started.elapsed());
}
