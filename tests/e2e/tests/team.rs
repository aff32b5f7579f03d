//! The lead's team view in the real app, in a real window, driven over WebDriver: a real
//! team (its `nats-server`, the team service's projection and view over a real
//! PostgreSQL), an agent's desk that is a real engine working a demo case, a signed pack
//! whose roster grants the lead the team's evidence, and the app as the lead's desk
//! (enrolled and joined with the keys in the OS keyring it runs with). See `app.rs` for
//! what the session needs (`scripts/e2e.sh`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[path = "../../../crates/host/tests/support/join.rs"]
mod join;
#[path = "../../../crates/host/tests/support/team.rs"]
mod support;

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use countersign_engine::keys::{SecretKey, TrustedKeys};
use countersign_plane::subjects::Role;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use support::*;

mod common;
use common::{WAIT, wait_text};

async fn click(c: &Client, selector: &str) -> Result<()> {
    let e = c.wait().at_most(WAIT).for_element(Locator::Css(selector)).await.with_context(|| selector.to_string())?;
    e.click().await?;
    Ok(())
}

// A plain test: the desks' links run runtimes of their own, which must not be dropped
// inside another; only the WebDriver session runs on this test's runtime.
#[test]
fn a_lead_filters_the_teams_steps_opens_a_case_from_another_desk_exports_it_and_judges_an_escalation() -> Result<()> {
    countersign_http::install_crypto_provider();
    let mut team = team();
    let db = countersign_test_support::postgres::Postgres::start();
    let _projection = Projection::start(&team, &db, "cs_projection");
    let admin_key = SecretKey::generate()?;
    let _view = ServiceThread::view(&team, &db, TrustedKeys::new(vec![admin_key.public("test admin")]));
    let admin = desk(&mut team, "admin-desk", Role::Admin, ("admin-1", "team_lead"), system());
    let agent = desk(&mut team, "agent-desk", Role::Agent, ("agent-1", "agent"), system());
    let agent_2 = desk(&mut team, "agent-desk-2", Role::Agent, ("agent-2", "agent"), system());

    // The app is the lead's desk, with the keys of the keyring it runs with.
    let keyring = countersign_engine::credentials::keyring();
    let lead_key = countersign_engine::device::device_key(&keyring)?.public("").to_hex();
    let transport = countersign_plane::authority::device_transport_key(&keyring)?;
    let enrolled = team.plane.authority.enroll("lead-app", Role::Lead, &transport.public_key())?;
    let work = tempfile::tempdir()?;
    let workspace = work.path().join("workspace.toml");
    let text = std::fs::read_to_string(&team.workspace)?;
    let text = text.replacen("id = \"agent-1\"\nrole = \"agent\"", "id = \"lead-1\"\nrole = \"team_lead\"", 1);
    let text =
        text.replace(&countersign_engine::device::device_key(&team.lead_keyring)?.public("").to_hex(), &lead_key);
    anyhow::ensure!(text.contains("id = \"lead-1\"\nrole = \"team_lead\""), "the seat is the lead's: {text}");
    std::fs::write(&workspace, text)?;
    let file = work.path().join("lead-app.toml");
    std::fs::write(&file, toml::to_string(&enrolled)?)?;
    let data = work.path().join("data");
    let folder = countersign_host::DataRoot::named(&data).workspace_dir("team-test");
    countersign_host::team::join_with(&folder, &file, &keyring)?;

    let packs = tempfile::tempdir()?;
    publish_team_pack(&admin, packs.path(), &admin_key, &roster_entry("lead-1", &lead_key, &["*"]));

    // The agent works the damaged-item case; its evidence reaches the team.
    let (case, plan) =
        countersign_engine::cases::read_case(&demo().join("cases/02-damaged-item-small-refund.json"), None)?;
    agent.engine.run_case(&case, plan.as_ref())?;
    replicate_until_ok(&agent);
    // Another agent's case that a legal threat handed to a human: an escalation to judge.
    let (threat, plan) = countersign_engine::cases::read_case(&demo().join("cases/04-legal-threat-refund.json"), None)?;
    agent_2.engine.run_case(&threat, plan.as_ref())?;
    replicate_until_ok(&agent_2);

    let app = std::env::var("APP_BIN").context("APP_BIN must name the built desktop app")?;
    let url = std::env::var("WEBDRIVER_URL").unwrap_or_else(|_| "http://127.0.0.1:4444".into());
    let args = ["--workspace", workspace.to_str().unwrap(), "--data-dir", data.to_str().unwrap()];
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("wry"));
    caps.insert("tauri:options".into(), json!({ "application": app, "args": args }));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let c = ClientBuilder::rustls()?.capabilities(caps).connect(&url).await?;
        let result = async {
            click(&c, "[data-testid=nav-lead]").await?;
            wait_text(&c, "[data-testid=team-steps]", "the agent's refund", |t| t.contains("refund_partial")).await?;
            // Filter by desk and action.
            let desk = c.wait().at_most(WAIT).for_element(Locator::Css("[data-testid=team-filter-desk]")).await?;
            desk.send_keys("agent-desk").await?;
            let action = c.find(Locator::Css("[data-testid=team-filter-action]")).await?;
            action.send_keys("refund_partial").await?;
            click(&c, "[data-testid=team-search]").await?;
            let start = Instant::now();
            let rows = loop {
                // The table re-renders as answers arrive: a row gone as it is read is read
                // again on the next turn.
                let rows = c.find_all(Locator::Css("[data-testid=team-steps] tbody tr")).await.unwrap_or_default();
                let mut texts = Vec::new();
                for r in &rows {
                    texts.push(r.text().await.unwrap_or_default());
                }
                if texts.len() == 1 && texts[0].contains("refund_partial") && texts[0].contains("agent-desk") {
                    break texts;
                }
                anyhow::ensure!(start.elapsed() < WAIT, "the filter never left the one refund row: {texts:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            println!("team steps: {rows:?}");
            // The case's timeline from the agent's desk, then its export.
            click(&c, "[data-testid=team-open-case]").await?;
            wait_text(&c, "[data-testid=team-case]", "the agent's decided event", |t| {
                t.contains("decided") && t.contains("agent-desk")
            })
            .await?;
            let shown = c.find_all(Locator::Css("[data-testid=team-event]")).await?.len();
            // (Every desk recorded a verification on this case: its timeline is every desk's.)
            let mut local = 0;
            for d in [&agent, &agent_2] {
                let filter = countersign_engine::LogFilter { case_id: Some(case.id.clone()), ..Default::default() };
                local += d.engine.log_list(&filter)?.len();
            }
            anyhow::ensure!(shown == local, "the timeline shows the desks' {local} events of the case, not {shown}");
            click(&c, "[data-testid=team-export]").await?;
            wait_text(&c, "[data-testid=team-export-result]", "the export", |t| t.contains("agent-desk")).await?;
            wait_text(&c, "[data-testid=team-metrics-summary]", "the team's metrics", |t| t.contains("2 cases"))
                .await?;

            // The other desk's escalated case: the lead records that the handoff was right.
            let desk = c.find(Locator::Css("[data-testid=team-filter-desk]")).await?;
            desk.clear().await?;
            desk.send_keys("agent-desk-2").await?;
            c.find(Locator::Css("[data-testid=team-filter-action]")).await?.clear().await?;
            click(&c, "[data-testid=team-search]").await?;
            wait_text(&c, "[data-testid=team-steps]", "the other desk's steps", |t| t.contains("agent-desk-2")).await?;
            click(&c, "[data-testid=team-open-case]").await?;
            wait_text(&c, "[data-testid=team-verdict]", "the verdict form", |t| t.contains("agent-desk-2")).await?;
            let reason = c.find(Locator::Css("[data-testid=team-verdict-reason]")).await?;
            reason.send_keys("a threat to sue: a lead had to answer").await?;
            click(&c, "[data-testid=team-verdict-right]").await?;
            wait_text(&c, "[data-testid=team-verdict-result]", "the verdict recorded", |t| t.contains("right")).await?;
            // The verdict reaches the team from this desk's evidence, and its metrics.
            let start = Instant::now();
            loop {
                click(&c, "[data-testid=team-metrics-load]").await?;
                tokio::time::sleep(Duration::from_millis(300)).await;
                let text = match c.find(Locator::Css("[data-testid=team-metrics-verdicts]")).await {
                    Ok(e) => e.text().await.unwrap_or_default(),
                    Err(_) => String::new(),
                };
                if text.contains("1 right") {
                    break;
                }
                anyhow::ensure!(start.elapsed() < WAIT, "the verdict never reached the metrics: {text:?}");
            }

            // The admin publishes a pack this build trusts while the app runs: the app runs
            // on it at once, with no restart, and shows it.
            c.wait().at_most(WAIT).for_element(Locator::Css("[data-testid=dev-banner]")).await?;
            let demo_pack = demo().join("../demo-pack");
            let info = countersign_engine::pack::verify_pack(&demo_pack, &TrustedKeys::bundled())
                .map_err(|r| anyhow::anyhow!("the demo pack: {}", r.message))?
                .info;
            admin.link.publish_pack(&demo_pack, info.version, &info.digest, "admin-1").map_err(anyhow::Error::msg)?;
            click(&c, "[data-testid=nav-settings]").await?;
            wait_text(&c, "[data-testid=signature]", "the published pack in force", |t| t == "signed").await?;
            wait_text(&c, "[data-testid=policy-version]", "its policy's version", |t| {
                t == info.policy_version.to_string()
            })
            .await?;
            let banners = c.find_all(Locator::Css("[data-testid=dev-banner]")).await?;
            anyhow::ensure!(banners.is_empty(), "the dev-mode banner is gone once the signed pack runs");
            Ok(())
        }
        .await;
        c.close().await?;
        result
    })
}
