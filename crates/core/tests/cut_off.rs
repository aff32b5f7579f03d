//! The policy's `[cut_off]`: what a team desktop without a fresh lease decides under; and
//! `[team.retention]`, how long the team keeps a tenant's cases.
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

#[test]
fn a_teams_retention_is_days_per_tenant_and_a_bad_one_is_refused_at_its_line() {
    let team = "\n[team]\nname = \"acme\"\nsigner = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"\n\
                service_key = \"00000000000000000000000000000000000000000000000000000000000000aa\"\n";
    let source = format!("{}{team}[team.retention]\nacme = 365\n\"*\" = 730\n", demo_source());
    let p = Policy::parse("policy.toml", &source).unwrap();
    let t = p.team.unwrap();
    assert_eq!((t.retention_of("acme"), t.retention_of("other")), (Some(365), Some(730)));
    let kept = Policy::parse("policy.toml", &format!("{}{team}", demo_source())).unwrap().team.unwrap();
    assert_eq!(kept.retention_of("acme"), None, "no retention: kept for good");

    let bad = format!("{}{team}[team.retention]\nacme = 0\n", demo_source());
    let line = bad.lines().count();
    let e = Policy::parse("policy.toml", &bad).unwrap_err();
    assert_eq!((e.line, e.column), (line, 8), "{e}");
    assert!(e.message.contains("team.retention.acme"), "{e}");
}
