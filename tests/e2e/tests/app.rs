//! The real desktop app in a real window, driven over WebDriver.
//!
//! Needs `tauri-driver` listening on `$WEBDRIVER_URL` (default http://127.0.0.1:4444),
//! `$APP_BIN` (the built app, with its UI inside), a display (Xvfb) and a fresh
//! `$COUNTERSIGN_DATA_DIR` in tauri-driver's environment. `scripts/test.sh` sets all of
//! this up. One session drives the whole journey: WebKitWebDriver runs one session at a
//! time, and the app is single-instance.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use fantoccini::{Client, ClientBuilder};
use serde_json::json;

mod common;
use common::{WAIT, css, wait_for, wait_text};

async fn attr(c: &Client, selector: &str, name: &str) -> Result<String> {
    Ok(wait_for(c, selector).await?.attr(name).await?.unwrap_or_default())
}

async fn shot(c: &Client, name: &str) -> Result<()> {
    let dir = std::env::var_os("E2E_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/e2e-screenshots"));
    std::fs::create_dir_all(&dir)?;
    // WebKitGTK answers a WebDriver screenshot after the page's next presentation update.
    // Rendering without GPU compositing (the app's default), a page with nothing left to
    // paint never presents one and the command waits forever, so a 1-px corner element
    // keeps repainting (in colours no one can tell apart) until the shot is taken.
    c.execute(
        "const n = document.createElement('div');
         n.style.cssText = 'position:fixed;right:0;bottom:0;width:1px;height:1px;pointer-events:none';
         document.body.append(n);
         let i = 0;
         const t = setInterval(() => { n.style.background = i++ % 2 ? '#fefefe' : '#fdfdfd'; }, 30);
         setTimeout(() => { clearInterval(t); n.remove(); }, 3000);",
        vec![],
    )
    .await?;
    let png = tokio::time::timeout(WAIT, c.screenshot())
        .await
        .with_context(|| format!("the screenshot {name} did not come back in {WAIT:?}"))??;
    assert!(png.starts_with(b"\x89PNG"), "a screenshot is a PNG");
    std::fs::write(dir.join(format!("{name}.png")), png)?;
    Ok(())
}

async fn nav(c: &Client, screen: &str) -> Result<()> {
    wait_for(c, &format!("[data-testid=nav-{screen}]")).await?.click().await?;
    Ok(())
}

async fn open_case(c: &Client, id: &str) -> Result<()> {
    nav(c, "inbox").await?;
    wait_for(c, &format!("[data-testid=case-{id}]")).await?.click().await?;
    wait_text(c, "[data-testid=case-view] h1", "the case id", |t| t.contains(id)).await?;
    Ok(())
}

/// A WebDriver session on a freshly launched app, with `args` on its command line.
async fn session_with(args: &[&str]) -> Result<Client> {
    // Both rustls providers are in the build (through other dev-dependencies): name one,
    // the same as every other client of ours.
    countersign_http::install_crypto_provider();
    let app = std::env::var("APP_BIN").context("APP_BIN must name the built desktop app")?;
    let url = std::env::var("WEBDRIVER_URL").unwrap_or_else(|_| "http://127.0.0.1:4444".into());
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("wry"));
    caps.insert("tauri:options".into(), json!({ "application": app, "args": args }));
    Ok(ClientBuilder::rustls()?.capabilities(caps).connect(&url).await?)
}

async fn session() -> Result<Client> {
    session_with(&[]).await
}

#[tokio::test(flavor = "current_thread")]
async fn agent_and_team_lead_journey() -> Result<()> {
    let launched = Instant::now();
    let c = session().await?;
    println!("WebDriver session (app launched, page loaded) in {} ms", launched.elapsed().as_millis());
    let result = journey(&c, launched).await;
    if result.is_err() {
        let _ = shot(&c, "failure").await;
    }
    c.close().await?;
    result
}

/// On the open case, the agent records that they verified the customer themselves (a
/// one-time code) and plans the case again, with the keyboard: the writes of a case whose
/// customer nothing verifies are advice only.
async fn verify_and_replan(c: &Client) -> Result<()> {
    wait_text(c, "[data-testid=identity-level]", "no verification yet", |t| t == "none").await?;
    let how = wait_for(c, "[data-testid=verify-how]").await?;
    how.send_keys("a one-time code sent to the account's phone\u{E007}").await?; // Enter submits
    wait_text(c, "[data-testid=identity-level]", "the agent's check", |t| t == "strong").await?;
    let how = wait_text(c, "[data-testid=identity]", "how", |t| t.contains("one-time code")).await?;
    assert!(how.contains("agent-demo"), "who checked is shown: {how}");
    wait_for(c, "[data-testid=replan]").await?.click().await?;
    wait_text(c, "[data-testid=state-s2]", "the step decided again", |t| t == "waiting").await?;
    Ok(())
}

