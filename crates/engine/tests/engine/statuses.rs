//! The policy's `order_status` preconditions against the statuses the demo store reports,
//! through the real engine and the demo store on loopback: an order whose items were
//! modified is `pending (item modified)`, which no `pending` precondition lets through.

use countersign_core::Outcome;
use countersign_core::evidence::Verdict;
use countersign_engine::StepState;
use serde_json::json;

use super::{case_with, live_engine, platform, read_order, verify_by_code};

const ORDER: &str = "#W2307204";
const CUSTOMER: &str = "emma_kovacs_7176";

#[test]
fn an_order_whose_items_were_modified_passes_no_pending_precondition() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, server, keyring) = live_engine(dir.path());
    let connector = |v: serde_json::Value| json!({"value": v, "source": "connector"});
    let mut file = case_with(
        "statuses-1",
        "statuses-1-a",
        CUSTOMER,
        "modify_items",
        json!([{"id": "s1", "action": "modify_pending_order_items", "params": {
            "order_id": connector(json!(ORDER)),
            "item_ids": connector(json!(["9829827210"])),
            "new_item_ids": connector(json!(["3369928769"])),
            "payment_method_id": connector(json!("paypal_1038468")),
        }}]),
    );
    file.case.order_ids = vec![ORDER.to_string()];
    verify_by_code(&engine, "statuses-1", CUSTOMER);
    engine.process(&file.case, &file.plan).unwrap();
    engine.review("statuses-1-a", "s1", Verdict::Approved, "customer confirmed every item").unwrap();
    engine.run_approved("statuses-1").unwrap();
    let step = engine.all_steps().unwrap().into_iter().find(|s| s.plan_id == "statuses-1-a").unwrap();
    assert_eq!(step.state, StepState::Succeeded, "the catalog's expectation holds: {step:?}");
    assert_eq!(read_order(&platform(&server, &keyring), ORDER)["status"], "pending (item modified)");

    let later = [
        (
            "cancel_pending_order",
            json!({"order_id": connector(json!(ORDER)), "reason": connector(json!("no longer needed"))}),
        ),
        (
            "modify_pending_order_address",
            json!({"order_id": connector(json!(ORDER)), "address": connector(json!({
            "address1": "1 Loop Road", "city": "Austin", "state": "TX", "zip": "78701", "country": "USA"}))}),
        ),
        (
            "modify_pending_order_payment",
            json!({"order_id": connector(json!(ORDER)),
            "payment_method_id": connector(json!("gift_card_7777844"))}),
        ),
        (
            "modify_pending_order_items",
            json!({"order_id": connector(json!(ORDER)),
            "item_ids": connector(json!(["9421195098"])), "new_item_ids": connector(json!(["1199058591"])),
            "payment_method_id": connector(json!("paypal_1038468"))}),
        ),
    ];
    for (i, (action, params)) in later.into_iter().enumerate() {
        let mut f = case_with(
            "statuses-1",
            &format!("statuses-1-{i}"),
            CUSTOMER,
            "change",
            json!([
                {"id": "s1", "action": action, "params": params}
            ]),
        );
        f.case.order_ids = vec![ORDER.to_string()];
        let d = engine.decide(&f.case, &f.plan).unwrap();
        assert_eq!(d.steps[0].decision, Outcome::Forbid, "{action} after the items were modified: {d:?}");
        let why = d.steps[0].reasons.iter().find(|r| r.rule == "precondition.order-status").map(|r| r.text.as_str());
        assert!(why.is_some_and(|t| t.contains("pending (item modified)")), "{action}: {d:?}");
    }
}
