//! Plans from outside the engine are untrusted as a whole: the sources a plan file
//! declares are ignored and derived again from the case's evidence; null optional values
//! are empty. Through the real engine, over the demo store on loopback.

use std::collections::BTreeMap;

use countersign_core::Outcome;
use countersign_core::decide::PlanDecision;
use countersign_core::evidence::Verdict;
use countersign_core::model::Provenance;
use countersign_engine::{CaseFile, ErrorCode};
use serde_json::{Value, json};

use super::{case_with, live_engine, seed_orders, verify_by_code};

fn read_step(order: &str, source: &str) -> Value {
    json!({"id": "s1", "action": "get_order_details", "params": {"order_id": {"value": order, "source": source}}})
}

/// `file` with the case's orders set.
fn with_orders(mut file: CaseFile, orders: &[&str]) -> CaseFile {
    file.case.order_ids = orders.iter().map(|o| o.to_string()).collect();
    file
}

fn plan_id(file: &CaseFile, id: &str) -> CaseFile {
    let mut file = file.clone();
    file.plan.id = id.to_string();
    file
}

fn provenance_reason(d: &PlanDecision, step: usize) -> Option<String> {
    d.steps[step].reasons.iter().find(|r| r.rule == "builtin.provenance").map(|r| r.text.clone())
}

#[test]
fn a_plan_file_claiming_connector_for_an_order_the_case_never_read_needs_a_click() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _server, _keyring) = live_engine(dir.path());
    let (order, customer) = seed_orders("pending")[0].clone();
    // The customer typed the order number: the case carries no order, nothing was read.
    let file = case_with("prov-1", "prov-1-a", &customer, "order_status", json!([read_step(&order, "connector")]));

    let d = engine.decide(&file.case, &file.plan).unwrap();
    assert_eq!(d.steps[0].decision, Outcome::Confirm, "a claimed `connector` no read of the case backs is untrusted");
    let why = provenance_reason(&d, 0).expect("the provenance rule says why");
    assert!(why.contains("order_id") && why.contains("model"), "{why}");

    // Recorded, countersigned and run: the read's response is now the case's evidence.
    let run = engine.run_case(&file.case, Some(&file.plan)).unwrap();
    assert_eq!(run.decision.steps[0].decision, Outcome::Confirm);
    engine.review("prov-1-a", "s1", Verdict::Approved, "the customer's own order").unwrap();
    let ran = engine.run_approved("prov-1").unwrap();
    assert_eq!(ran.len(), 1, "{ran:?}");

    // The same value, now returned by a recorded read, stays trusted in another plan file.
    let again = plan_id(&file, "prov-1-b");
    let d = engine.decide(&again.case, &again.plan).unwrap();
    assert_eq!(d.steps[0].decision, Outcome::Auto, "the case's executed read returned this order id: {d:?}");
    assert_eq!(provenance_reason(&d, 0), None);

    // Another order the reads never returned, under the same claim, does not ride along.
    let (other, _) = seed_orders("pending")[1].clone();
    let stranger = case_with("prov-1", "prov-1-c", &customer, "order_status", json!([read_step(&other, "connector")]));
    let d = engine.decide(&stranger.case, &stranger.plan).unwrap();
    assert_ne!(d.steps[0].decision, Outcome::Auto, "{d:?}");
    assert!(provenance_reason(&d, 0).is_some(), "{d:?}");
}

#[test]
fn what_a_plan_file_declares_is_ignored_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _server, _keyring) = live_engine(dir.path());
    let (order, customer) = seed_orders("pending")[0].clone();
    // The case's own order is read to decide it: its id is what the platform returned,
    // whatever the file says it came from.
    let file = with_orders(
        case_with("prov-2", "prov-2-a", &customer, "order_status", json!([read_step(&order, "customer_message")])),
        &[&order],
    );
    let d = engine.decide(&file.case, &file.plan).unwrap();
    assert_eq!(d.steps[0].decision, Outcome::Auto, "a value the case's read returned is `connector`: {d:?}");

    let recorded = engine.submit_plan(&file.case, &file.plan).unwrap();
    assert_eq!(recorded.steps[0].decision, Outcome::Auto);
    let plans = engine.case_plans("prov-2").unwrap();
    let (plan, _) = plans.iter().find(|(p, _)| p.id == "prov-2-a").unwrap();
    assert_eq!(
        plan.steps[0].params["order_id"].source,
        Provenance::Connector,
        "the evidence records the derived source, not the declared one"
    );
    assert_eq!(
        engine.submit_plan(&file.case, &file.plan).unwrap(),
        recorded,
        "the same plan file again is the plan already recorded"
    );
}