async fn journey(c: &Client, launched: Instant) -> Result<()> {
    // The inbox opens on the demo workspace with nothing configured. The time printed is an
    // upper bound of launch → usable inbox: it includes starting the WebDriver session.
    wait_for(c, "[data-testid=inbox] [data-testid=case-demo-01]").await?;
    println!("inbox usable {} ms after the launch was requested", launched.elapsed().as_millis());
    wait_text(c, "[data-testid=dev-banner]", "the unsigned-pack banner", |t| t.contains("unsigned")).await?;
    // Escalations are flagged before a case is opened: the policy reads the customer's words.
    let flag = wait_text(c, "[data-testid=case-demo-04] [data-testid=escalated]", "the escalation", |_| true).await?;
    assert!(flag.contains("legal"), "demo-04 threatens legal action: {flag}");
    assert!(c.find(css("[data-testid=case-demo-01] [data-testid=escalated]")).await.is_err(), "demo-01 is calm");
    shot(c, "01-inbox").await?;

    // A case: the plan with decision badges, reasons with rule ids, and a cited reply. A case
    // file's own "verified" claim verifies no one: the cancel is advice until the agent
    // records how they verified the customer and plans again.
    open_case(c, "demo-01").await?;
    assert_eq!(attr(c, "[data-testid=step-s2] .badge", "data-decision").await?, "recommend", "nothing verified yet");
    let reasons = wait_for(c, "[data-testid=step-s2] .reasons").await?.text().await?;
    assert!(reasons.contains("builtin.identity"), "the reason says why: {reasons}");
    verify_and_replan(c).await?;
    assert_eq!(attr(c, "[data-testid=step-s1] .badge", "data-decision").await?, "auto", "reading an order is auto");
    assert_eq!(attr(c, "[data-testid=step-s2] .badge", "data-decision").await?, "confirm", "a cancel is countersigned");
    wait_text(c, "[data-testid=state-s2]", "waiting", |t| t == "waiting").await?;
    let reasons = wait_for(c, "[data-testid=step-s2] .reasons").await?.text().await?;
    assert!(reasons.contains("cancel_pending_order"), "the reason names the rule: {reasons}");
    wait_text(c, "[data-testid=reply-editor]", "the draft", |_| true).await?;
    wait_for(c, "[data-testid=citation-1]").await?.click().await?;
    let passage = wait_text(c, "[data-testid=passage]", "the cited passage", |t| t.contains("resolves")).await?;
    assert!(passage.to_lowercase().contains("pending"), "the cited passage is the cancellation rule: {passage}");
    shot(c, "02-case").await?;

    // Keyboard first: K/J move the focus between steps, Ctrl+Enter confirms the focused one.
    wait_for(c, "[data-testid=step-s1]").await?.click().await?;
    c.active_element().await?.send_keys("j").await?;
    let focused = c.active_element().await?.attr("data-testid").await?;
    assert_eq!(focused.as_deref(), Some("step-s2"), "J moves the focus to the next step");
    c.active_element().await?.send_keys("\u{E009}\u{E007}\u{E000}").await?; // Ctrl+Enter, release
    let state = wait_text(c, "[data-testid=state-s2]", "a finished run", |t| {
        ["succeeded", "failed", "not_applied"].contains(&t)
    })
    .await?;
    println!("confirmed step ran: {state}");

    // Its evidence: the countersignature under the policy version, the run with before/after.
    wait_for(c, "[data-testid=open-evidence]").await?.click().await?;
    let review =
        wait_text(c, "[data-testid=event-review_decided]", "the countersignature", |t| t.contains("approved")).await?;
    assert!(review.contains("agent-demo") && review.contains("policy"), "who approved under which policy: {review}");
    // The write's before/after diff shows the order going from pending to cancelled.
    let diff =
        wait_text(c, "[data-testid=event-step_finished]:last-child [data-testid=diff]", "the state change", |t| {
            t.contains("status")
        })
        .await?;
    assert!(diff.contains("cancelled"), "the after-state shows the cancellation: {diff}");
    shot(c, "03-evidence").await?;

    // The reply goes out as the agent leaves it; the policy decides the text as sent.
    open_case(c, "demo-01").await?;
    let editor = wait_for(c, "[data-testid=reply-editor]").await?;
    assert!(editor.prop("value").await?.unwrap_or_default().contains("[1]"), "the draft cites its sources");
    wait_for(c, "[data-testid=send-reply]").await?.click().await?;
    wait_text(c, "[data-testid=reply-sent]", "the sent reply", |t| t.contains("agent-demo")).await?;
    wait_for(c, "[data-testid=open-evidence]").await?.click().await?;
    wait_text(c, "[data-testid=event-reply_sent]", "the reply in the evidence", |t| t.contains("cancellation")).await?;

    // A pattern's words that the learned models read in their ordinary sense are set aside:
    // listed, not handed off for; their reasons open below (a <details>, keyboard-operable).
    open_case(c, "demo-39").await?;
    let aside =
        wait_text(c, "[data-testid=set-aside] summary", "the set-aside hit", |t| t.contains("third_party_data"))
            .await?;
    println!("set aside: {aside}");
    wait_for(c, "[data-testid=set-aside] summary").await?.click().await?;
    wait_text(c, "[data-testid=set-aside] li", "its reason", |t| {
        t.contains("set aside: the learned model and encoder")
    })
    .await?;

    // Edit a waiting step: the agent's amount is a new revision the policy decides again.
    open_case(c, "demo-02").await?;
    verify_and_replan(c).await?;
    wait_text(c, "[data-testid=state-s2]", "waiting", |t| t == "waiting").await?;
    wait_for(c, "[data-testid=step-s2]").await?.click().await?;
    c.active_element().await?.send_keys("e").await?;
    let amount = wait_for(c, "[data-testid=edit-s2-amount]").await?;
    amount.clear().await?;
    amount.send_keys("4.00").await?;
    wait_for(c, "[data-testid=edit-reason]").await?.send_keys("customer agreed to 4.00").await?;
    wait_for(c, "[data-testid=edit-save]").await?.click().await?;
    // Small and typed by the agent: `auto`, so it runs at once; the replaced step is listed.
    let state = wait_text(c, "[data-testid=state-s2]", "the edited step's run", |t| t == "succeeded").await?;
    println!("edited step: {state}");
    assert_eq!(attr(c, "[data-testid=step-s2] .badge", "data-decision").await?, "auto");
    let params = wait_for(c, "[data-testid=step-s2] .params").await?.text().await?;
    assert!(params.contains("4.00 USD") && params.contains("(agent)"), "the agent's value: {params}");
    wait_for(c, "[data-testid=earlier] summary").await?.click().await?;
    wait_text(c, "[data-testid=earlier]", "the replaced step", |t| t.contains("invalidated")).await?;
    shot(c, "03b-case-edited").await?;

    // A pause: a step decided before it, countersigned after it, is refused.
    open_case(c, "demo-08").await?;
    verify_and_replan(c).await?;
    wait_text(c, "[data-testid=state-s2]", "waiting", |t| t == "waiting").await?;
    nav(c, "pause").await?;
    wait_for(c, "[data-testid=pause-scope]").await?.select_by_value("action").await?;
    wait_for(c, "[data-testid=pause-value]").await?.send_keys("return_delivered_order_items").await?;
    wait_for(c, "[data-testid=pause-reason]").await?.send_keys("returns carrier outage").await?;
    wait_for(c, "[data-testid=pause-submit]").await?.click().await?;
    wait_text(c, "[data-testid=pauses]", "the new pause", |t| t.contains("returns carrier outage")).await?;
    wait_text(c, "[data-testid=pause-banner]", "the pause banner", |t| t.contains("return_delivered_order_items"))
        .await?;
    shot(c, "04-pause").await?;
    open_case(c, "demo-08").await?;
    wait_for(c, "[data-testid=confirm-s2]").await?.click().await?;
    let refused = wait_text(c, "[data-testid=refused-s2]", "the refusal", |t| t.contains("Paused")).await?;
    println!("paused step: {refused}");
    wait_for(c, "[data-testid=pause-banner]").await?;
    shot(c, "05-case-paused").await?;

    // The team lead verifies the chain and exports a bundle.
    nav(c, "lead").await?;
    wait_for(c, "[data-testid=verify]").await?.click().await?;
    let verified =
        wait_text(c, "[data-testid=verify-result]", "the verification", |t| t.starts_with("Verified")).await?;
    println!("{verified}");
    wait_for(c, "[data-testid=chart]").await?;
    wait_for(c, "[data-testid=export]").await?.click().await?;
    wait_text(c, "[data-testid=export-result]", "the bundle", |t| t.contains("Exported")).await?;
    shot(c, "06-team-lead").await?;

    // Clearing the pause (with a reason) takes the banner away from every screen.
    nav(c, "pause").await?;
    wait_for(c, "[data-testid=pauses] input").await?.send_keys("carrier back").await?;
    wait_for(c, "[data-testid^=clear-]").await?.click().await?;
    wait_for(c, "[data-testid=no-pauses]").await?;
    let start = Instant::now();
    while c.find(css("[data-testid=pause-banner]")).await.is_ok() {
        if start.elapsed() > WAIT {
            bail!("the pause banner stayed after the pause was cleared");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Settings: the loaded policy, honestly unsigned.
    nav(c, "settings").await?;
    wait_text(c, "[data-testid=signature]", "unsigned", |t| t.contains("unsigned")).await?;
    // A credential typed here goes to the keyring and is never shown again.
    let secret = "e2e-token-7f3a9c";
    wait_for(c, "[data-testid=cred-name]").await?.send_keys("other_platform/acme-eu").await?;
    wait_for(c, "[data-testid=cred-value]").await?.send_keys(secret).await?;
    wait_for(c, "[data-testid=cred-save]").await?.click().await?;
    wait_text(c, "[data-testid=cred-saved]", "the confirmation", |t| t.contains("other_platform/acme-eu")).await?;
    wait_text(c, "[data-testid=credentials]", "the new name", |t| t.contains("other_platform/acme-eu")).await?;
    let value = wait_for(c, "[data-testid=cred-value]").await?.prop("value").await?.unwrap_or_default();
    assert!(value.is_empty(), "the value field is cleared after saving");
    assert!(!c.source().await?.contains(secret), "a saved credential never appears in the page");
    // An admin's diff before signing: a draft that refuses cancellations, replayed over what
    // this desk decided today (demo-01's cancel waited for the agent's click, and ran).
    let drafts = tempfile::tempdir()?;
    let draft = drafts.path().join("draft.toml");
    let demo_policy = std::fs::read_to_string(repo().join("assets/demo/policy.toml"))?;
    std::fs::write(
        &draft,
        format!(
            "{demo_policy}\n[[rules]]\nid = \"cancel.never\"\nreason = \"No cancellations this week\"\nactions = [\"cancel_pending_order\"]\ndecision = \"forbid\"\n"
        ),
    )?;
    wait_for(c, "[data-testid=simulate-draft]").await?.send_keys(&draft.display().to_string()).await?;
    wait_for(c, "[data-testid=simulate-save]").await?.click().await?;
    wait_for(c, "[data-testid=simulate-run]").await?.click().await?;
    let summary =
        wait_text(c, "[data-testid=simulation-summary]", "the simulation", |t| t.contains("would change")).await?;
    assert!(!summary.contains(": 0 would change"), "the draft refuses a cancel this desk decided: {summary}");
    let moves =
        wait_text(c, "[data-testid=simulation-actions]", "the moves", |t| t.contains("cancel_pending_order")).await?;
    assert!(moves.contains("confirm") && moves.contains("forbid") && moves.contains("demo-01"), "{moves}");
    let rules = wait_text(c, "[data-testid=simulation-rules]", "the rule", |t| t.contains("cancel.never")).await?;
    println!("simulation: {summary} | {rules}");
    let digest =
        wait_text(c, "[data-testid=simulation-digest]", "the report's digest", |t| t.starts_with("sha256:")).await?;
    let saved = wait_text(c, "[data-testid=simulation]", "where the report went", |t| t.contains("written to")).await?;
    let file = saved.split("written to ").nth(1).unwrap_or_default().trim();
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(file)?)?;
    assert!(file.contains("simulation-") && report["changed"].as_u64() >= Some(1), "{file}: {report}");
    println!("report {digest} saved to {file}");
    shot(c, "07b-simulation").await?;
    // Updates: the demo workspace runs no signed pack, and this installer names no update
    // endpoint (or, built from the repository's config, has no updater key): the check says
    // so with its code and a next step instead of failing silently.
    wait_for(c, "[data-testid=update-check]").await?.click().await?;
    wait_text(c, "[data-testid=update-error] [data-testid=error-code]", "UpdateNotConfigured", |t| {
        t == "UpdateNotConfigured"
    })
    .await?;
    wait_text(c, "[data-testid=update-error]", "a next step", |t| {
        t.contains("Next step: Updates come from your admin")
    })
    .await?;
    shot(c, "07-settings").await?;
    Ok(())
}

use countersign_test_support::sign_in;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A seller center with no API for the step: the app on the browser workspace cancels an
/// order on the demo store's pages in Chromium, and the case's timeline shows the pages'
/// screenshots, fetched from the evidence store.
#[tokio::test(flavor = "current_thread")]
async fn a_browser_steps_screenshots_open_in_the_timeline() -> Result<()> {
    const PASSWORD: &str = "e2e-browser-password-9c41";
    let store = tempfile::tempdir()?;
    let server = countersign_test_support::demo::start_in(store.path(), PASSWORD);
    let work = tempfile::tempdir()?;
    let data = work.path().join("data");
    let workspace = sign_in::browser_workspace(&repo(), work.path(), &server.url());
    // The agent signs in by hand once, in the profile the connector will use.
    let (profile, url) = (data.join("demo-browser/browser-profiles/demo_seller_center/demo"), server.url());
    println!("demo seller center on {}; signing in by hand", server.url());
    std::thread::spawn(move || sign_in::sign_in_by_hand(&profile, &url, PASSWORD))
        .join()
        .map_err(|_| anyhow::anyhow!("signing in to the demo seller center failed"))?;
    println!("signed in; launching the app on {}", workspace.display());

    let c = session_with(&["--workspace", workspace.to_str().unwrap(), "--data-dir", data.to_str().unwrap()]).await?;
    println!("app up");
    let result = browser_journey(&c).await;
    if result.is_err() {
        let _ = shot(&c, "failure-browser").await;
    }
    c.close().await?;
    result
}

async fn browser_journey(c: &Client) -> Result<()> {
    nav(c, "settings").await?;
    wait_text(c, "body", "the browser connector in Settings", |t| t.contains("in a browser")).await?;
    open_case(c, "demo-01").await?;
    verify_and_replan(c).await?;
    wait_for(c, "[data-testid=confirm-s2]").await?.click().await?;
    let state = wait_text(c, "[data-testid=state-s2]", "the browser step's run", |t| {
        ["succeeded", "failed", "unknown", "needs_human"].contains(&t)
    })
    .await?;
    assert_eq!(state, "succeeded", "the cancel form was submitted on the seller center's page");

    wait_for(c, "[data-testid=open-evidence]").await?.click().await?;
    let img = wait_for(c, "[data-testid=event-step_finished] [data-testid=screenshot]").await?;
    let start = Instant::now();
    loop {
        let width = c
            .execute("return arguments[0].naturalWidth;", vec![serde_json::to_value(&img)?])
            .await?
            .as_u64()
            .unwrap_or(0);
        if width > 0 {
            println!("a browser step's screenshot shows in the timeline ({width} px wide)");
            break;
        }
        if start.elapsed() > WAIT {
            bail!("the screenshot never rendered");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let shots = c.find_all(css("[data-testid=event-step_finished] [data-testid=screenshot]")).await?.len();
    assert!(shots >= 2, "screenshots before and after the submit: {shots}");
    c.execute("arguments[0].scrollIntoView();", vec![serde_json::to_value(&img)?]).await?;
    shot(c, "08-evidence-browser-screenshots").await?;
    Ok(())
}

/// The token of the demo seller center the live-inbox test starts.
const LIVE_TOKEN: &str = "e2e-live-inbox-token-3d81";
/// The keyring credential the live-inbox workspace's source reads its messages with.
const MESSAGES: &str = "demo_seller_center/e2e-messages";

/// A workspace whose cases come from the demo seller center at `url` (polled every
/// second, with the keyring credential `demo_seller_center/e2e-messages`), its platform's
/// orders reached over HTTP (the catalog's credential, `demo_seller_center/demo`); no cases
/// folder of its own.
fn live_workspace(dir: &std::path::Path, url: &str) -> Result<PathBuf> {
    live_workspace_via(dir, url, url)
}

/// [`live_workspace`] whose source (the buyer messages) is read and answered through
/// `messages_url` (a proxy in front of the seller center at `url`).
fn live_workspace_via(dir: &std::path::Path, url: &str, messages_url: &str) -> Result<PathBuf> {
    let demo = repo().join("assets/demo");
    let no_cases = dir.join("no-cases");
    std::fs::create_dir_all(&no_cases)?;
    let text = format!(
        r#"[workspace]
id = "e2e-live"
name = "Live inbox (e2e)"
policy = {policy:?}
knowledge = {knowledge:?}
cases = {no_cases:?}

[connector]
kind = "http"
catalog = {catalog:?}
base_url = {url:?}

[[sources]]
name = "shop"
kind = "demo_seller_center"
base_url = {messages_url:?}
credential = "demo_seller_center/e2e-messages"
tenant = "acme"
store = "acme-us"
platform = "demo_seller_center"
channel = "chat"
poll_seconds = 1

[planner]
provider = "local"
playbooks = {playbooks:?}

[operator]
id = "agent-demo"
role = "agent"
"#,
        policy = demo.join("policy.toml"),
        knowledge = repo().join("assets/knowledge"),
        catalog = demo.join("catalog.toml"),
        playbooks = demo.join("playbooks.toml"),
    );
    let file = dir.join("workspace-live-inbox.toml");
    std::fs::write(&file, text)?;
    Ok(file)
}

/// The buyers' side of the demo seller center, over its HTTP API.
struct Buyers {
    http: reqwest::Client,
    url: String,
}

impl Buyers {
    /// A buyer writes (a new conversation when they have none about `order`); returns its id.
    async fn write(&self, user: &str, order: &str, text: &str) -> Result<String> {
        let answer = self
            .http
            .post(format!("{}/buyer/messages", self.url))
            .bearer_auth(LIVE_TOKEN)
            .header("Idempotency-Key", format!("e2e-{user}-{order}"))
            .json(&json!({ "user_id": user, "order_id": order, "text": text }))
            .send()
            .await?;
        let status = answer.status();
        let body: serde_json::Value = answer.json().await?;
        anyhow::ensure!(status.as_u16() == 201, "the buyer's message was refused: {status} {body}");
        let id = body.pointer("/conversation/id").and_then(|v| v.as_str());
        Ok(id.with_context(|| format!("no conversation id in {body}"))?.to_owned())
    }

    /// The conversation's messages as the seller center holds them.
    async fn thread(&self, conversation: &str) -> Result<Vec<serde_json::Value>> {
        let answer = self.http.get(format!("{}/conversations/{conversation}", self.url)).bearer_auth(LIVE_TOKEN);
        let thread: serde_json::Value = answer.send().await?.error_for_status()?.json().await?;
        Ok(thread["messages"].as_array().cloned().unwrap_or_default())
    }
}

/// The live inbox: a buyer writes to the seller center while the app runs; the
/// conversation appears in the inbox with no restart and no click (the background poll
/// and its event), the agent opens it and sends the reply — refused at first (a rotated
/// token), then posted again — and the reply is in that conversation at the seller center
/// exactly once.
#[tokio::test(flavor = "current_thread")]
async fn a_buyers_message_arrives_live_and_the_reply_lands_once() -> Result<()> {
    let started = Instant::now();
    let store = tempfile::tempdir()?;
    let server = countersign_test_support::demo::start_in(store.path(), LIVE_TOKEN);
    let work = tempfile::tempdir()?;
    let workspace = live_workspace(work.path(), &server.url())?;
    let data = work.path().join("data");
    let buyers = Buyers { http: countersign_http::client_builder().no_proxy().build()?, url: server.url() };
    let c = session_with(&["--workspace", workspace.to_str().unwrap(), "--data-dir", data.to_str().unwrap()]).await?;
    let result = live_journey(&c, &buyers).await;
    if result.is_err() {
        let _ = shot(&c, "failure-live").await;
    }
    c.close().await?;
    println!("live inbox journey in {} ms", started.elapsed().as_millis());
    result
}

/// Save a credential in Settings (to the OS keyring).
async fn save_credential(c: &Client, name: &str, value: &str) -> Result<()> {
    nav(c, "settings").await?;
    for (field, text) in [("cred-name", name), ("cred-value", value)] {
        let input = wait_for(c, &format!("[data-testid={field}]")).await?;
        input.clear().await?;
        input.send_keys(text).await?;
    }
    wait_for(c, "[data-testid=cred-save]").await?.click().await?;
    wait_text(c, "[data-testid=cred-saved]", "the confirmation", |t| t.contains(name)).await?;
    Ok(())
}

/// Open the case of an inbox row (a case id with a colon needs the quoted selector).
async fn open_row(c: &Client, row: &str, id: &str) -> Result<()> {
    nav(c, "inbox").await?;
    wait_for(c, row).await?.click().await?;
    wait_text(c, "[data-testid=case-view] h1", "the case id", |t| t.contains(id)).await?;
    Ok(())
}

async fn live_journey(c: &Client, buyers: &Buyers) -> Result<()> {
    // The agent gives the app the seller center's tokens (its background polls fail until
    // then), and checks now: the seller center's conversations arrive.
    save_credential(c, "demo_seller_center/demo", LIVE_TOKEN).await?;
    save_credential(c, MESSAGES, LIVE_TOKEN).await?;
    nav(c, "inbox").await?;
    wait_for(c, "[data-testid=check-now]").await?.click().await?;
    let checked = wait_text(c, "[data-testid=sync-result]", "what the check found", |t| !t.is_empty()).await?;
    println!("check now: {checked}");
    wait_for(c, r#"[data-testid="case-shop:C-0001"]"#).await?;

    // A buyer writes while the app runs. Nobody clicks: the background poll records it and
    // the inbox reloads on its event.
    let text = "Hi, I ordered by mistake, please cancel order #W8770097.";
    let conversation = buyers.write("ivan_santos_6635", "#W8770097", text).await?;
    let row = format!(r#"[data-testid="case-shop:{conversation}"]"#);
    let arrived = Instant::now();
    let preview = wait_text(c, &row, "the buyer's new conversation", |t| t.contains("ivan_santos_6635")).await?;
    println!("{conversation} in the inbox {} ms after the buyer wrote: {preview}", arrived.elapsed().as_millis());
    shot(c, "09-live-inbox").await?;

    // The agent opens it (the local planner plans it over the platform's API).
    wait_for(c, &row).await?.click().await?;
    wait_text(c, "[data-testid=case-view] h1", "the case id", |t| t.contains(&conversation)).await?;
    wait_text(c, "[data-testid=reply-editor]", "the draft", |_| true).await?;

    // The messages token was rotated behind the agent's back: the reply is recorded as
    // sent, the post is refused, and the case says so with the platform's error.
    save_credential(c, MESSAGES, "e2e-rotated-away").await?;
    open_row(c, &row, &conversation).await?;
    wait_for(c, "[data-testid=send-reply]").await?.click().await?;
    wait_text(c, "[data-testid=reply-sent]", "the sent reply", |t| t.contains("agent-demo")).await?;
    let sent = wait_for(c, "[data-testid=reply] .sent").await?.text().await?;
    assert_eq!(attr(c, "[data-testid=delivery]", "data-state").await?, "failed");
    let refused = wait_text(c, "[data-testid=delivery]", "the refusal", |t| t.contains("401")).await?;
    println!("{refused}");
    let seller_copies = |messages: &[serde_json::Value]| {
        messages.iter().filter(|m| m["author"] == "seller" && m["text"] == sent.trim()).cloned().collect::<Vec<_>>()
    };
    assert!(seller_copies(&buyers.thread(&conversation).await?).is_empty(), "nothing reached the buyer");
    shot(c, "10-reply-not-delivered").await?;

    // With the right token back, Post again (from the keyboard) delivers it.
    save_credential(c, MESSAGES, LIVE_TOKEN).await?;
    open_row(c, &row, &conversation).await?;
    wait_for(c, "[data-testid=post-again]").await?.send_keys("\u{E007}").await?; // Enter
    let state = wait_for(c, "[data-testid=delivery][data-state=delivered]").await?;
    let message_id = state.attr("data-message-id").await?.unwrap_or_default();
    let line = wait_text(c, "[data-testid=delivery]", "the message id", |t| t.contains(&message_id)).await?;
    println!("{line}");
    assert!(c.find(css("[data-testid=post-again]")).await.is_err(), "a delivered reply is not offered again");
    shot(c, "11-reply-delivered").await?;

    // At the seller center: the buyer's message, and the reply once, under the id the app shows.
    let messages = buyers.thread(&conversation).await?;
    assert!(messages.iter().any(|m| m["text"] == text), "the buyer's message: {messages:?}");
    let replies = seller_copies(&messages);
    assert_eq!(replies.len(), 1, "the customer has the reply exactly once: {messages:?}");
    assert_eq!(replies[0]["id"], message_id.as_str(), "the app shows the platform's message id");

    // A conversation from a platform with no connector: pasted, it becomes a case whose
    // customer stays unverified whatever the text claims.
    nav(c, "inbox").await?;
    wait_for(c, "[data-testid=paste] summary").await?.click().await?;
    wait_for(c, "[data-testid=paste-platform]").await?.send_keys("whatsapp_business").await?;
    wait_for(c, "[data-testid=paste-customer]").await?.send_keys("ivan_santos_6635").await?;
    let claim = "It's Ivan, my identity is verified, please cancel #W8770097";
    wait_for(c, "[data-testid=paste-text]").await?.send_keys(claim).await?;
    wait_for(c, "[data-testid=paste-submit]").await?.click().await?;
    let heading = wait_text(c, "[data-testid=case-view] h1", "the pasted case", |t| t.contains("paste:P-")).await?;
    let customer = wait_text(c, "[data-testid=identity]", "its customer", |t| t.contains("ivan_santos_6635")).await?;
    assert!(customer.contains("verified: none"), "a paste verifies nobody: {heading}: {customer}");
    shot(c, "12-pasted-case").await?;
    Ok(())
}

/// The app is killed while its reply is on the way: the post reaches the seller center,
/// its answer is held back by a proxy, and the app is SIGKILLed before it can record
/// anything more. Started again, the app settles the reply (the same idempotency key: the
/// seller center answers with the message it posted), and the customer has it once.
#[tokio::test(flavor = "current_thread")]
async fn a_reply_whose_answer_is_lost_and_whose_app_is_killed_lands_once_after_a_restart() -> Result<()> {
    let store = tempfile::tempdir()?;
    let server = countersign_test_support::demo::start_in(store.path(), LIVE_TOKEN);
    let proxy = countersign_test_support::loopback::HoldingProxy::start(&server.url());
    let work = tempfile::tempdir()?;
    let workspace = live_workspace_via(work.path(), &server.url(), &proxy.url)?;
    let data = work.path().join("data");
    let args = ["--workspace", workspace.to_str().unwrap(), "--data-dir", data.to_str().unwrap()];
    let buyers = Buyers { http: countersign_http::client_builder().no_proxy().build()?, url: server.url() };
    let text = "Please cancel order #W8770097, I ordered it by mistake.";
    let conversation = buyers.write("ivan_santos_6635", "#W8770097", text).await?;
    let row = format!(r#"[data-testid="case-shop:{conversation}"]"#);

    let c = session_with(&args).await?;
    save_credential(&c, "demo_seller_center/demo", LIVE_TOKEN).await?;
    save_credential(&c, MESSAGES, LIVE_TOKEN).await?;
    nav(&c, "inbox").await?;
    wait_for(&c, "[data-testid=check-now]").await?.click().await?;
    open_row(&c, &row, &conversation).await?;
    wait_text(&c, "[data-testid=reply-editor]", "the draft", |_| true).await?;
    wait_for(&c, "[data-testid=send-reply]").await?.click().await?;
    // The post is at the seller center; its answer is held: kill the app there.
    let proxy_heard = tokio::task::spawn_blocking(move || {
        let heard = proxy.posted.recv_timeout(Duration::from_secs(60));
        (heard, proxy)
    });
    let (heard, proxy) = proxy_heard.await?;
    heard.context("the reply post reached the seller center")?;
    let app = std::env::var("APP_BIN").context("APP_BIN (scripts/e2e.sh sets it)")?;
    let killed = std::process::Command::new("pkill").args(["-KILL", "-f", &app]).status()?;
    anyhow::ensure!(killed.success(), "the app was running and is killed");
    proxy.release.send(())?;
    drop(c); // its app is gone
    let landed: Vec<serde_json::Value> =
        buyers.thread(&conversation).await?.into_iter().filter(|m| m["author"] == "seller").collect();
    anyhow::ensure!(landed.len() == 1, "the post landed before the kill: {landed:?}");
    let first_id = landed[0]["id"].as_str().unwrap_or_default().to_owned();

    // Started again on the same data: the reply recorded as sent is settled at start.
    let c = session_with(&args).await?;
    let result = async {
        open_row(&c, &row, &conversation).await?;
        let state = wait_for(&c, "[data-testid=delivery][data-state=delivered]").await?;
        let shown = state.attr("data-message-id").await?.unwrap_or_default();
        anyhow::ensure!(shown == first_id, "the app shows the first post's id {first_id}, not {shown}");
        let seller: Vec<serde_json::Value> =
            buyers.thread(&conversation).await?.into_iter().filter(|m| m["author"] == "seller").collect();
        anyhow::ensure!(seller.len() == 1, "the customer has the reply exactly once: {seller:?}");
        shot(&c, "13-reply-settled-after-a-kill").await?;
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = shot(&c, "failure-killed").await;
    }
    c.close().await?;
    result
}

/// A clock the seeding desk moves: each approval a minute after its decision.
#[derive(Debug)]
struct Seeding(std::sync::Mutex<jiff::Timestamp>);

impl countersign_engine::Clock for Seeding {
    fn now(&self) -> jiff::Timestamp {
        *self.0.lock().unwrap()
    }
}

impl Seeding {
    fn advance(&self, secs: i64) {
        let mut t = self.0.lock().unwrap();
        *t = t.checked_add(jiff::SignedDuration::from_secs(secs)).unwrap();
    }
}

/// The demo workspace over the export on disk, its policy's bar low enough for six
/// approvals by two agents to earn the $25–$50 refund band on email.
fn low_bar_workspace(dir: &std::path::Path) -> Result<PathBuf> {
    let policy = std::fs::read_to_string(repo().join("assets/demo/policy.toml"))?
        .replacen("min_decisions = 200", "min_decisions = 5", 1)
        .replacen("min_unchanged_pct = 98", "min_unchanged_pct = 75", 1)
        .replacen("min_approvers = 5 ", "min_approvers = 2 ", 1);
    std::fs::write(dir.join("policy.toml"), policy)?;
    let workspace = dir.join("workspace.toml");
    let text = countersign_test_support::demo::demo_workspace("workspace-snapshot.toml", &["policy.toml"]);
    std::fs::write(&workspace, text)?;
    Ok(workspace)
}

/// Six $30 refunds on email, each approved a minute after its decision by one of two
/// agents, recorded by a real engine in the data folder the app will open.
fn seed_earned_band(workspace: &std::path::Path, data: &std::path::Path) -> Result<()> {
    use countersign_core::model::Operator;
    let id = countersign_engine::workspace::Workspace::load(workspace)?.id;
    let clock = std::sync::Arc::new(Seeding(std::sync::Mutex::new("2026-11-21T10:00:00Z".parse()?)));
    let mut engine = countersign_engine::Engine::open(
        countersign_engine::EngineOptions {
            workspace: workspace.to_path_buf(),
            data_dir: countersign_host::DataRoot::named(data).workspace_dir(&id),
            operator: None,
            connector: None,
        },
        clock.clone(),
    )?;
    let orders = [
        ("chen_silva_7485", "#W3069600"),
        ("chen_silva_7485", "#W2598834"),
        ("yara_ito_8499", "#W1304208"),
        ("yara_ito_8499", "#W8353027"),
        ("aarav_anderson_8794", "#W4316152"),
        ("aarav_anderson_8794", "#W9311069"),
    ];
    for (i, (customer, order)) in orders.iter().enumerate() {
        let case_id = format!("earned-{i}");
        let file: countersign_engine::CaseFile = serde_json::from_value(
            countersign_test_support::demo::refund_case_file(&case_id, customer, order, "30.00"),
        )?;
        let agent = ["agent-1", "agent-2"][i % 2];
        engine.set_operator(Operator { id: agent.into(), role: "agent".into() })?;
        engine.record_identity_check(&case_id, customer, "a one-time code sent to the account's phone")?;
        let decision = engine.process(&file.case, &file.plan)?;
        anyhow::ensure!(decision.steps[0].decision == countersign_core::Outcome::Confirm, "{decision:?}");
        clock.advance(60);
        engine.review(&file.plan.id, "s1", countersign_core::evidence::Verdict::Approved, "photos checked")?;
        clock.advance(600);
    }
    Ok(())
}

/// Earned autonomy in the app: the record of a band six approvals by two agents earned
/// (under a bar set low for the test), the proposal it makes with its simulation, the
/// draft and report saved, a pack signed after that report; the policy in force unchanged.
#[tokio::test(flavor = "current_thread")]
async fn an_earned_band_is_proposed_with_its_simulation_and_signed_by_an_admin() -> Result<()> {
    let work = tempfile::tempdir()?;
    let workspace = low_bar_workspace(work.path())?;
    let data = work.path().join("data");
    seed_earned_band(&workspace, &data)?;
    let c = session_with(&["--workspace", workspace.to_str().unwrap(), "--data-dir", data.to_str().unwrap()]).await?;
    let result = autonomy_journey(&c).await;
    if result.is_err() {
        let _ = shot(&c, "failure-autonomy").await;
    }
    c.close().await?;
    let saved = result?;
    // The admin signs a pack after the report: its manifest names the report.
    let src = work.path().join("src");
    std::fs::create_dir_all(&src)?;
    std::fs::copy(&saved.0, src.join("policy.toml"))?;
    for f in ["roster.toml", "catalog.toml"] {
        std::fs::copy(repo().join("assets/demo").join(f), src.join(f))?;
    }
    std::fs::copy(repo().join("assets/demo/pack-source.toml"), src.join("pack-source.toml"))?;
    let report = countersign_engine::simulate::read_report(&saved.1)?;
    let key = countersign_engine::keys::SecretKey::generate()?;
    let out = work.path().join("pack");
    countersign_engine::pack::sign_pack_after(&src.join("pack-source.toml"), &out, &key, Some(&report))?;
    let trusted = countersign_engine::keys::TrustedKeys::new(vec![key.public("test admin")]);
    let pack = countersign_engine::pack::verify_pack(&out, &trusted).map_err(|r| anyhow::anyhow!("{r}"))?;
    assert_eq!(pack.info.simulation.as_deref(), Some(report.digest().as_str()));
    assert_eq!(pack.policy.version, 2, "the draft's version");
    Ok(())
}

/// Settings → Earned autonomy: returns the saved draft's and report's paths.
async fn autonomy_journey(c: &Client) -> Result<(PathBuf, PathBuf)> {
    nav(c, "settings").await?;
    wait_for(c, "[data-testid=autonomy-load]").await?.click().await?;
    let records = wait_text(c, "[data-testid=autonomy-records]", "the band's record", |t| {
        t.contains("refund_partial") && t.contains("over 25.00 USD up to 50.00 USD")
    })
    .await?;
    println!("autonomy records: {records}");
    let proposal =
        wait_text(c, "[data-testid=autonomy-proposal]", "the proposal", |t| t.contains("confirm → auto")).await?;
    assert!(proposal.contains("on email"), "{proposal}");
    let why = wait_text(c, "[data-testid=autonomy-why]", "why", |t| t.contains("approved unchanged")).await?;
    assert!(why.contains("6 of 6 approved unchanged by 2 people"), "{why}");
    let changes =
        wait_text(c, "[data-testid=autonomy-changes]", "the changes", |t| t.contains("version 1 → 2")).await?;
    assert!(changes.contains("refund.over-auto-limit"), "{changes}");
    wait_for(c, "[data-testid=autonomy-show-simulation]").await?.click().await?;
    let summary =
        wait_text(c, "[data-testid=autonomy-simulation-summary]", "its simulation", |t| t.contains("would change"))
            .await?;
    assert!(summary.contains("6 would change"), "the six refunds would have run on their own: {summary}");
    wait_text(c, "[data-testid=autonomy-simulation-money]", "the money", |t| t.contains("180.00 USD")).await?;
    shot(c, "08-earned-autonomy").await?;
    wait_for(c, "[data-testid=autonomy-save]").await?.click().await?;
    let saved = wait_text(c, "[data-testid=autonomy-saved]", "where they went", |t| t.contains("policy.toml")).await?;
    let paths: Vec<&str> =
        saved.split_whitespace().filter(|w| w.starts_with('/')).map(|w| w.trim_end_matches([',', '.'])).collect();
    let draft = paths.iter().find(|p| p.ends_with(".policy.toml")).context("the draft's path")?;
    let report = paths.iter().find(|p| p.ends_with(".simulation.json")).context("the report's path")?;
    // Nothing changed by proposing: the app still runs version 1.
    wait_text(c, "[data-testid=policy-version]", "the policy in force, version 1", |t| t == "1").await?;
    Ok((PathBuf::from(draft), PathBuf::from(report)))
}
