//! Earned autonomy (`countersign_core::autonomy`): each band's record, the bars, and the
//! drafts a proposal writes, checked by deciding steps under the draft: a loosening moves
//! its band and channel and nothing else; a tightening holds its band from its bottom up.
//! (The engine's test reads the record from a real log and simulates the drafts.)

use countersign_core::autonomy::{Direction, Proposal, Review, Reviewed, band_of, propose, record};
use jiff::{SignedDuration, Timestamp};

use super::*;

/// The demo policy with a bar a test can reach: 10 decisions, 80 % unchanged, 3 people,
/// no reversal; tightening at 3 reversals or 25 % of 8 rejected.
fn low_bar() -> (Policy, String) {
    let src = DEMO
        .replacen("min_decisions = 200", "min_decisions = 10", 1)
        .replacen("min_unchanged_pct = 98", "min_unchanged_pct = 80", 1)
        .replacen("min_approvers = 5 ", "min_approvers = 3 ", 1)
        .replacen("min_decisions = 20", "min_decisions = 8", 1);
    assert_ne!(src, DEMO);
    (Policy::parse("policy.toml", &src).unwrap(), src)
}

fn now() -> Timestamp {
    "2026-11-21T10:00:00Z".parse().unwrap()
}

/// A refund of `amount` decided `decision` by `deciding`, on `channel`, `days` ago.
fn refund_step(
    n: usize,
    amount: &str,
    channel: Channel,
    decision: Outcome,
    deciding: &str,
    review: Review,
) -> Reviewed {
    let at = now() - SignedDuration::from_hours(24 * 3) + SignedDuration::from_mins(n as i64);
    Reviewed {
        case_id: format!("case-{n}"),
        plan_id: format!("plan-{n}"),
        step_id: "s1".into(),
        action: "refund_partial".into(),
        channel,
        money: Some(format!("{amount} USD").parse().unwrap()),
        decision,
        deciding: vec![deciding.to_string()],
        at,
        review,
        reversal: None,
    }
}

fn approved(by: &str, at: Timestamp, after_secs: i64) -> Review {
    Review::Unchanged { by: by.into(), at: at + SignedDuration::from_secs(after_secs) }
}

/// Ten refunds of $40 on email held at confirm by the $25 rule, approved after a minute
/// by three people, one edited, one rejected, two rubber-stamped by a fourth person.
fn forty_on_email() -> Vec<Reviewed> {
    let mut steps = Vec::new();
    for n in 0..12 {
        let mut s =
            refund_step(n, "40.00", Channel::Email, Outcome::Confirm, "rule.refund.over-auto-limit", Review::Ran);
        s.review = match n {
            10 => Review::Edited { by: "agent-1".into() },
            11 => Review::Rejected { by: "agent-2".into() },
            _ => approved(["agent-1", "agent-2", "agent-3"][n % 3], s.at, 60),
        };
        steps.push(s);
    }
    for n in 12..14 {
        let s = refund_step(n, "40.00", Channel::Email, Outcome::Confirm, "rule.refund.over-auto-limit", Review::Ran);
        steps.push(Reviewed { review: approved("agent-4", s.at, 3), ..s });
    }
    steps
}

fn decide_one(policy: &Policy, channel: Channel, s: Step) -> Outcome {
    let mut w = world();
    w.case.channel = channel;
    w.case.order_ids = vec!["#W4".into()];
    decide(policy, &w.case, &plan_for(&w, "support", vec![s]), &w.facts).unwrap().steps[0].decision
}

fn draft(p: &Proposal) -> Policy {
    Policy::parse("draft.toml", p.draft.as_deref().unwrap_or_else(|| panic!("no draft: {:?}", p.blocked))).unwrap()
}

#[test]
fn bands_split_amounts_at_the_policys_bounds() {
    let p = demo();
    let a = p.autonomy.as_ref().unwrap();
    let band = |amount: &str| band_of(a, "refund_partial", Some(&format!("{amount} USD").parse().unwrap())).unwrap();
    assert_eq!(band("10.00").label(), "up to 10.00 USD");
    assert_eq!(band("10.01").label(), "over 10.00 USD up to 25.00 USD");
    assert_eq!(band("40.00").label(), "over 25.00 USD up to 50.00 USD");
    assert_eq!(band("250.00").label(), "over 200.00 USD");
    assert_eq!(band_of(a, "cancel_pending_order", None).unwrap().label(), "any amount");
    assert_eq!(band_of(a, "get_order_details", None), None, "an action not on record has no band");
    assert_eq!(band_of(a, "refund_partial", Some(&"40.00 EUR".parse().unwrap())), None, "another currency");
}

