//! Planning through the engine's governed context, against the demo seller center the
//! demo workspace starts on loopback, with a real evidence store.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use countersign_core::Outcome;
use countersign_core::model::{
    Case, Channel, Citation, CustomerRef, IdentityStatus, Message, Param, Plan, Provenance, ReplyDraft, Sender, Step,
};
use countersign_engine::{Engine, LogFilter};
use countersign_planner::{LocalPlanner, Planner, PlannerError, PlanningContext};
use serde_json::json;

#[path = "planning/cases.rs"]
mod cases;

fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets")
}

/// The demo workspace opened as the faces open it (the host starts its demo seller center),
/// kept running while this is held.
struct Live(countersign_host::Opened);

impl std::ops::Deref for Live {
    type Target = Engine;
    fn deref(&self) -> &Engine {
        &self.0.engine
    }
}

fn open(data: &Path) -> Live {
    let options = countersign_host::Options {
        workspace: assets().join("demo/workspace.toml"),
        root: countersign_host::DataRoot::named(data),
        operator_id: None,
        role: None,
    };
    Live(countersign_host::open(options).unwrap())
}

/// An agent verified the case's customer themselves (a one-time code sent to the account).
fn verified(engine: &Engine, case: &Case) {
    let customer = &case.customer.as_ref().unwrap().id;
    engine.record_identity_check(&case.id, customer, "a one-time code sent to the account's phone").unwrap();
}

fn case(id: &str, customer: &str, orders: &[&str], text: &str) -> Case {
    Case {
        id: id.into(),
        tenant: "acme".into(),
        store: "acme-us".into(),
        platform: "demo_seller_center".into(),
        channel: Channel::Chat,
        customer: Some(CustomerRef { id: customer.into(), identity: IdentityStatus::Verified }),
        subject: None,
        messages: vec![Message { from: Sender::Customer, text: text.into(), at: None }],
        order_ids: orders.iter().map(|o| o.to_string()).collect(),
    }
}

fn planning_reads(engine: &Engine, case_id: &str) -> Vec<serde_json::Value> {
    engine
        .log_list(&LogFilter {
            case_id: Some(case_id.into()),
            kind: Some("planning_read".into()),
            ..LogFilter::default()
        })
        .unwrap()
        .into_iter()
        .map(|e| e.event.payload())
        .collect()
}

#[test]
fn every_playbook_source_is_found_by_its_own_query() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let planner = LocalPlanner::new();
    for s in planner.playbooks().sources() {
        let hits = engine.kb_search(&s.query, 8).unwrap();
        assert!(
            hits.iter().any(|h| h.article_id == s.article && h.anchor == s.anchor),
            "{}#{} is not among the results for {:?}",
            s.article,
            s.anchor,
            s.query
        );
    }
}

#[test]
fn a_cancellation_is_planned_from_platform_data_and_cited_passages() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let c = case("plan-1", "sofia_rossi_8776", &["#W5918442"], "I ordered this by mistake, please cancel #W5918442");
    verified(&engine, &c);
    let planned = engine.plan_case(&c, &LocalPlanner::new()).unwrap();
    assert_eq!(planned.plan.intent, "cancel_order");
    assert!(planned.downgraded.is_empty(), "{:?}", planned.downgraded);
    let cancel = planned.plan.steps.iter().find(|s| s.action == "cancel_pending_order").expect("a cancel step");
    assert_eq!(cancel.params["order_id"].value, json!("#W5918442"));
    assert_eq!(cancel.params["order_id"].source, Provenance::Connector);
    assert_eq!(cancel.params["reason"].value, json!("ordered by mistake"));

    let decision = engine.process_planned(&c, &planned).unwrap();
    let d = decision.steps.iter().find(|s| s.action == "cancel_pending_order").unwrap();
    assert_eq!(d.decision, Outcome::Confirm, "{:?}", d.reasons);
    let reply = decision.reply.as_ref().unwrap();
    assert!(reply.unresolved_citations.is_empty(), "{:?}", reply.unresolved_citations);
    let draft = planned.plan.reply.as_ref().unwrap();
    assert!(!draft.citations.is_empty());
    for (i, cit) in draft.citations.iter().enumerate() {
        assert!(draft.text.contains(&format!("[{}]", i + 1)), "citation {} has a marker in the text", i + 1);
        assert!(engine.resolve_citation(cit).unwrap().is_resolved(), "{cit:?}");
    }
    // The order read during planning is evidence, cut to the fields the policy allows.
    let reads = planning_reads(&engine, "plan-1");
    let read = reads.iter().find(|r| r["action"] == "get_order_details").unwrap();
    assert_eq!(read["outcome"], "read");
    assert_eq!(read["response"]["status"], "pending");
    assert!(read["response"].get("totals").is_none(), "fields the action may not read are cut: {read}");

    // The same case and data plan the same, and processing again changes nothing.
    let again = engine.plan_case(&c, &LocalPlanner::new()).unwrap();
    assert_eq!(again.plan.id, planned.plan.id);
    assert_eq!(engine.process_planned(&c, &again).unwrap(), decision);
}

