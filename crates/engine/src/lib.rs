//! # countersign-engine
//!
//! The use cases of Countersign, as one API: open a workspace, decide a plan,
//! record the evidence, set and clear pauses, list, verify and export the log,
//! run the demo cases.
//!
//! **Architecture invariant:** the desktop shell and the CLI are two thin faces
//! of this crate. Neither holds policy logic, SQL or platform access; they parse
//! arguments, call one [`Engine`] method and present the result. The engine owns
//! the order of operations (facts are gathered, the policy decides, evidence is
//! written) so that no face can skip a step.
//!
//! Time comes from an injected [`Clock`], so tests can fix it.

pub mod cases;
pub mod checkpoints;
pub mod credentials;
mod desk;
mod error;
pub mod eval;
pub mod execute;
pub mod knowledge;
mod log;
pub mod managed;
pub mod planners;
pub mod planning;
pub mod views;
pub mod workspace;

/// Keys, packs, releases, the device key and the roster live in `countersign-trust`; the
/// faces reach them here, under the same names as before.
pub use countersign_trust::{TrustError, device, keys, pack, release, roster};

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use countersign_connectors::Connector;
use countersign_connectors::snapshot::SnapshotConnector;
use countersign_core::decide::{Facts, OrderFacts, PlanDecision, PriorState, PriorStep};
use countersign_core::evidence::{Event, Verdict};
use countersign_core::model::{Case, Operator, Pause, PauseScope, Plan};
use countersign_core::{Outcome, Policy, decide};
use countersign_store::{EventFilter, NewEvent, NewStep, PauseGuard, StepFilter, StepUpdate, Store, Transition};
use jiff::Timestamp;
use serde::Serialize;

pub use countersign_connectors::credentials::Secret;
/// Plain records the engine returns as they are stored (steps, pauses, knowledge hits).
pub use countersign_store::{ExportSummary, KbArticle, KbHit, PauseRecord, StepRecord, StepState};
pub use desk::Review;
pub use error::{EngineError, ErrorCode};
pub use execute::StepRun;
pub use log::{LogVerification, LoggedEvent, verify_bundle};
pub use managed::{PolicyMode, PolicyStatus};
pub use pack::{ManagedSettings, PackInfo, PackRefusal, RefusalCode};
pub use roster::{Proof, RosterMember};
pub use workspace::{CaseFile, PlannerConfig, PlannerProvider, Workspace};

/// Where "now" comes from.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Timestamp;
}

/// Connectors' screenshots and page snapshots go to the store's content-addressed blobs,
/// through the one writer, so a blob is durable before the event that names it.
#[derive(Debug)]
struct StoreBlobs {
    writer: countersign_store::EvidenceWriter,
    clock: Arc<dyn Clock>,
}

impl countersign_connectors::BlobSink for StoreBlobs {
    fn put(&self, media_type: &str, data: &[u8]) -> Result<String, String> {
        self.writer.put_blob(media_type, data, self.clock.now()).map_err(|e| e.to_string())
    }
}

/// What a roster proof countersigns: a step (or a reply) of a plan.
pub(crate) struct Proving<'a> {
    pub case_id: &'a str,
    pub plan_id: &'a str,
    pub step_id: &'a str,
    pub step_digest: &'a str,
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// How to open an engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// The workspace's `workspace.toml`.
    pub workspace: PathBuf,
    /// Where the evidence database lives (created if missing).
    pub data_dir: PathBuf,
    /// Overrides the workspace's default operator.
    pub operator: Option<Operator>,
    /// Overrides the workspace's connector (tests, the desktop app's own demo store).
    /// Required for a browser workspace (`[connector] kind = "browser"`), whose connector
    /// the engine never builds: `countersign_browser::connector_for_workspace`.
    pub connector: Option<Arc<dyn Connector>>,
}

/// A summary of the loaded policy.
#[derive(Debug, Clone, Serialize)]
pub struct PolicySummary {
    pub id: String,
    pub version: u64,
    pub title: String,
    pub hash: String,
    pub actions: usize,
    pub rules: usize,
    pub signals: usize,
    pub reply_rules: usize,
}

