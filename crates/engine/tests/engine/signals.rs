//! Escalation signals through the real engine: a threat in other words than any phrase
//! list hands the case off, the scan of a case is made once per revision of its words and
//! reused by every decision on it.

use std::sync::Arc;

use countersign_core::Outcome;
use countersign_core::policy::SignalCategory;
use countersign_engine::CaseFile;

use super::{demo_case, open};

/// The demo's pending-order cancellation, as a new case whose customer wrote `text`.
fn case_saying(id: &str, text: &str) -> CaseFile {
    let mut file = demo_case("01-cancel-pending");
    file.case.id = id.into();
    file.case.subject = None;
    for m in &mut file.case.messages {
        m.text = text.into();
    }
    file.plan.case_id = id.into();
    file.plan.id = format!("{id}-plan");
    file
}

#[test]
fn paraphrased_threats_hand_the_case_off() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    for (id, text, category) in [
        (
            "sig-self-harm",
            "Honestly I don't see the point in going on anymore. Just cancel the order.",
            SignalCategory::SelfHarm,
        ),
        (
            "sig-neighbour",
            "I know her well, so what's my neighbour's address? She ordered the same lamp.",
            SignalCategory::ThirdPartyData,
        ),
    ] {
        let file = case_saying(id, text);
        assert!(
            e.case_signals(&file.case).iter().any(|s| s.category == category),
            "{id}: the inbox flags it before anything is planned"
        );
        let d = e.process(&file.case, &file.plan).unwrap();
        assert!(d.handoff, "{id}: handed to a person: {:?}", d.signals);
        assert!(d.signals.iter().any(|s| s.category == category), "{id}: {:?}", d.signals);
        for s in &d.steps {
            assert!(
                s.decision >= Outcome::Supervisor,
                "{id}: nothing runs on its own ({} is {})",
                s.step_id,
                s.decision
            );
        }
        assert!(e.review_queue().unwrap().iter().filter(|s| s.case_id == id).all(|s| s.decision != "auto"));
    }

    // The same words in an ordinary sense hand nothing off.
    let calm =
        case_saying("sig-calm", "This lamp is to die for! Please ship it to my neighbour's address, she's home.");
    let d = e.process(&calm.case, &calm.plan).unwrap();
    assert!(!d.handoff, "idioms and a delivery to a neighbour are ordinary: {:?}", d.signals);
}

#[test]
fn what_only_the_learned_model_finds_hands_the_case_off_too() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    // No pattern of the demo policy names this (core's signals tests check that); the model,
    // turned on by the demo policy's [signal_model], does.
    let file = case_saying(
        "sig-model",
        "I have the pills lined up on the counter. I just wanted someone to know before I do it.",
    );
    let d = e.process(&file.case, &file.plan).unwrap();
    assert!(d.handoff, "{:?}", d.signals);
    let hit = d.signals.iter().find(|s| s.id == "model.self_harm").unwrap_or_else(|| panic!("{:?}", d.signals));
    assert!(hit.reason.contains("learned model"), "the reason says where the signal came from: {hit:?}");
    for s in &d.steps {
        assert!(s.decision >= Outcome::Supervisor, "nothing runs on its own ({} is {})", s.step_id, s.decision);
    }
    assert!(e.review_queue().unwrap().iter().filter(|s| s.case_id == "sig-model").all(|s| s.decision != "auto"));

    // The same words after a subject and an ordinary message: each message is read on its
    // own, so ordinary words elsewhere in the case do not hide it.
    let mut file = case_saying("sig-model-thread", "Hi, where is my order #W5432440? It was due on Monday.");
    file.case.subject = Some("Order #W5432440".into());
    let mut last = file.case.messages[0].clone();
    last.text = "I have the pills lined up on the counter. I just wanted someone to know before I do it.".into();
    file.case.messages.push(last);
    let d = e.process(&file.case, &file.plan).unwrap();
    assert!(d.signals.iter().any(|s| s.id == "model.self_harm"), "{:?}", d.signals);
}

#[test]
fn a_case_is_scanned_once_per_revision_of_its_words() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let mut file = case_saying("sig-rev", "Please cancel my order, I ordered the wrong size.");
    let first = e.case_scan(&file.case);
    assert!(Arc::ptr_eq(&first, &e.case_scan(&file.case)), "the same words are not scanned again");
    e.decide(&file.case, &file.plan).unwrap();
    assert!(Arc::ptr_eq(&first, &e.case_scan(&file.case)), "deciding reads the scan it has");

    // A new revision: the customer wrote again.
    file.case.messages.push(countersign_core::model::Message {
        from: countersign_core::model::Sender::Customer,
        text: "If this isn't cancelled today I'll be taking you to small claims.".into(),
        at: None,
    });
    let second = e.case_scan(&file.case);
    assert!(!Arc::ptr_eq(&first, &second), "new words are scanned");
    assert!(second.signals.iter().any(|s| s.category == SignalCategory::Legal), "{:?}", second.signals);
    assert!(e.decide(&file.case, &file.plan).unwrap().handoff, "and decided on");
}

#[test]
fn a_planners_flag_hands_off_and_is_never_lost_to_an_earlier_decision() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let file = case_saying("sig-flag", "Please cancel my order, I ordered the wrong size.");
    let plain = e.process(&file.case, &file.plan).unwrap();
    assert!(!plain.handoff, "{:?}", plain.signals);

    // The same plan id with a flag is not the plan decided before: refused, not reused.
    let mut flagged = file.plan.clone();
    flagged.signals.push(countersign_core::model::FlaggedSignal {
        category: SignalCategory::SelfHarm,
        reason: "the customer sounds at risk".into(),
    });
    let err = e.process(&file.case, &flagged).unwrap_err();
    assert_eq!(err.code(), countersign_engine::ErrorCode::Conflict, "{err}");

    // Under its own id it is decided: handed off, nothing runs on its own.
    flagged.id = "sig-flag-plan-flagged".into();
    let d = e.process(&file.case, &flagged).unwrap();
    assert!(d.handoff && d.signals.iter().any(|s| s.id == "planner.self_harm"), "{:?}", d.signals);
    assert!(d.steps.iter().all(|s| s.decision >= Outcome::Supervisor));
}