#[test]
fn a_planner_cannot_read_another_customers_order() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    // The platform linked an order of another customer (a mistake, or a forged case).
    let c = case("plan-2", "sofia_rossi_8776", &["#W2974929"], "where is my order?");
    let planned = engine.plan_case(&c, &LocalPlanner::new()).unwrap();
    let reads = planning_reads(&engine, "plan-2");
    let read = reads.iter().find(|r| r["action"] == "get_order_details").unwrap();
    assert_eq!(read["outcome"], "refused", "{read}");
    assert!(read.get("response").is_none());
    let text = &planned.plan.reply.as_ref().unwrap().text;
    assert!(text.contains("Note to the agent"), "the draft says what it could not see: {text}");
    let decision = engine.decide_planned(&c, &planned).unwrap();
    let d = decision.steps.iter().find(|s| s.action == "get_order_details").unwrap();
    assert_eq!(d.decision, Outcome::Forbid, "{:?}", d.reasons);
}

/// A planner that claims platform provenance for a value it never read and cites a
/// passage no search returned.
#[derive(Debug)]
struct Forger;

impl Planner for Forger {
    fn name(&self) -> &str {
        "forger"
    }

    fn plan(&self, case: &Case, ctx: &dyn PlanningContext) -> Result<Plan, PlannerError> {
        let hits = ctx.search("refund timing credit card", 3)?;
        let real = &hits[0];
        let quote = real.text.split(". ").next().unwrap().to_string();
        let refund = Step {
            id: "s1".into(),
            action: "refund_partial".into(),
            params: [
                ("order_id".to_string(), Param { value: json!(case.order_ids[0]), source: Provenance::Connector }),
                (
                    "amount".to_string(),
                    Param { value: json!({"amount": "5.00", "currency": "USD"}), source: Provenance::Connector },
                ),
                ("reason".to_string(), Param { value: json!("scratch"), source: Provenance::CustomerMessage }),
            ]
            .into_iter()
            .collect(),
            rationale: None,
            planner_risk: Some("low".into()),
        };
        Ok(Plan {
            id: "forged-1".into(),
            case_id: case.id.clone(),
            planner: "forger".into(),
            intent: "refund".into(),
            steps: vec![refund],
            signals: Vec::new(),
            reply: Some(ReplyDraft {
                text: "Refunds are instant. [1] As searched. [2]".into(),
                citations: vec![
                    Citation {
                        article_id: "goodwill-coupons".into(),
                        version: None,
                        anchor: Some("limits".into()),
                        quote: "Agents may offer up to".into(),
                    },
                    Citation {
                        article_id: real.article_id.clone(),
                        version: Some(real.version.clone()),
                        anchor: Some(real.anchor.clone()),
                        quote,
                    },
                ],
            }),
        })
    }
}

#[test]
fn unbacked_provenance_is_downgraded_and_unretrieved_citations_do_not_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let delivered = "#W2611340"; // james_li_5688's processed order: the amount is what matters here
    let c = case("plan-3", "james_li_5688", &[delivered], "the lid was scratched, can I get a bit back?");
    let planned = engine.plan_case(&c, &Forger).unwrap();
    assert_eq!(planned.downgraded, vec!["s1.amount".to_string()]);
    let step = &planned.plan.steps[0];
    assert_eq!(step.params["amount"].source, Provenance::Model, "no read returned 5.00");
    assert_eq!(step.params["order_id"].source, Provenance::Connector, "the platform linked this order to the case");
    let decision = engine.decide_planned(&c, &planned).unwrap();
    let s = &decision.steps[0];
    assert!(s.rule_ids.iter().any(|r| r == "builtin.provenance"), "{:?}", s.rule_ids);
    assert_ne!(s.decision, Outcome::Auto);
    let reply = decision.reply.unwrap();
    assert_eq!(reply.unresolved_citations, vec!["goodwill-coupons#limits".to_string()]);
    assert_ne!(reply.decision, Outcome::Auto);
}

#[test]
fn the_evaluation_set_plans_without_failures_and_every_citation_is_supported() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let cases = countersign_engine::eval::load_cases(&assets().join("eval/cases.jsonl")).unwrap();
    assert!(cases.len() >= 100);
    let report = engine.evaluate(&cases, &LocalPlanner::new()).unwrap();
    assert_eq!(report.failed, 0, "{:?}", report.scores.iter().filter_map(|s| s.error.as_ref()).collect::<Vec<_>>());
    assert_eq!(
        report.citation_support.hits, report.citation_support.total,
        "every citation resolves and sits on its sentence"
    );
    assert_eq!(report.promises_in_review.hits, report.promises_in_review.total, "drafts that promise go to review");
}