#[test]
fn the_record_counts_people_not_rubber_stamps() {
    let (policy, _) = low_bar();
    let records = record(policy.autonomy.as_ref().unwrap(), &forty_on_email(), now());
    assert_eq!(records.len(), 1, "{records:?}");
    let r = &records[0];
    assert_eq!(r.band_label, "over 25.00 USD up to 50.00 USD");
    assert_eq!((r.channel, r.decision), (Channel::Email, Outcome::Confirm));
    assert_eq!((r.decisions, r.unchanged, r.edited, r.rejected, r.ran), (12, 10, 1, 1, 0));
    assert_eq!(r.rubber_stamps, 2, "approvals 3 s after the decision are under the 10 s floor");
    assert_eq!(r.approvers, 3, "agent-4 only rubber-stamped: not one of the people counted");
    assert_eq!(r.deciding.get("rule.refund.over-auto-limit"), Some(&12));
}

#[test]
fn a_band_that_passes_the_bar_is_proposed_looser_in_that_band_and_channel_only() {
    let (policy, src) = low_bar();
    let records = record(policy.autonomy.as_ref().unwrap(), &forty_on_email(), now());
    let proposals = propose(&policy, &src, &records);
    assert_eq!(proposals.len(), 1);
    let p = &proposals[0];
    assert_eq!((p.direction, p.from, p.to), (Direction::Loosen, Outcome::Confirm, Outcome::Auto));
    assert!(p.why.contains("10 of 12 approved unchanged by 3 people"), "{}", p.why);
    let d = draft(p);
    assert_eq!(d.version, policy.version + 1);
    assert!(p.draft.as_deref().unwrap().contains("# Countersign permission map"), "the policy's comments are kept");
    // The band moves on its channel…
    assert_eq!(decide_one(&policy, Channel::Email, refund("s1", "#W4", "40.00")), Outcome::Confirm);
    assert_eq!(decide_one(&d, Channel::Email, refund("s1", "#W4", "40.00")), Outcome::Auto);
    assert_eq!(decide_one(&d, Channel::Email, refund("s1", "#W4", "50.00")), Outcome::Auto);
    // …and nothing else does: above the band, on another channel, another action.
    assert_eq!(decide_one(&d, Channel::Email, refund("s1", "#W4", "50.01")), Outcome::Confirm);
    assert_eq!(decide_one(&d, Channel::Chat, refund("s1", "#W4", "40.00")), Outcome::Confirm);
    assert_eq!(decide_one(&d, Channel::Email, refund("s1", "#W4", "250.00")), Outcome::Supervisor);
    for amount in ["5.00", "15.00", "30.00"] {
        for ch in [Channel::Email, Channel::Chat, Channel::InstagramDm] {
            assert_eq!(
                decide_one(&d, ch, coupon("s1", amount)),
                decide_one(&policy, ch, coupon("s1", amount)),
                "a coupon of {amount} on {ch}"
            );
        }
    }
}

#[test]
fn short_of_the_bar_by_one_nothing_is_proposed() {
    let (policy, src) = low_bar();
    let a = policy.autonomy.as_ref().unwrap();
    // Two people instead of three.
    let two: Vec<Reviewed> = forty_on_email()
        .into_iter()
        .map(|mut s| {
            if let Review::Unchanged { by, .. } = &mut s.review
                && by == "agent-3"
            {
                *by = "agent-1".into();
            }
            s
        })
        .collect();
    assert!(propose(&policy, &src, &record(a, &two, now())).is_empty());
    // A third rejection: 10 of 13 is under 80 %.
    let mut rejected = forty_on_email();
    rejected.push(refund_step(
        20,
        "40.00",
        Channel::Email,
        Outcome::Confirm,
        "rule.refund.over-auto-limit",
        Review::Rejected { by: "agent-2".into() },
    ));
    rejected.push(refund_step(
        21,
        "40.00",
        Channel::Email,
        Outcome::Confirm,
        "rule.refund.over-auto-limit",
        Review::Rejected { by: "agent-2".into() },
    ));
    let r = record(a, &rejected, now());
    assert_eq!((r[0].decisions, r[0].unchanged), (14, 10));
    assert!(propose(&policy, &src, &r).is_empty(), "10 of 14 unchanged is under 80 %");
    // One reversal in the window.
    let mut reversed = forty_on_email();
    reversed[0].reversal = Some((now() - SignedDuration::from_hours(24), "re-opened".into()));
    assert!(propose(&policy, &src, &record(a, &reversed, now())).is_empty());
    // The same reversal 40 days ago is outside the 30-day window.
    reversed[0].reversal = Some((now() - SignedDuration::from_hours(24 * 40), "re-opened".into()));
    assert_eq!(propose(&policy, &src, &record(a, &reversed, now())).len(), 1);
}

