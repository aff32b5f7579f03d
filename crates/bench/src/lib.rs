//! # countersign-bench
//!
//! Benchmarks of the policy decision ([`countersign_core::decide`]) against the
//! demo policy, next to the same allow/deny core of that policy written for
//! [Cedar](https://www.cedarpolicy.com) and evaluated by the `cedar-policy` crate.
//!
//! **Why a crate of its own:** `cedar-policy` is a heavy dependency (a parser, a
//! validator, an evaluator and their own dependency tree) that only this
//! comparison needs. Keeping it here, in a crate that is *not* one of the
//! workspace's `default-members`, means it never enters the normal build and
//! test (`cargo build`, `cargo test`, CI); it is compiled only when asked for:
//!
//! ```text
//! cargo bench -p countersign-bench --bench decide
//! ```
//!
//! This library holds what the bench (`benches/decide.rs`) and its agreement test
//! share: a realistic world ([`world`]), the Cedar translation of the permission
//! map ([`cedar`]), and the scenarios timed on both sides ([`scenarios`]).
//! Results are written up in `docs/benchmarks.md` (section *Policy decisions*).

pub mod cedar;
pub mod world;

use countersign_core::model::{Plan, Step};
use countersign_core::{Outcome, Policy, decide};

pub use cedar::{CedarEngine, CedarStep};
pub use world::World;

/// One timed scenario: a plan (one step or several) for countersign, and the
/// equivalent Cedar requests, one per step.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Short name, used as the criterion benchmark id.
    pub name: &'static str,
    /// What it exercises, for the report.
    pub what: &'static str,
    pub plan: Plan,
    pub cedar: Vec<CedarStep>,
    /// The outcome countersign must return for each step (checked before timing).
    pub expect: Vec<Outcome>,
}

impl Scenario {
    /// Number of steps (per-step figures divide by it).
    pub fn steps(&self) -> usize {
        self.plan.steps.len()
    }
}

fn plan_of(world: &World, id: &str, intent: &str, steps: Vec<Step>) -> Plan {
    Plan {
        id: id.into(),
        case_id: world.case.id.clone(),
        planner: "bench".into(),
        intent: intent.into(),
        steps,
        signals: Vec::new(),
        reply: None,
    }
}

/// The representative steps timed by the bench.
pub fn scenarios(world: &World) -> Vec<Scenario> {
    use world::{ME, cancel, change_email, get_customer, get_order, refund};
    let one = |name, what, step: Step, expect| {
        let cedar = vec![CedarStep::from_step(world, &[], &step)];
        Scenario { name, what, plan: plan_of(world, name, "support", vec![step]), cedar, expect: vec![expect] }
    };
    let mut out = vec![
        one(
            "read_own_order",
            "get_order_details of the customer's own order (auto)",
            get_order("s1", "#W1"),
            Outcome::Auto,
        ),
        one(
            "cancel_pending",
            "cancel_pending_order of an own pending order (confirm)",
            cancel("s1", "#W2"),
            Outcome::Confirm,
        ),
        one(
            "refund_tiered",
            "refund_partial of 250.00 on an own delivered order: three money rules fire (supervisor)",
            refund("s1", "#W4", "250.00"),
            Outcome::Supervisor,
        ),
        one(
            "lookalike_forbid",
            "refund_partiaI (capital I): not in the policy, denied by default, look-alike named (forbid)",
            {
                let mut s = refund("s1", "#W1", "20.00");
                s.action = "refund_partiaI".into();
                s
            },
            Outcome::Forbid,
        ),
    ];
    let steps = vec![
        get_customer("s1", ME),
        get_order("s2", "#W2"),
        cancel("s3", "#W2"),
        refund("s4", "#W1", "40.00"),
        change_email("s5", ME, "james.li@new-mail.example.com"),
    ];
    let mut cedar = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        cedar.push(CedarStep::from_step(world, &steps[..i], s));
    }
    out.push(Scenario {
        name: "plan_5_steps",
        what: "get_customer_details, get_order_details, cancel_pending_order, refund_partial 40.00, change_account_email",
        plan: plan_of(world, "plan_5_steps", "support", steps),
        cedar,
        expect: vec![
            Outcome::Auto,
            Outcome::Auto,
            Outcome::Confirm,
            Outcome::Confirm,
            Outcome::Supervisor,
        ],
    });
    out
}

