//! The local planner: offline, deterministic playbooks.
//!
//! 1. **Read** the case: intents (main one first) and escalation triggers from the
//!    customer's normalised text ([`intents`]).
//! 2. **Identify**: the customer comes from the case's structured fields. An unidentified
//!    customer is looked up by the email, or name and zip, they typed (a proposed step — a
//!    value from the conversation never runs a read on its own), or asked to identify.
//! 3. **Look**: linked orders, the account, products — through the context's governed
//!    reads. A read the policy refuses is still proposed as a step for a person.
//! 4. **Build** steps with parameters taken from what the reads returned (`connector`
//!    provenance), from the customer's text (`customer_message`), or from the playbook
//!    (`policy`, which the engine downgrades to `model` when no read backs it, so the
//!    policy's provenance rule applies to amounts a playbook chose).
//! 5. **Draft** a reply: facts from the reads in our own words, each rule quoted from a
//!    passage the knowledge search returned, with a numbered citation; a clarifying
//!    question when something needed is missing; and honesty about what it could not see.
//!
//! Escalated cases keep their reads (for the team lead) and get no write; threats,
//! self-harm and requests about other people get no step at all.
//!
//! What the playbooks say is workspace content, not code: the phrases that pick intents
//! and branches, the reply's sentences, the sources quoted, step rationales and fixed
//! values are in a playbooks file ([`playbooks`]; the demo's is
//! `assets/demo/playbooks.toml`, which [`LocalPlanner::new`] carries built in). The code
//! decides which branch applies and builds the steps from what the reads returned:
//!
//! - `builder.rs`: the plan being built, the order playbooks run in, escalations,
//!   identification and the first reads;
//! - `orders.rs`: order status, cancellation, returns, item changes, address, payment,
//!   refunds; `account.rs`: goodwill, account recovery, email change, products;
//! - `records.rs`: orders and items as reads return them, values typed by the customer;
//! - `compose.rs`: the reply draft and its quotes; `intents.rs`: reading the intents.

mod account;
mod builder;
mod compose;
pub mod intents;
mod orders;
pub mod playbooks;
mod records;

use std::path::Path;
use std::sync::{Arc, LazyLock};

use countersign_core::model::{Case, Plan};
use countersign_core::normalize::normalize;
use sha2::{Digest, Sha256};

use crate::context::PlanningContext;
use crate::{Planner, PlannerError};
use builder::Builder;
pub use compose::Source;
pub use intents::{Escalation, Intent, Reading};
pub use playbooks::{PlaybookError, Playbooks};

/// The demo playbooks, built in: what a workspace that names no playbooks file gets.
const DEMO_PLAYBOOKS: &str = include_str!("../../../../assets/demo/playbooks.toml");

static DEMO: LazyLock<Arc<Playbooks>> = LazyLock::new(|| {
    #[allow(clippy::expect_used)] // a file of this repository; a test parses it, so a mistake fails at once
    Arc::new(Playbooks::parse("assets/demo/playbooks.toml", DEMO_PLAYBOOKS).expect("the demo playbooks parse"))
});

/// The offline playbook planner.
#[derive(Debug, Clone)]
pub struct LocalPlanner {
    playbooks: Arc<Playbooks>,
}

impl Default for LocalPlanner {
    fn default() -> LocalPlanner {
        LocalPlanner::new()
    }
}

impl LocalPlanner {
    /// The planner with the demo playbooks (`assets/demo/playbooks.toml`, built in).
    pub fn new() -> LocalPlanner {
        LocalPlanner { playbooks: Arc::clone(&DEMO) }
    }

    /// The planner with the playbooks file a workspace names. Errors name its
    /// `file:line:column`.
    pub fn load(path: &Path) -> Result<LocalPlanner, PlaybookError> {
        Ok(LocalPlanner::with_playbooks(Playbooks::load(path)?))
    }

    pub fn with_playbooks(playbooks: Playbooks) -> LocalPlanner {
        LocalPlanner { playbooks: Arc::new(playbooks) }
    }

    pub fn playbooks(&self) -> &Playbooks {
        &self.playbooks
    }

    /// The intents and escalation the planner reads in a case (for evaluation and display).
    pub fn read(&self, case: &Case) -> Reading {
        let texts: Vec<String> = case.customer_text().map(normalize).collect();
        intents::read(&self.playbooks.reading, &texts, case.customer.is_some())
    }
}

impl Planner for LocalPlanner {
    fn name(&self) -> &str {
        "local"
    }

    fn plan(&self, case: &Case, ctx: &dyn PlanningContext) -> Result<Plan, PlannerError> {
        let reading = self.read(case);
        let mut b = Builder::new(case, ctx, &self.playbooks, reading.clone());
        b.run()?;
        let (steps, reply) = b.finish();
        let mut plan = Plan {
            id: String::new(),
            case_id: case.id.clone(),
            planner: "local".into(),
            intent: reading.main().as_str().to_string(),
            steps,
            signals: Vec::new(),
            reply: Some(reply),
        };
        plan.id = plan_id(&plan);
        Ok(plan)
    }
}

/// The same case and the same platform data give the same plan, and the same id.
fn plan_id(plan: &Plan) -> String {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(plan).unwrap_or_default());
    format!("local-{}", &hex::encode(h.finalize())[..16])
}