#[test]
fn an_actions_base_decision_moves_for_one_channel_and_stays_everywhere_else() {
    let (policy, src) = low_bar();
    let steps: Vec<Reviewed> = (0..10)
        .map(|n| {
            let mut s =
                refund_step(n, "1.00", Channel::WebForm, Outcome::Confirm, "action.cancel_pending_order", Review::Ran);
            s.action = "cancel_pending_order".into();
            s.money = None;
            s.review = approved(["agent-1", "agent-2", "agent-3"][n % 3], s.at, 30);
            s
        })
        .collect();
    let proposals = propose(&policy, &src, &record(policy.autonomy.as_ref().unwrap(), &steps, now()));
    assert_eq!(proposals.len(), 1);
    let d = draft(&proposals[0]);
    assert_eq!(decide_one(&d, Channel::WebForm, cancel("s1", "#W2")), Outcome::Auto);
    for ch in Channel::ALL.into_iter().filter(|c| *c != Channel::WebForm) {
        assert_eq!(decide_one(&d, ch, cancel("s1", "#W2")), Outcome::Confirm, "{ch}");
    }
}

#[test]
fn a_band_above_a_rules_threshold_waits_for_the_bands_below_it() {
    let (policy, src) = low_bar();
    let steps: Vec<Reviewed> =
        forty_on_email().into_iter().map(|s| Reviewed { money: Some("80.00 USD".parse().unwrap()), ..s }).collect();
    let proposals = propose(&policy, &src, &record(policy.autonomy.as_ref().unwrap(), &steps, now()));
    assert_eq!(proposals.len(), 1);
    let p = &proposals[0];
    assert!(p.draft.is_none());
    assert!(p.blocked.as_deref().unwrap().contains("only after the bands below it"), "{:?}", p.blocked);
}

#[test]
fn a_band_reversed_again_and_again_is_proposed_stricter_from_its_bottom_up() {
    let (policy, src) = low_bar();
    let steps: Vec<Reviewed> = (0..6)
        .map(|n| {
            let mut s = refund_step(n, "8.00", Channel::Whatsapp, Outcome::Auto, "action.refund_partial", Review::Ran);
            if n < 3 {
                s.reversal = Some((now() - SignedDuration::from_hours(2), "the customer's bank reversed it".into()));
            }
            s
        })
        .collect();
    let records = record(policy.autonomy.as_ref().unwrap(), &steps, now());
    assert_eq!((records[0].ran, records[0].reversals), (6, 3));
    let proposals = propose(&policy, &src, &records);
    assert_eq!(proposals.len(), 1);
    let p = &proposals[0];
    assert_eq!((p.direction, p.from, p.to), (Direction::Tighten, Outcome::Auto, Outcome::Confirm));
    let d = draft(p);
    assert_eq!(decide_one(&d, Channel::Whatsapp, refund("s1", "#W4", "8.00")), Outcome::Confirm);
    assert_eq!(decide_one(&d, Channel::Chat, refund("s1", "#W4", "8.00")), Outcome::Auto);
}