/// Check, once and before any timing, that both engines do equivalent work on
/// every scenario: countersign returns the expected outcomes, and Cedar's
/// allow/deny equals countersign's executable/not-executable for every step,
/// with no Cedar evaluation error. Returns a description of the first mismatch.
pub fn check_agreement(policy: &Policy, world: &World, cedar: &CedarEngine, scenario: &Scenario) -> Result<(), String> {
    let d = decide(policy, &world.case, &scenario.plan, &world.facts)
        .map_err(|e| format!("{}: decide refused the plan: {e}", scenario.name))?;
    if d.handoff {
        return Err(format!(
            "{}: an escalation signal fired ({:?}); the bench's customer text must match none",
            scenario.name, d.signals
        ));
    }
    for ((sd, cs), want) in d.steps.iter().zip(&scenario.cedar).zip(&scenario.expect) {
        if sd.decision != *want {
            return Err(format!(
                "{} step {} ({}): countersign decided `{}`, the bench expects `{want}` (rules {:?})",
                scenario.name, sd.step_id, sd.action, sd.decision, sd.rule_ids
            ));
        }
        let resp = cedar.authorize(world, cs)?;
        let errors: Vec<String> = resp.diagnostics().errors().map(ToString::to_string).collect();
        if !errors.is_empty() {
            return Err(format!(
                "{} step {} ({}): Cedar evaluation errors {errors:?}",
                scenario.name, sd.step_id, sd.action
            ));
        }
        let allowed = resp.decision() == cedar_policy::Decision::Allow;
        if allowed != sd.decision.executable() {
            let reasons: Vec<String> = resp.diagnostics().reason().map(ToString::to_string).collect();
            return Err(format!(
                "{} step {} ({}): Cedar says {} (policies {reasons:?}) but countersign decided `{}` (rules {:?}); the two policies are not equivalent",
                scenario.name,
                sd.step_id,
                sd.action,
                if allowed { "allow" } else { "deny" },
                sd.decision,
                sd.rule_ids
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cedar_and_countersign_agree_on_every_scenario() {
        let policy = world::demo_policy();
        let w = World::new();
        let cedar = CedarEngine::new(&w).expect("cedar setup");
        cedar::check_names(&policy).unwrap_or_else(|e| panic!("{e}"));
        for s in scenarios(&w) {
            check_agreement(&policy, &w, &cedar, &s).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    /// The agreement is not vacuous: Cedar denies what countersign forbids on
    /// the facts (someone else's order, a delivered order cancelled, a refund
    /// above what is refundable, an account op from a social DM, an e-mail change for a
    /// customer nothing verifies).
    #[test]
    fn cedar_denies_what_countersign_forbids() {
        use world::{OTHER, cancel, change_email, get_order, refund};
        let policy = world::demo_policy();
        let base = World::new();
        let cedar = CedarEngine::new(&base).expect("cedar setup");
        let mut dm = World::new();
        dm.case.channel = countersign_core::model::Channel::InstagramDm;
        let mut unverified = World::new();
        // Nothing in the evidence verifies who writes (the case's own claim counts for nothing).
        unverified.facts.identity = countersign_core::decide::IdentityFacts::default();
        let cases: Vec<(&World, Step)> = vec![
            (&base, get_order("s1", "#W3")),
            (&base, cancel("s1", "#W1")),
            (&base, cancel("s1", "#W6")),
            (&base, refund("s1", "#W5", "20.00")),
            (&base, refund("s1", "#W2", "5.00")),
            (&base, change_email("s1", OTHER, "x@example.com")),
            (&dm, change_email("s1", world::ME, "x@example.com")),
        ];
        // Below the verification an action needs, countersign's answer is advice only
        // (`recommend`: never executed), which Cedar's deny matches.
        let advice = vec![(&unverified, change_email("s1", world::ME, "x@example.com"))];
        let expected =
            cases.into_iter().map(|c| (c, Outcome::Forbid)).chain(advice.into_iter().map(|c| (c, Outcome::Recommend)));
        for ((w, step), want) in expected {
            let name = step.action.clone();
            let s = Scenario {
                name: "deny",
                what: "",
                cedar: vec![CedarStep::from_step(w, &[], &step)],
                plan: plan_of(w, "deny", "support", vec![step]),
                expect: vec![want],
            };
            check_agreement(&policy, w, &cedar, &s).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
