//! A browser workspace (`[connector] kind = "browser"`) as a user runs it: the demo store's
//! seller-center pages on loopback, real Chromium (headless, `--no-sandbox`) in a profile
//! the agent signed in to by hand, `countersign run / review / log` against it. If
//! Chromium cannot start, this fails (it never skips).

use serde_json::Value;

use super::{case_file, code, cs_at as run, repo, stderr, stdout_json};

use countersign_test_support::{demo, sign_in};

const PASSWORD: &str = "cli-browser-test-password-5d1e";

#[test]
fn a_browser_workspace_runs_its_steps_in_chromium_through_the_cli() {
    let store_dir = tempfile::tempdir().unwrap();
    let server = demo::start_in(store_dir.path(), PASSWORD);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let workspace = sign_in::browser_workspace(&repo(), dir.path(), &server.url());
    // The workspace's data folder is `<data root>/<workspace id>` for every face.
    sign_in::sign_in_by_hand(
        &data.join("demo-browser/browser-profiles/demo_seller_center/demo"),
        &server.url(),
        PASSWORD,
    );
    let order = || -> Value {
        countersign_http::blocking_client_builder()
            .build()
            .unwrap()
            .get(format!("{}/orders/%23W5918442", server.url()))
            .bearer_auth(PASSWORD)
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    let case = case_file("01-cancel-pending.json");
    super::verify_customer(|a| run(&workspace, &data, a), &case);
    let case = case.to_str().unwrap();

    // The order facts and the auto read come from the order page; the cancel waits.
    let out = run(&workspace, &data, &["run", "--case", case, "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let ran = stdout_json(&out);
    assert_eq!(ran["ran"][0]["state"], "succeeded", "the read ran in the browser: {ran}");
    assert_eq!(ran["steps"][1]["state"], "waiting", "{ran}");
    assert_eq!(order()["status"], "pending");

    let out = run(&workspace, &data, &["review", "approve", "demo-01-plan-1", "s2", "--reason", "customer asked"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run(&workspace, &data, &["run", "--case", case, "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let ran = stdout_json(&out);
    assert_eq!(ran["ran"][0]["step_id"], "s2", "{ran}");
    assert_eq!(ran["ran"][0]["state"], "succeeded", "{ran}");
    assert_eq!(order()["status"], "cancelled", "the form on the seller center's page was submitted");

    // The timeline names the pages and their screenshots; the chain verifies.
    let out = run(&workspace, &data, &["log", "show", "demo-01"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let timeline = String::from_utf8_lossy(&out.stdout);
    assert!(timeline.contains("s2 succeeded") && timeline.contains("/seller/orders/%23W5918442/cancel"), "{timeline}");
    assert!(timeline.contains("screenshot "), "{timeline}");
    let out = run(&workspace, &data, &["log", "verify", "--json"]);
    assert_eq!(stdout_json(&out)["ok"], true, "{}", stderr(&out));
}

#[test]
fn a_browser_workspace_names_its_configuration_errors() {
    let dir = tempfile::tempdir().unwrap();
    let workspace = sign_in::browser_workspace(&repo(), dir.path(), "http://127.0.0.1:9");
    let text = std::fs::read_to_string(&workspace).unwrap();

    // In the workspace file: file:line:column of the value.
    let bad = text.replace("profile = \"demo_seller_center/demo\"", "profile = \"../elsewhere\"");
    std::fs::write(&workspace, &bad).unwrap();
    let out = run(&workspace, dir.path(), &["pause", "list"]);
    assert_eq!(code(&out), 1);
    let line = bad.lines().position(|l| l.starts_with("profile = ")).unwrap() + 1;
    let at = format!("{}:{line}:11: profile \"../elsewhere\" must be PLATFORM/STORE", workspace.display());
    assert!(stderr(&out).contains(&at), "expected {at}: {}", stderr(&out));

    // In the page-actions file it names: that file's line and column.
    let pages = dir.path().join("pages.toml");
    let source = std::fs::read_to_string(repo().join("assets/demo/pages.toml")).unwrap();
    std::fs::write(&pages, source.replace("submit = \"button#cancel-submit\"", "submit = \"\"")).unwrap();
    let pointed = text.replace(&format!("{:?}", repo().join("assets/demo/pages.toml")), &format!("{pages:?}"));
    std::fs::write(&workspace, pointed).unwrap();
    let out = run(&workspace, dir.path(), &["pause", "list"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).starts_with("error [ConfigInvalid]: "), "{}", stderr(&out));
    let line = source.lines().position(|l| l.starts_with("submit = \"button#cancel-submit\"")).unwrap() + 1;
    let at = format!("{}:{line}:10: submit is a CSS selector", pages.display());
    assert!(stderr(&out).contains(&at), "expected {at}: {}", stderr(&out));
}