#[test]
fn bad_autonomy_tables_point_at_the_problem() {
    for (edit, needle, message) in [
        (
            ("action = \"cancel_pending_order\"", "action = \"cancel_order\""),
            "action = \"cancel_order\"",
            "autonomy band for unknown action",
        ),
        (
            ("amounts = [\"10.00 USD\", \"25.00 USD\"]", "amounts = [\"25.00 USD\", \"10.00 USD\"]"),
            "amounts = [\"25.00 USD\", \"10.00 USD\"]",
            "must rise",
        ),
        (
            ("action = \"cancel_pending_order\"", "action = \"cancel_pending_order\"\namounts = [\"5.00 USD\"]"),
            "amounts = [\"5.00 USD\"]",
            "has no money parameter",
        ),
        (("min_approvers = 5 ", "min_approvers = 1 "), "min_approvers = 1 ", "from 2"),
    ] {
        let src = DEMO.replacen(edit.0, edit.1, 1);
        let e = parse_err(|_| src.clone());
        let line = line_of(&src, needle);
        assert!(e.starts_with(&format!("policy.toml:{line}:")), "{e} (want line {line})");
        assert!(e.contains(message), "{e}");
    }
}

#[test]
fn a_conversation_resolved_and_opened_again_after_the_step_ran_is_a_reversal() {
    use countersign_core::autonomy::reopened;
    let at = |t: &str| t.parse::<Timestamp>().unwrap();
    let ran = at("2026-11-21T10:00:00Z");
    let states = |s: &[(&str, &str)]| s.iter().map(|(t, st)| (at(t), st.to_string())).collect::<Vec<_>>();
    let back = states(&[
        ("2026-11-21T09:00:00Z", "open"),
        ("2026-11-21T11:00:00Z", "resolved"),
        ("2026-11-22T08:00:00Z", "open"),
    ]);
    assert_eq!(reopened(Some(&back), ran).map(|(t, _)| t), Some(at("2026-11-22T08:00:00Z")));
    // Resolved before it ran, open after: the step answered an open complaint.
    let before = states(&[("2026-11-21T09:00:00Z", "resolved"), ("2026-11-21T11:00:00Z", "open")]);
    assert_eq!(reopened(Some(&before), ran), None);
    // Resolved and never opened again.
    assert_eq!(reopened(Some(&states(&[("2026-11-21T11:00:00Z", "resolved")])), ran), None);
    assert_eq!(reopened(None, ran), None);
}

/// Steps of `action` decided `decision` by `deciding`, approved by three people.
fn earned(action: &str, amount: Option<&str>, channel: Channel, decision: Outcome, deciding: &str) -> Vec<Reviewed> {
    (0..10)
        .map(|n| {
            let mut s = refund_step(n, "1.00", channel, decision, deciding, Review::Ran);
            s.action = action.into();
            s.money = amount.map(|a| format!("{a} USD").parse().unwrap());
            s.review = approved(["agent-1", "agent-2", "agent-3"][n % 3], s.at, 30);
            s
        })
        .collect()
}

#[test]
fn a_rule_whose_totals_add_up_several_actions_is_left_for_a_person() {
    // `money.case-total` adds refunds and coupons up to $150 on a case: split for refunds
    // alone, each part would count its own action only.
    let (policy, src) = low_bar();
    let src = src.replacen(
        "case_total_over = \"150.00 USD\"",
        "case_total_over = \"150.00 USD\"\namount_over = \"100.00 USD\"",
        1,
    );
    let policy = Policy::parse("policy.toml", &src).unwrap_or_else(|e| panic!("{e} / {}", policy.id));
    let steps = earned("refund_partial", Some("150.00"), Channel::Email, Outcome::Supervisor, "rule.money.case-total");
    let proposals = propose(&policy, &src, &record(policy.autonomy.as_ref().unwrap(), &steps, now()));
    assert_eq!(proposals.len(), 1, "{proposals:?}");
    let blocked = proposals[0].blocked.as_deref().unwrap_or_default();
    assert!(blocked.contains("totals it adds up with create_goodwill_coupon"), "{blocked:?}");
}

#[test]
fn a_money_band_in_a_policy_of_several_currencies_is_left_for_a_person() {
    let (_, src) = low_bar();
    let src = src.replacen("currencies = [\"USD\"]", "currencies = [\"USD\", \"EUR\"]", 1);
    let policy = Policy::parse("policy.toml", &src).unwrap();
    let steps =
        earned("refund_partial", Some("40.00"), Channel::Email, Outcome::Confirm, "rule.refund.over-auto-limit");
    let proposals = propose(&policy, &src, &record(policy.autonomy.as_ref().unwrap(), &steps, now()));
    let blocked = proposals[0].blocked.as_deref().unwrap_or_default();
    assert!(blocked.contains("2 currencies"), "an amount band holds one currency: {blocked:?}");
}