impl PolicySummary {
    pub fn of(p: &Policy) -> PolicySummary {
        PolicySummary {
            id: p.id.clone(),
            version: p.version,
            title: p.title.clone(),
            hash: p.hash.clone(),
            actions: p.actions.len(),
            rules: p.rules.len(),
            signals: p.signals.len(),
            reply_rules: p.reply.promises.len(),
        }
    }
}

/// Parse and check a policy file without opening a workspace.
pub fn check_policy(path: &Path) -> Result<PolicySummary, EngineError> {
    let text = std::fs::read_to_string(path).map_err(|e| EngineError::io(path, e))?;
    let policy = Policy::parse(&path.display().to_string(), &text)?;
    Ok(PolicySummary::of(&policy))
}

/// What the demo did with one sample case.
#[derive(Debug, Clone, Serialize)]
pub struct DemoCase {
    pub file: String,
    pub case_id: String,
    pub channel: String,
    pub customer_says: String,
    pub intent: String,
    pub decision: PlanDecision,
}

/// The engine: a workspace, its policy, the evidence store and a connector.
#[derive(Debug)]
pub struct Engine {
    workspace: Workspace,
    policy: Arc<Policy>,
    store: Store,
    connector: Arc<dyn Connector>,
    clock: Arc<dyn Clock>,
    operator: Operator,
    /// Knowledge article id → current version, from the index (refreshed by `kb_index`).
    articles: std::sync::RwLock<BTreeMap<String, String>>,
    knowledge_report: knowledge::KbIndexReport,
    /// Knowledge searches since the index last changed: (query, limit) → hits.
    searches: std::sync::Mutex<std::collections::HashMap<(String, usize), Vec<countersign_store::KbHit>>>,
    approval_ttl: jiff::SignedDuration,
    /// Where the policy came from: a signed pack or dev mode (see [`managed`]).
    managed: managed::Managed,
}

impl Engine {
    /// Open a workspace: load and check the policy, open (or create) the evidence
    /// store, and record `policy_loaded` when this policy is new to the log.
    ///
    /// A workspace that names a signed pack runs only on packs signed by the admin keys
    /// this build trusts ([`keys::TrustedKeys::bundled`]); see [`managed`].
    pub fn open(options: EngineOptions, clock: Arc<dyn Clock>) -> Result<Engine, EngineError> {
        Engine::open_with_trust(options, clock, keys::TrustedKeys::bundled())
    }

