//! Promises made in sent replies: recorded with the reply, due on the day they state, and
//! checked on the demo store (a real HTTP server on loopback) once that day has passed.

use countersign_connectors::credentials::{CredentialName, CredentialStore, Secret};

use super::*;

#[test]
fn a_reply_s_promises_are_checked_on_the_platform_once_their_day_has_passed() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Movable::at("2026-12-03T10:00:00Z"); // a Thursday
    // Its own keyring namespace: this test takes the platform's token away for a while.
    let service = format!("countersign-promises-test-{}", std::process::id());
    let (engine, _server, keyring) = live_engine_in(&service, dir.path(), clock.clone(), |c| Arc::new(c));

    // A refund that ran, and a reply that promises it.
    let refund_file = damaged_item_case();
    let (_, refund) = run_refund(&engine, &refund_file);
    assert_eq!(refund.state, StepState::Succeeded, "{refund:?}");
    let refund_text = "Sorry about the dent, Ava. We will refund you for the damage; card refunds take 5-7 business \
                       days to appear.";
    engine.send_reply(&refund_file.case, &refund_file.plan.id, refund_text, Outcome::Confirm, None).unwrap();

    // A pending order, and a reply that promises its delivery by Friday.
    let late_file = recorded(&engine, "01-cancel-pending");
    let late_text = "Thanks Ana. Your order is on its way and will arrive by Friday.";
    engine.send_reply(&late_file.case, &late_file.plan.id, late_text, Outcome::Confirm, None).unwrap();

    let state = |e: &Engine| -> Vec<(String, String, String, String)> {
        let mut v: Vec<_> =
            e.promises().unwrap().into_iter().map(|p| (p.case_id, p.category, p.due, p.state)).collect();
        v.sort();
        v
    };
    let row = |case: &str, category: &str, due: &str, state: &str| {
        (case.to_string(), category.to_string(), due.to_string(), state.to_string())
    };
    assert_eq!(
        state(&engine),
        [
            row(&late_file.case.id, "delivery_date", "2026-12-04", "not_due"),
            row(&refund_file.case.id, "refund", "2026-12-14", "not_due"),
        ],
        "seven working days after a Thursday is the Monday week after; Friday is the next day"
    );
    let made = engine.promises().unwrap();
    let refund_promise = made.iter().find(|p| p.category == "refund").unwrap();
    assert_eq!(
        refund_promise.sentence,
        "We will refund you for the damage; card refunds take 5-7 business days to appear."
    );
    assert_eq!(refund_promise.owner, "frontline", "the reply policy's owner owns it");
    assert!(engine.check_promises().unwrap().checked.is_empty(), "nothing is due yet");

    // Saturday: Friday's promise is due; the order is still pending.
    clock.advance(jiff::SignedDuration::from_hours(48));
    let sweep = engine.check_promises().unwrap();
    assert_eq!(sweep.checked.len(), 1, "{sweep:?}");
    let late = &sweep.checked[0];
    assert_eq!((late.category.as_str(), late.state.as_str()), ("delivery_date", "broken"), "{late:?}");
    assert!(late.reason.as_deref().unwrap().contains("is pending"), "{late:?}");

    // The Tuesday after the refund's day, with the platform's token gone: nothing can be read, nothing is recorded,
    // and the promise stays due.
    clock.advance(jiff::SignedDuration::from_hours(24 * 10));
    let name = CredentialName::new("demo_seller_center", "demo").unwrap();
    keyring.delete(&name).unwrap();
    let sweep = engine.check_promises().unwrap();
    assert!(sweep.checked.is_empty(), "{sweep:?}");
    assert_eq!(sweep.unreadable.len(), 1, "{sweep:?}");
    assert_eq!(state(&engine)[1].3, "due");

    // The token back: the refund that ran shows on the order, so the promise was kept.
    keyring.set(&name, &Secret::new("engine-test-token-5b2e")).unwrap();
    let sweep = engine.check_promises().unwrap();
    assert_eq!(sweep.checked.len(), 1, "{sweep:?}");
    let kept = &sweep.checked[0];
    assert_eq!(kept.state, "kept", "{kept:?}");
    assert!(kept.reason.as_deref().unwrap().starts_with("18.00 USD refunded on order #W4817420"), "{kept:?}");
    assert!(engine.check_promises().unwrap().checked.is_empty(), "a checked promise is checked once");
    assert_eq!(
        state(&engine).into_iter().map(|r| r.3).collect::<Vec<_>>(),
        ["broken", "kept"],
        "the list shows how each went"
    );

    // Each check is evidence: the orders as read, beside the chain that still verifies.
    let checks = engine.log_list(&LogFilter { kind: Some("promise_checked".into()), ..LogFilter::default() }).unwrap();
    assert_eq!(checks.len(), 2);
    assert!(checks.iter().all(|e| e.actor == "promise-check"));
    assert!(engine.log_verify().unwrap().ok);
}
