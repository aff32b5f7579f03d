//! The policy's `[cut_off]`: what a team desktop without a fresh lease decides under.
//! (Decisions under it are driven through real engines in `crates/host/tests/team.rs`.)
#![allow(clippy::unwrap_used)]

use countersign_core::Policy;
use countersign_core::policy::Outcome;

fn demo_source() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../assets/demo/policy.toml")).unwrap()
}

#[test]
fn without_a_section_the_floors_are_confirm_for_writes_and_recommend_for_money() {
    let p = Policy::parse("policy.toml", &demo_source()).unwrap();
    assert_eq!((p.cut_off.writes, p.cut_off.money, p.cut_off.lease_secs), (Outcome::Confirm, Outcome::Recommend, 30));
}

#[test]
fn an_admin_sets_the_floors_and_a_bad_lease_is_refused_at_its_line() {
    let source =
        format!("{}\n[cut_off]\nwrites = \"supervisor\"\nmoney = \"forbid\"\nlease_secs = 12\n", demo_source());
    let p = Policy::parse("policy.toml", &source).unwrap();
    assert_eq!((p.cut_off.writes, p.cut_off.money, p.cut_off.lease_secs), (Outcome::Supervisor, Outcome::Forbid, 12));

    let bad = format!("{}\n[cut_off]\nlease_secs = 1\n", demo_source());
    let line = bad.lines().count();
    let e = Policy::parse("policy.toml", &bad).unwrap_err();
    assert_eq!((e.line, e.column), (line, 14), "{e}");
    assert!(e.message.contains("lease_secs"), "{e}");

    let unknown = format!("{}\n[cut_off]\nwrite = \"auto\"\n", demo_source());
    let e = Policy::parse("policy.toml", &unknown).unwrap_err();
    assert!(e.message.contains("unknown field"), "{e}");
}