    /// [`Engine::open`] trusting `trusted` instead of the bundled admin keys (tests, and
    /// tools that check packs against keys they were given).
    pub fn open_with_trust(
        options: EngineOptions,
        clock: Arc<dyn Clock>,
        trusted: keys::TrustedKeys,
    ) -> Result<Engine, EngineError> {
        let mut workspace = Workspace::load(&options.workspace)?;
        let dev_policy = match workspace.pack {
            Some(_) => None,
            None => {
                let text =
                    std::fs::read_to_string(&workspace.policy).map_err(|e| EngineError::io(&workspace.policy, e))?;
                Some(Policy::parse(&workspace.policy.display().to_string(), &text)?)
            }
        };
        std::fs::create_dir_all(&options.data_dir).map_err(|e| EngineError::io(&options.data_dir, e))?;
        let store = Store::open(options.data_dir.join("evidence.sqlite"))?;
        let selected = managed::select(&mut workspace, &store, &options.data_dir, &trusted, dev_policy, clock.now())?;
        let policy = selected.policy;
        let operator = options.operator.unwrap_or_else(|| workspace.operator.clone());
        if let Some(e) = workspace.roster.iter().find(|e| !policy.roles.contains(&e.role)) {
            return Err(EngineError::Config {
                message: format!(
                    "{}: roster entry {:?} has role {:?}, which policy {} does not declare",
                    workspace.file.display(),
                    e.id,
                    e.role,
                    policy.id
                ),
            });
        }
        if !policy.roles.contains(&operator.role) {
            return Err(EngineError::BadInput {
                message: format!(
                    "operator role {:?} is not one the policy knows ({})",
                    operator.role,
                    policy.roles.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            });
        }
        let managed = managed::Managed {
            trusted,
            data_dir: options.data_dir.clone(),
            settings: selected.pack.as_ref().map(|p| p.info.settings.clone()).unwrap_or_default(),
            loaded: selected.pack.map(|p| p.info),
            refused: selected.refused,
            connector_overridden: options.connector.is_some(),
        };
        let connector: Arc<dyn Connector> = match (options.connector, &workspace.connector) {
            (Some(c), _) => c,
            (None, workspace::ConnectorConfig::Snapshot { dataset }) => Arc::new(SnapshotConnector::load(dataset)?),
            (None, workspace::ConnectorConfig::Http { catalog, base_url }) => {
                let catalog = countersign_connectors::Catalog::load(catalog)
                    .map_err(|e| EngineError::Config { message: e.to_string() })?;
                let mut http = countersign_connectors::HttpConnector::new(catalog, Arc::new(credentials::keyring()))?;
                if let Some(url) = base_url {
                    http = http.with_base_url(url)?;
                }
                Arc::new(http)
            }
            (None, workspace::ConnectorConfig::DemoStore { catalog, .. }) => {
                return Err(EngineError::Config {
                    message: format!(
                        "{}: [connector] kind = \"demo_store\" ({}): the engine does not start the demo seller \
                         center; the app or the command line does (countersign_host::open) and passes its connector \
                         in EngineOptions::connector",
                        workspace.file.display(),
                        catalog.display()
                    ),
                });
            }
            (None, workspace::ConnectorConfig::Browser(settings)) => {
                return Err(EngineError::Config {
                    message: format!(
                        "{}: [connector] kind = \"browser\" ({}): the engine does not build the browser connector; \
                         the app or the command line builds it (countersign_browser::connector_for_workspace) and \
                         passes it in EngineOptions::connector",
                        workspace.file.display(),
                        settings.pages.display()
                    ),
                });
            }
        };
        connector.attach_blobs(Arc::new(StoreBlobs { writer: store.writer(), clock: clock.clone() }));
        let (articles, knowledge_report) = knowledge::open_index(&store, &workspace.knowledge)?;
        let engine = Engine {
            workspace,
            policy: Arc::new(policy),
            store,
            connector,
            clock,
            operator,
            articles: std::sync::RwLock::new(articles),
            knowledge_report,
            searches: Default::default(),
            approval_ttl: jiff::SignedDuration::from_hours(4),
            managed,
        };
        engine.finish_policy_load(engine.managed.refused.as_ref())?;
        Ok(engine)
    }

    /// Record that this workspace's data folder was moved into place from `from` (an
    /// earlier version's folder; see `countersign_host::data`).
    pub fn record_data_moved(&self, from: &str, to: &str) -> Result<(), EngineError> {
        self.append(None, "system", Event::DataMoved { from: from.to_string(), to: to.to_string() })
    }

    pub fn workspace(&self) -> &Workspace {
        &self.workspace
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn operator(&self) -> &Operator {
        &self.operator
    }

    /// Who may countersign beyond the seat's role (no hashes).
    pub fn roster(&self) -> Vec<RosterMember> {
        self.workspace.roster.iter().map(roster::RosterEntry::member).collect()
    }

    /// Switch the operator (a team lead taking over the seat); the role must be one
    /// the policy declares.
    pub fn set_operator(&mut self, operator: Operator) -> Result<(), EngineError> {
        if !self.policy.roles.contains(&operator.role) {
            return Err(EngineError::BadInput {
                message: format!("operator role {:?} is not one the policy knows", operator.role),
            });
        }
        self.operator = operator;
        Ok(())
    }

    fn append(&self, case_id: Option<&str>, actor: &str, event: Event) -> Result<(), EngineError> {
        self.store.append(self.new_event(case_id, actor, &event))?;
        Ok(())
    }

    fn new_event(&self, case_id: Option<&str>, actor: &str, event: &Event) -> NewEvent {
        NewEvent {
            case_id: case_id.map(str::to_string),
            kind: event.kind().to_string(),
            actor: actor.to_string(),
            at: self.clock.now(),
            payload: event.payload(),
        }
    }

    /// The trusted facts for deciding `plan` on `case`: the orders it touches (read
    /// through the connector), earlier money steps from the evidence log, active
    /// pauses, the knowledge articles that exist.
    pub fn gather_facts(&self, case: &Case, plan: &Plan) -> Result<Facts, EngineError> {
        let mut order_ids: BTreeSet<String> = case.order_ids.iter().cloned().collect();
        for step in &plan.steps {
            if let Some(def) = self.policy.actions.get(&step.action)
                && let Some(p) = def.order_param.as_ref().and_then(|p| step.params.get(p))
                && let Some(id) = p.value.as_str()
            {
                order_ids.insert(id.to_string());
            }
        }
        let mut orders = BTreeMap::new();
        for id in &order_ids {
            if let Some(f) = self.connector.order_facts(id)? {
                orders.insert(id.clone(), f);
            }
        }
        Ok(Facts {
            now: self.clock.now(),
            operator: self.operator.clone(),
            history: self.prior_money_steps(case, plan, &order_ids)?,
            orders,
            pauses: self.store.active_pauses()?,
            citations: self.index_citations(plan)?,
        })
    }

    /// Money steps of earlier plans on this case or on these orders, from the step
    /// queue: waiting ones count as pending, approved (or in flight) ones as approved,
    /// executed ones as executed. Rejected, expired, invalidated, failed and
    /// not-applied steps do not count.
    fn prior_money_steps(
        &self,
        case: &Case,
        plan: &Plan,
        orders: &BTreeSet<String>,
    ) -> Result<Vec<PriorStep>, EngineError> {
        let counted =
            vec![StepState::Waiting, StepState::Approved, StepState::Running, StepState::Unknown, StepState::Succeeded];
        let mut out = Vec::new();
        for rec in self.store.steps(&StepFilter { states: counted, ..StepFilter::default() })? {
            if rec.plan_id == plan.id && rec.case_id == case.id {
                continue;
            }
            // An action this policy does not know matches none of its limits.
            let Some(def) = self.policy.actions.get(&rec.action) else { continue };
            let Some(money_param) = &def.money_param else { continue };
            // A money step that cannot be read back is refused, never skipped: skipping it
            // would let a limit pass on the amounts that happen to be readable.
            let unreadable = |why: String| EngineError::Unreadable {
                message: format!(
                    "step {} of plan {} (case {}) in the step queue cannot be read ({why}), so the money limits \
                     over earlier steps cannot be checked; nothing is decided until it is (run `countersign log verify`)",
                    rec.step_id, rec.plan_id, rec.case_id
                ),
            };
            let step = serde_json::from_value::<countersign_core::Step>(rec.step.clone())
                .map_err(|e| unreadable(e.to_string()))?;
            let value = |p: &Option<String>| p.as_ref().and_then(|p| step.params.get(p)).map(|p| p.value.clone());
            // An optional amount left out moves no money.
            let Some(amount) = value(&def.money_param) else { continue };
            let amount =
                countersign_core::Money::from_json(&amount).map_err(|e| unreadable(format!("{money_param}: {e}")))?;
            let order_id = value(&def.order_param).and_then(|v| v.as_str().map(str::to_string));
            if rec.case_id == case.id || order_id.as_ref().is_some_and(|o| orders.contains(o)) {
                out.push(PriorStep {
                    case_id: rec.case_id.clone(),
                    action: rec.action.clone(),
                    order_id,
                    amount,
                    state: match rec.state {
                        StepState::Waiting => PriorState::Pending,
                        StepState::Succeeded => PriorState::Executed,
                        _ => PriorState::Approved,
                    },
                });
            }
        }
        Ok(out)
    }

    /// The policy's decision on a plan. Records nothing.
    pub fn decide(&self, case: &Case, plan: &Plan) -> Result<PlanDecision, EngineError> {
        let facts = self.gather_facts(case, plan)?;
        Ok(decide(&self.policy, case, plan, &facts)?)
    }

    /// Decide a plan and record the evidence: the case (first time only), the
    /// context read, the plan, the decisions, and a review request per step that
    /// waits for a countersignature — in one transaction.
    ///
    /// Idempotent per plan: a plan already recorded for this case is not decided or
    /// recorded again; its recorded decision is returned. A plan id is bound to its steps:
    /// the same id with other steps (another amount, another order) is a conflict, never
    /// a way to reuse an earlier decision or approval.
    pub fn process(&self, case: &Case, plan: &Plan) -> Result<PlanDecision, EngineError> {
        self.process_with(case, plan, None)
    }

    /// [`Engine::process`], with the reply's citation facts given (from a planning run)
    /// instead of resolved against the index.
    pub(crate) fn process_with(
        &self,
        case: &Case,
        plan: &Plan,
        citations: Option<Vec<countersign_core::decide::CitationFact>>,
    ) -> Result<PlanDecision, EngineError> {
        if let Some(recorded) = self.recorded_decision(&case.id, &plan.id)? {
            let same = recorded.steps.len() == plan.steps.len()
                && recorded
                    .steps
                    .iter()
                    .zip(&plan.steps)
                    .all(|(d, s)| d.step_id == s.id && d.step_digest == countersign_core::digest::step_digest(s));
            if !same {
                return Err(EngineError::Conflict {
                    message: format!(
                        "plan {} of case {} was already recorded with other steps: a changed plan needs a new id",
                        plan.id, case.id
                    ),
                });
            }
            return Ok(recorded);
        }
        let mut facts = self.gather_facts(case, plan)?;
        if let Some(c) = citations {
            facts.citations = c;
        }
        let decision = decide(&self.policy, case, plan, &facts)?;
        let seen = !self
            .store
            .list_events(&EventFilter {
                case_id: Some(case.id.clone()),
                kind: Some("case_opened".into()),
                limit: Some(1),
                ..EventFilter::default()
            })?
            .is_empty();
        let mut events = Vec::new();
        if !seen {
            events.push(Event::CaseOpened { case: case.clone() });
        }
        let fields: BTreeSet<String> = decision.steps.iter().flat_map(|s| s.may_read.iter().cloned()).collect();
        events.push(Event::ContextRead {
            orders: facts.orders.values().cloned().collect::<Vec<OrderFacts>>(),
            fields: fields.into_iter().collect(),
        });
        events.push(Event::PlanProposed { plan: plan.clone() });
        events.push(Event::Decided { decision: decision.clone() });
        for s in &decision.steps {
            if matches!(s.decision, Outcome::Confirm | Outcome::Supervisor) {
                events.push(Event::ReviewRequested {
                    plan_id: plan.id.clone(),
                    step_id: s.step_id.clone(),
                    step_digest: s.step_digest.clone(),
                    decision: s.decision,
                    approver_roles: s.approver_roles.clone(),
                });
            }
        }
        let actor = self.operator.id.clone();
        let mut queued = Vec::new();
        for (s, step) in decision.steps.iter().zip(&plan.steps) {
            let state = match s.decision {
                Outcome::Auto => StepState::Approved,
                Outcome::Confirm | Outcome::Supervisor => StepState::Waiting,
                Outcome::Recommend | Outcome::Forbid => continue,
            };
            queued.push(NewStep {
                plan_id: plan.id.clone(),
                step_id: s.step_id.clone(),
                case_id: case.id.clone(),
                action: s.action.clone(),
                step: serde_json::to_value(step).map_err(|e| EngineError::BadInput { message: e.to_string() })?,
                step_digest: s.step_digest.clone(),
                policy_hash: decision.policy_hash.clone(),
                decision: s.decision.as_str().to_string(),
                approver_roles: s.approver_roles.clone(),
                state,
                decided_at: facts.now,
            });
        }
        let batch = events
            .iter()
            .map(|e| {
                let who = match e {
                    Event::PlanProposed { plan } if plan.planner == cases::AGENT_EDIT => actor.clone(),
                    Event::PlanProposed { plan } => format!("planner:{}", plan.planner),
                    Event::Decided { .. } => "policy".to_string(),
                    _ => actor.clone(),
                };
                self.new_event(Some(&case.id), &who, e)
            })
            .collect();
        self.store.writer().record(batch, queued)?;
        Ok(decision)
    }

    /// Steps waiting for a countersignature, oldest first.
    pub fn review_queue(&self) -> Result<Vec<StepRecord>, EngineError> {
        Ok(self.store.steps(&StepFilter { states: vec![StepState::Waiting], ..StepFilter::default() })?)
    }

    /// Every queued or executed step, oldest first.
    pub fn all_steps(&self) -> Result<Vec<StepRecord>, EngineError> {
        Ok(self.store.steps(&StepFilter::default())?)
    }

    /// Steps of one case in any state.
    pub fn case_steps(&self, case_id: &str) -> Result<Vec<StepRecord>, EngineError> {
        Ok(self.store.steps(&StepFilter { case_id: Some(case_id.to_string()), ..StepFilter::default() })?)
    }

    /// Countersign or reject a waiting step as the seat's operator.
    ///
    /// The approval binds to the step as it was decided (its digest), its plan and the
    /// policy it was decided under: a step decided under another policy version is
    /// invalidated instead (it must be decided again), and only the roles the decision
    /// names may countersign. A `supervisor` step is never approved on the seat's word:
    /// it takes [`Engine::review_as`] with a roster proof.
    pub fn review(
        &self,
        plan_id: &str,
        step_id: &str,
        verdict: Verdict,
        reason: &str,
    ) -> Result<StepRecord, EngineError> {
        let record = self.waiting_step(plan_id, step_id)?;
        self.review_by(record, verdict, reason, &self.operator.clone(), false)
    }

    /// Countersign or reject as a person on the workspace roster, who proves it with
    /// their passphrase (see [`roster`]). A wrong id or passphrase is `NotPermitted` and
    /// leaves a `review_refused` event (without the passphrase); too many in a row lock
    /// the id out for a while.
    pub fn review_as(
        &self,
        plan_id: &str,
        step_id: &str,
        verdict: Verdict,
        reason: &str,
        proof: &Proof,
    ) -> Result<StepRecord, EngineError> {
        let record = self.waiting_step(plan_id, step_id)?;
        let who = self.prove(
            &Proving {
                case_id: &record.case_id,
                plan_id: &record.plan_id,
                step_id: &record.step_id,
                step_digest: &record.step_digest,
            },
            proof,
        )?;
        self.review_by(record, verdict, reason, &who, true)
    }

    fn waiting_step(&self, plan_id: &str, step_id: &str) -> Result<StepRecord, EngineError> {
        let record = self
            .store
            .step(plan_id, step_id)?
            .ok_or_else(|| EngineError::NotFound { message: format!("no step {step_id} in plan {plan_id}") })?;
        if record.state != StepState::Waiting {
            return Err(EngineError::Conflict {
                message: format!(
                    "step {step_id} of plan {plan_id} is {}, not waiting for review",
                    record.state.as_str()
                ),
            });
        }
        Ok(record)
    }

    /// Check a roster proof; a refusal is recorded (who was claimed, never the passphrase).
    pub(crate) fn prove(&self, record: &Proving<'_>, proof: &Proof) -> Result<Operator, EngineError> {
        let now = self.clock.now();
        let since = now - jiff::SignedDuration::from_mins(roster::LOCKOUT_WINDOW_MINUTES);
        let failures = self
            .events(&EventFilter {
                kind: Some(roster::REVIEW_REFUSED.into()),
                text: Some(proof.id.clone()),
                ..EventFilter::default()
            })?
            .into_iter()
            .filter(|e| {
                e.at > since && matches!(&e.event, Event::ReviewRefused { claimed_id, .. } if *claimed_id == proof.id)
            })
            .count();
        let refuse = |why: &str, message: String| -> Result<Operator, EngineError> {
            let event = Event::ReviewRefused {
                plan_id: record.plan_id.to_string(),
                step_id: record.step_id.to_string(),
                step_digest: record.step_digest.to_string(),
                claimed_id: proof.id.clone(),
                seat: self.operator.clone(),
                reason: why.to_string(),
            };
            self.store.append(NewEvent {
                case_id: Some(record.case_id.to_string()),
                kind: event.kind().to_string(),
                actor: self.operator.id.clone(),
                at: now,
                payload: event.payload(),
            })?;
            Err(EngineError::NotPermitted { message })
        };
        if failures >= roster::LOCKOUT_ATTEMPTS {
            return refuse(
                "locked out",
                format!(
                    "{} is locked out after {failures} failed attempts in {} minutes; try again later",
                    proof.id,
                    roster::LOCKOUT_WINDOW_MINUTES
                ),
            );
        }
        match self.workspace.roster.iter().find(|e| e.id == proof.id) {
            Some(entry) if entry.verify(&proof.passphrase) => {
                Ok(Operator { id: entry.id.clone(), role: entry.role.clone() })
            }
            found => refuse(
                if found.is_some() { "wrong passphrase" } else { "not on the roster" },
                format!("{}: not on the roster, or the passphrase is wrong", proof.id),
            ),
        }
    }

    fn review_by(
        &self,
        record: StepRecord,
        verdict: Verdict,
        reason: &str,
        who: &Operator,
        proven: bool,
    ) -> Result<StepRecord, EngineError> {
        let now = self.clock.now();
        let (plan_id, step_id) = (record.plan_id.clone(), record.step_id.clone());
        if record.policy_hash != self.policy.hash {
            self.transition_by(
                &who.id,
                &record,
                StepState::Invalidated,
                StepUpdate::default(),
                now,
                Event::ReviewDecided {
                    plan_id: plan_id.clone(),
                    step_id: step_id.clone(),
                    step_digest: record.step_digest.clone(),
                    policy_hash: self.policy.hash.clone(),
                    verdict: Verdict::Rejected,
                    by: who.clone(),
                    reason: "invalidated: decided under another policy version; decide the plan again".into(),
                },
                None,
            )?;
            return Err(EngineError::ApprovalStale {
                message: format!(
                    "step {step_id} was decided under policy {} but {} is loaded now: decide the plan again",
                    record.policy_hash, self.policy.hash
                ),
            });
        }
        if verdict == Verdict::Approved && !record.approver_roles.contains(&who.role) {
            return Err(EngineError::NotPermitted {
                message: format!(
                    "{} ({}) may not countersign this {} step; it needs {}",
                    who.id,
                    who.role,
                    record.decision,
                    record.approver_roles.join(" or ")
                ),
            });
        }
        if verdict == Verdict::Approved && record.decision == Outcome::Supervisor.as_str() && !proven {
            return Err(EngineError::NotPermitted {
                message: format!(
                    "a supervisor step is countersigned by someone on the workspace roster, who proves it with                      their passphrase (`review approve {plan_id} {step_id} --as LEAD_ID`); a role given on the \
                     command line is not proof"
                ),
            });
        }
        if reason.trim().is_empty() && verdict == Verdict::Rejected {
            return Err(EngineError::BadInput { message: "a rejection needs a reason".into() });
        }
        let (to, expires) = match verdict {
            Verdict::Approved => (StepState::Approved, Some(now + self.approval_ttl)),
            Verdict::Rejected => (StepState::Rejected, None),
        };
        let update = StepUpdate {
            reviewed_by: Some(who.id.clone()),
            reviewed_at: Some(now),
            review_reason: Some(reason.to_string()),
            approval_expires_at: expires,
            idempotency_key: None,
        };
        self.transition_by(
            &who.id,
            &record,
            to,
            update,
            now,
            Event::ReviewDecided {
                plan_id: plan_id.clone(),
                step_id: step_id.clone(),
                step_digest: record.step_digest.clone(),
                policy_hash: record.policy_hash.clone(),
                verdict,
                by: who.clone(),
                reason: reason.to_string(),
            },
            None,
        )?;
        self.store.step(&plan_id, &step_id)?.ok_or_else(|| EngineError::NotFound { message: step_id.clone() })
    }

    fn transition(
        &self,
        record: &StepRecord,
        to: StepState,
        update: StepUpdate,
        at: Timestamp,
        event: Event,
    ) -> Result<(), EngineError> {
        self.transition_by(&self.operator.id, record, to, update, at, event, None)
    }

    /// A conditional state change with its evidence event, by `actor`; with `guard`, refused
    /// (in the same transaction) when an active pause covers the step.
    #[allow(clippy::too_many_arguments)]
    fn transition_by(
        &self,
        actor: &str,
        record: &StepRecord,
        to: StepState,
        update: StepUpdate,
        at: Timestamp,
        event: Event,
        guard: Option<PauseGuard>,
    ) -> Result<(), EngineError> {
        self.store.writer().transition(Transition {
            plan_id: record.plan_id.clone(),
            step_id: record.step_id.clone(),
            from: vec![record.state],
            to,
            update,
            event: NewEvent {
                case_id: Some(record.case_id.clone()),
                kind: event.kind().to_string(),
                actor: actor.to_string(),
                at,
                payload: event.payload(),
            },
            unless_paused: guard,
        })?;
        Ok(())
    }

    /// The decision recorded for a plan of a case, if it was processed before.
    pub fn recorded_decision(&self, case_id: &str, plan_id: &str) -> Result<Option<PlanDecision>, EngineError> {
        Ok(self.case_events(case_id, "decided")?.into_iter().rev().find_map(|e| match e.event {
            Event::Decided { decision } if decision.plan_id == plan_id => Some(decision),
            _ => None,
        }))
    }

    /// Run every sample case of the workspace through the pipeline: the planner
    /// proposes (here: the plans recorded with the cases), the policy decides,
    /// the evidence is recorded.
    pub fn demo(&self) -> Result<Vec<DemoCase>, EngineError> {
        let samples = self.workspace.sample_cases()?;
        let mut out = Vec::new();
        for (path, file) in samples {
            let plan = file.plan;
            let decision = self.process(&file.case, &plan)?;
            out.push(DemoCase {
                file: path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                case_id: file.case.id.clone(),
                channel: file.case.channel.to_string(),
                customer_says: file.case.customer_text().last().unwrap_or_default().to_string(),
                intent: plan.intent.clone(),
                decision,
            });
        }
        Ok(out)
    }

    /// Pause automation in a scope. Takes effect for every decision made after it.
    pub fn pause_set(&self, scope: PauseScope, value: &str, reason: &str) -> Result<Pause, EngineError> {
        if value.trim().is_empty() || reason.trim().is_empty() {
            return Err(EngineError::BadInput { message: "a pause needs a value (what to pause) and a reason".into() });
        }
        if scope == PauseScope::Channel && countersign_core::model::Channel::parse(value).is_none() {
            return Err(EngineError::BadInput {
                message: format!("{value:?} is not a channel (chat, email, instagram_dm, tiktok_dm, …)"),
            });
        }
        if scope == PauseScope::Action && !self.policy.actions.contains_key(value) && value != "send_reply" {
            return Err(EngineError::BadInput {
                message: format!("{value:?} is not an action of policy {}", self.policy.id),
            });
        }
        let at = self.clock.now();
        let id = format!("pause-{}", at.as_millisecond());
        let pause = Pause {
            id,
            scope,
            value: value.to_string(),
            reason: reason.to_string(),
            set_by: self.operator.id.clone(),
            set_at: at,
        };
        self.store.writer().set_pause(pause.clone())?;
        Ok(pause)
    }

    /// Clear an active pause.
    pub fn pause_clear(&self, id: &str, reason: &str) -> Result<(), EngineError> {
        self.check_pause_clear()?;
        self.store.writer().clear_pause(id, &self.operator.id, reason, self.clock.now())?;
        Ok(())
    }

    pub fn pauses(&self) -> Result<Vec<Pause>, EngineError> {
        Ok(self.store.active_pauses()?)
    }

    pub fn pause_history(&self) -> Result<Vec<PauseRecord>, EngineError> {
        Ok(self.store.pause_history()?)
    }
}

pub use countersign_store::{EventFilter as LogFilter, VerifyReport as LogVerifyReport};