#[test]
fn a_record_that_asks_for_what_the_policy_in_force_does_proposes_nothing() {
    let (policy, src) = low_bar();
    let a = policy.autonomy.as_ref().unwrap();
    let first = propose(&policy, &src, &record(a, &forty_on_email(), now()));
    let signed_src = first[0].draft.clone().unwrap();
    let signed = Policy::parse("policy.toml", &signed_src).unwrap();
    // The same record (made under the earlier policy) under the signed draft: the band is
    // no longer held at confirm on email, so nothing more is proposed.
    assert!(
        propose(&signed, &signed_src, &record(signed.autonomy.as_ref().unwrap(), &forty_on_email(), now())).is_empty()
    );
    // A tightening the policy already holds: refunds on WhatsApp need a click from $0 up.
    let reversed: Vec<Reviewed> =
        earned("refund_partial", Some("8.00"), Channel::Whatsapp, Outcome::Auto, "action.refund_partial")
            .into_iter()
            .map(|mut s| {
                s.review = Review::Ran;
                s.reversal = Some((now() - SignedDuration::from_hours(1), "reversed".into()));
                s
            })
            .collect();
    let held = src.replacen(
        "channels = [\"instagram_dm\", \"tiktok_dm\", \"facebook_messenger\"]",
        "channels = [\"instagram_dm\", \"tiktok_dm\", \"facebook_messenger\", \"whatsapp\"]",
        1,
    );
    let held = Policy::parse("policy.toml", &held).unwrap();
    assert_eq!(propose(&policy, &src, &record(a, &reversed, now())).len(), 1, "the demo runs them on their own");
    assert!(propose(&held, &src, &record(a, &reversed, now())).is_empty(), "a rule holds them already");
}

#[test]
fn the_engine_ending_a_review_is_no_persons_answer() {
    use countersign_core::autonomy::Gather;
    use countersign_core::evidence::{Event, Verdict};
    let case = world().case;
    let mut step = refund("s1", "#W4", "40.00");
    step.id = "s1".into();
    let plan = Plan {
        id: "p1".into(),
        case_id: case.id.clone(),
        planner: "test".into(),
        intent: "refund".into(),
        steps: vec![step],
        signals: Vec::new(),
        reply: None,
    };
    let mut w = world();
    w.case.channel = Channel::Email;
    let decision = decide(&demo(), &w.case, &plan, &w.facts).unwrap();
    assert_eq!(decision.steps[0].decision, Outcome::Confirm);
    let review = |verdict, by_engine| Event::ReviewDecided {
        plan_id: "p1".into(),
        step_id: "s1".into(),
        step_digest: decision.steps[0].step_digest.clone(),
        policy_hash: decision.policy_hash.clone(),
        verdict,
        by: Operator { id: "agent-1".into(), role: "agent".into() },
        reason: "r".into(),
        grant: None,
        by_engine,
    };
    let t = |m: i64| now() + SignedDuration::from_mins(m);
    let gathered = |events: Vec<Event>| {
        let mut g = Gather::default();
        g.add("", 1, t(0), "agent-1", &Event::CaseOpened { case: w.case.clone() });
        g.add("", 2, t(0), "agent-1", &Event::Decided { decision: decision.clone(), inputs: None });
        for (i, e) in events.iter().enumerate() {
            g.add("", 3 + i as u64, t(1 + i as i64), "agent-1", e);
        }
        g.finish().into_iter().map(|r| r.review).collect::<Vec<_>>()
    };
    // Approved, then the approval expired before it ran: still approved.
    let expired = gathered(vec![review(Verdict::Approved, false), review(Verdict::Rejected, true)]);
    assert!(matches!(expired.as_slice(), [Review::Unchanged { .. }]), "{expired:?}");
    // Only the engine's ending (decided under another policy): no answer at all.
    assert!(gathered(vec![review(Verdict::Rejected, true)]).is_empty());
    // A person's rejection counts.
    assert!(matches!(gathered(vec![review(Verdict::Rejected, false)]).as_slice(), [Review::Rejected { .. }]));
}