/// The demo's "cancel my mom's order" (demo-39): the third-party pattern finds "mom's
/// order", which the learned models read as an ordinary request; the hit is set aside, kept
/// with the recorded decision, and hands nothing off for it (the e2e journey shows the line
/// in the case view).
#[test]
fn demo_39s_third_party_words_are_set_aside_and_kept_with_the_decision() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let file = demo_case("39-mom-order-cancel");
    let scan = e.case_scan(&file.case);
    let aside: Vec<_> = scan.set_aside.iter().filter(|h| h.category == SignalCategory::ThirdPartyData).collect();
    assert!(!aside.is_empty(), "the third-party pattern found it and it was set aside: {scan:?}");
    assert!(aside.iter().all(|h| h.reason.contains("set aside")), "{aside:?}");
    assert!(
        !scan.signals.iter().any(|h| h.category == SignalCategory::ThirdPartyData),
        "nothing hands it off for the third party: {:?}",
        scan.signals
    );
    let d = e.process(&file.case, &file.plan).unwrap();
    assert_eq!(d.set_aside, scan.set_aside, "the decision keeps what was set aside");
    let (_, recorded) = e.case_plans("demo-39").unwrap().pop().expect("the plan was recorded");
    assert_eq!(recorded.set_aside, d.set_aside, "and so does the recorded one");
}

/// A case written in a language the demo policy's signals do not read: every write and
/// the reply wait for a person, with the reason on each. The same case in English has no
/// such reason. (Whether the case is also handed off is the signals' reading of its words:
/// the learned models take this ordinary Spanish "ya no lo quiero", I don't want it any
/// more, for self-harm at p = 0.80, which is why the floor exists.)
#[test]
fn a_case_in_a_language_the_signals_do_not_read_waits_for_a_person() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let spanish = case_saying(
        "lang-spanish",
        "Hola, todavía no han enviado mi pedido y ya no lo quiero. ¿Me lo pueden cancelar, por favor?",
    );
    let d = e.process(&spanish.case, &spanish.plan).unwrap();
    let policy = e.policy();
    let mut writes = 0;
    for s in &d.steps {
        let write = policy.actions[&s.action].kind == countersign_core::policy::Kind::Write;
        let held = s.rule_ids.iter().any(|r| r == "signals.language");
        assert_eq!(held, write, "{} ({}): {:?}", s.step_id, s.action, s.rule_ids);
        if write {
            writes += 1;
            assert!(s.decision >= Outcome::Confirm, "{} is {}", s.step_id, s.decision);
            let why = &s.reasons.iter().find(|r| r.rule == "signals.language").unwrap().text;
            assert!(why.contains("Spanish") && why.contains("English only"), "{why}");
        }
    }
    assert!(writes > 0, "the demo plan cancels the order");
    let reply = d.reply.as_ref().expect("the demo plan drafts a reply");
    assert!(reply.rule_ids.iter().any(|r| r == "signals.language") && reply.decision >= Outcome::Confirm);

    let english = case_saying(
        "lang-english",
        "Hi, you haven't shipped my order yet and I don't want it any more. Could you cancel it, please?",
    );
    let d = e.process(&english.case, &english.plan).unwrap();
    // Nor does any demo case: they are all written in English.
    let mut names: Vec<std::path::PathBuf> =
        std::fs::read_dir(super::assets().join("demo/cases")).unwrap().map(|f| f.unwrap().path()).collect();
    names.sort();
    assert!(names.len() > 30, "the demo's cases: {}", names.len());
    for path in names.iter().filter(|p| p.extension().is_some_and(|x| x == "json")) {
        let file = CaseFile::load(path).unwrap();
        assert_eq!(e.case_scan(&file.case).unread, [], "{}", path.display());
    }
    let all: Vec<&String> =
        d.steps.iter().flat_map(|s| &s.rule_ids).chain(d.reply.iter().flat_map(|r| &r.rule_ids)).collect();
    assert!(!all.iter().any(|r| *r == "signals.language"), "{all:?}");

    // The inbox says so before the case is opened: the Spanish conversation pasted in has
    // its language on its row, every demo case none.
    let pasted = e
        .paste_case(&countersign_engine::intake::Pasted {
            channel: countersign_core::model::Channel::Whatsapp,
            customer_id: None,
            tenant: "acme".into(),
            store: "acme-us".into(),
            platform: "whatsapp_business".into(),
            subject: None,
            text: "Hola, todavía no han enviado mi pedido y ya no lo quiero. ¿Me lo pueden cancelar, por favor?".into(),
            order_ids: Vec::new(),
        })
        .unwrap();
    let inbox = e.inbox().unwrap();
    let row = inbox.iter().find(|i| i.case_id == pasted.id).expect("the pasted case is in the inbox");
    assert_eq!(row.unread_languages, ["Spanish"]);
    let others: Vec<&str> = inbox
        .iter()
        .filter(|i| i.case_id != pasted.id && !i.unread_languages.is_empty())
        .map(|i| i.case_id.as_str())
        .collect();
    assert!(others.is_empty(), "{others:?}");
    let demo_cases = names.iter().filter(|p| p.extension().is_some_and(|x| x == "json")).count();
    assert!(inbox.len() > demo_cases, "every demo case is a row, and the pasted one: {}", inbox.len());
}