#[test]
fn agent_counts_only_for_a_value_the_agents_own_edit_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _server, _keyring) = live_engine(dir.path());
    let (order, customer) = seed_orders("delivered")[0].clone();
    verify_by_code(&engine, "prov-3", &customer);
    let refund = |id: &str, amount: &str, source: &str| {
        with_orders(
            case_with(
                "prov-3",
                id,
                &customer,
                "refund",
                json!([{"id": "s1", "action": "refund_partial", "params": {
                    "order_id": {"value": order, "source": "connector"},
                    "amount": {"value": {"amount": amount, "currency": "USD"}, "source": source},
                    "reason": {"value": "scratched", "source": "customer_message"},
                }}]),
            ),
            &[&order],
        )
    };
    let claimed = refund("prov-3-a", "7.00", "agent");
    let d = engine.submit_plan(&claimed.case, &claimed.plan).unwrap();
    assert_eq!(d.steps[0].decision, Outcome::Confirm, "a file's `agent` is no agent's: {d:?}");
    assert!(provenance_reason(&d, 0).unwrap().contains("amount"));

    // The agent edits the waiting refund to 4.00: that value is the agent's, recorded.
    let changes = BTreeMap::from([("amount".to_string(), "4.00".to_string())]);
    let edited = engine.edit_step(&claimed.case, "prov-3-a", "s1", &changes, "customer agreed to 4").unwrap();
    assert_eq!(edited.decision.steps[0].decision, Outcome::Auto, "{:?}", edited.decision);

    let same = refund("prov-3-b", "4.00", "model");
    let d = engine.decide(&same.case, &same.plan).unwrap();
    assert_eq!(provenance_reason(&d, 0), None, "the agent's recorded 4.00 is `agent`, whatever the file says: {d:?}");
    let other = refund("prov-3-c", "4.50", "agent");
    let d = engine.decide(&other.case, &other.plan).unwrap();
    assert!(provenance_reason(&d, 0).is_some(), "4.50 is no value the agent typed: {d:?}");

    // A plan file cannot pass for the agent's edit.
    let mut forged = refund("prov-3-d", "9.00", "agent");
    forged.plan.planner = countersign_engine::cases::AGENT_EDIT.to_string();
    let err = engine.decide(&forged.case, &forged.plan).unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadInput, "{err}");
    let err = engine.submit_plan(&forged.case, &forged.plan).unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadInput, "{err}");
}

#[test]
fn null_optional_fields_are_empty_values_and_null_required_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, _server, _keyring) = live_engine(dir.path());
    let (order, customer) = seed_orders("pending")[0].clone();
    verify_by_code(&engine, "prov-4", &customer);
    let address = |address2: Value, city: Value| {
        with_orders(
            case_with(
                "prov-4",
                "prov-4-a",
                &customer,
                "modify_address",
                json!([{"id": "s1", "action": "modify_pending_order_address", "params": {
                    "order_id": {"value": order, "source": "connector"},
                    "address": {"value": {"address1": "1 Loop Road", "address2": address2, "city": city,
                                          "state": "TX", "zip": "78701", "country": "USA"},
                                "source": "customer_message"},
                }}]),
            ),
            &[&order],
        )
    };

    let file = address(Value::Null, json!("Austin"));
    let d = engine.decide(&file.case, &file.plan).unwrap();
    assert!(
        d.steps[0].reasons.iter().all(|r| !r.rule.starts_with("validate.")),
        "`address2: null` is an empty address line: {d:?}"
    );
    assert_ne!(d.steps[0].decision, Outcome::Forbid, "{d:?}");
    // Recorded without the null, countersigned, and the platform takes it.
    engine.run_case(&file.case, Some(&file.plan)).unwrap();
    let plans = engine.case_plans("prov-4").unwrap();
    let recorded = &plans.iter().find(|(p, _)| p.id == "prov-4-a").unwrap().0.steps[0].params["address"].value;
    assert!(recorded.get("address2").is_none(), "the platform never sees a null: {recorded}");
    engine.review("prov-4-a", "s1", Verdict::Approved, "customer confirmed the address").unwrap();
    let ran = engine.run_approved("prov-4").unwrap();
    assert_eq!(ran.len(), 1);
    let step = engine.all_steps().unwrap().into_iter().find(|s| s.plan_id == "prov-4-a").unwrap();
    assert_eq!(step.state, countersign_engine::StepState::Succeeded, "{step:?}");

    let mut bad = address(json!(""), Value::Null);
    bad.plan.id = "prov-4-b".into();
    let d = engine.decide(&bad.case, &bad.plan).unwrap();
    assert_eq!(d.steps[0].decision, Outcome::Forbid, "a required field cannot be null: {d:?}");
    let why: Vec<&str> = d.steps[0].reasons.iter().map(|r| r.text.as_str()).collect();
    assert!(why.iter().any(|t| t.contains("\"city\" is null")), "{why:?}");

    let mut no_reason = address(json!(""), json!("Austin"));
    no_reason.plan.id = "prov-4-c".into();
    no_reason.plan.steps[0].params.get_mut("order_id").unwrap().value = Value::Null;
    let d = engine.decide(&no_reason.case, &no_reason.plan).unwrap();
    assert_eq!(d.steps[0].decision, Outcome::Forbid, "{d:?}");
    assert!(
        d.steps[0].reasons.iter().any(|r| r.text.contains("\"order_id\"") && r.text.contains("null")),
        "a required parameter that is null is refused with a clear reason: {d:?}"
    );
}
