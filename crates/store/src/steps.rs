//! Executable steps: the review queue and the executor's state machine.
//!
//! ```text
//! waiting ──approve──▶ approved ──start──▶ running ──▶ succeeded | failed
//!    │ reject / expire / invalidate           │ (crash)
//!    ▼                                        ▼
//! rejected | expired | invalidated         unknown ──reconcile──▶ succeeded | not_applied
//! ```
//!
//! `auto` steps are inserted `approved`. An approved step whose before-state read stops
//! on a page a person must see (a browser connector's login or verification page) goes
//! straight to `failed`: it never started. Every transition is conditional on the current
//! state (so two reviewers, or a reviewer and a pause, cannot both win) and commits with
//! the evidence event that records it.
//!
//! Starting a step can also be conditional on pauses ([`Transition::unless_paused`]): the
//! active pauses are read inside the transaction that would start it, so a pause and a
//! start are ordered by the chain. Every step whose `step_started` comes after a
//! covering `pause_changed` was refused; none slips through between a check and the start.

use countersign_core::model::Case;
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::evidence::NewEvent;

/// Where a step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Waiting,
    Approved,
    Rejected,
    Expired,
    /// A new policy was loaded while it waited: it must be decided again.
    Invalidated,
    Running,
    Succeeded,
    Failed,
    /// Started but never finished (a crash): to be reconciled by a read.
    Unknown,
    /// Reconciled: the platform shows the change was not applied.
    NotApplied,
}

impl StepState {
    pub const ALL: [StepState; 10] = [
        StepState::Waiting,
        StepState::Approved,
        StepState::Rejected,
        StepState::Expired,
        StepState::Invalidated,
        StepState::Running,
        StepState::Succeeded,
        StepState::Failed,
        StepState::Unknown,
        StepState::NotApplied,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Waiting => "waiting",
            StepState::Approved => "approved",
            StepState::Rejected => "rejected",
            StepState::Expired => "expired",
            StepState::Invalidated => "invalidated",
            StepState::Running => "running",
            StepState::Succeeded => "succeeded",
            StepState::Failed => "failed",
            StepState::Unknown => "unknown",
            StepState::NotApplied => "not_applied",
        }
    }

    pub fn parse(s: &str) -> Option<StepState> {
        StepState::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// A step to enter into the queue (with the decision that put it there).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewStep {
    pub plan_id: String,
    pub step_id: String,
    pub case_id: String,
    pub action: String,
    /// The step as decided (canonical JSON of the core `Step`).
    pub step: serde_json::Value,
    pub step_digest: String,
    pub policy_hash: String,
    /// `auto`, `confirm` or `supervisor`.
    pub decision: String,
    pub approver_roles: Vec<String>,
    /// `Waiting` for countersigned steps, `Approved` for `auto` ones.
    pub state: StepState,
    pub decided_at: Timestamp,
    /// The order it acts on (`None`: it names none), and the parameter it was read from
    /// (the deciding policy's `order_param` for the action; `None`: the action has none).
    pub order_id: Option<String>,
    pub order_param: Option<String>,
}

/// A step as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub plan_id: String,
    pub step_id: String,
    pub case_id: String,
    pub action: String,
    pub step: serde_json::Value,
    pub step_digest: String,
    pub policy_hash: String,
    pub decision: String,
    pub approver_roles: Vec<String>,
    pub state: StepState,
    pub decided_at: Timestamp,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<Timestamp>,
    pub review_reason: Option<String>,
    pub approval_expires_at: Option<Timestamp>,
    pub idempotency_key: Option<String>,
    /// The evidence event that recorded the latest transition.
    pub last_seq: u64,
}

/// What a transition sets besides the state (fields left `None` are kept).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepUpdate {
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<Timestamp>,
    pub review_reason: Option<String>,
    pub approval_expires_at: Option<Timestamp>,
    pub idempotency_key: Option<String>,
}

/// A conditional change of state, recorded by `event`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub plan_id: String,
    pub step_id: String,
    /// The transition happens only from one of these states.
    pub from: Vec<StepState>,
    pub to: StepState,
    pub update: StepUpdate,
    pub event: NewEvent,
    /// Refuse the transition if an active pause covers this step, checked in the same
    /// transaction. The refusal is a [`StoreError::StepConflict`] whose `state` reads
    /// `paused by <pause id> (<scope> "<value>")`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unless_paused: Option<PauseGuard>,
}

/// What a pause may cover about a step: its case (tenant, channel, store), the plan's
/// intent (workflow) and its action. Coverage is core's [`countersign_core::model::Pause::covers`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PauseGuard {
    pub case: Case,
    /// The plan's intent and the action's workflow in the policy.
    pub workflows: Vec<String>,
    pub action: String,
}

/// Which steps to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepFilter {
    pub case_id: Option<String>,
    pub states: Vec<StepState>,
    /// Only these actions (empty: any).
    pub actions: Vec<String>,
    /// Only the steps a decision's money history may count (the caller reads each one's
    /// order again and keeps those that count).
    pub touching: Option<Touching>,
}

/// A case and its orders, under a policy: the steps on that case or on one of those
/// orders, and every step whose order is not known here for this policy (queued before
/// the store kept a step's order, or whose order was read from another parameter than
/// the one this policy's action names).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Touching {
    pub case_id: String,
    pub orders: Vec<String>,
    /// Each action and the parameter that names its order under this policy ('' for none).
    pub order_params: Vec<(String, String)>,
}

const COLUMNS: &str = "plan_id, step_id, case_id, action, step, step_digest, policy_hash, decision, approver_roles, \
     state, decided_at, reviewed_by, reviewed_at, review_reason, approval_expires_at, idempotency_key, last_seq";

fn ts(s: Option<String>) -> rusqlite::Result<Option<Timestamp>> {
    s.map(|s| {
        s.parse::<Timestamp>()
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))
    })
    .transpose()
}

fn conversion(e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
}

fn row(r: &Row<'_>) -> rusqlite::Result<StepRecord> {
    let step: String = r.get(4)?;
    let roles: String = r.get(8)?;
    let state: String = r.get(9)?;
    Ok(StepRecord {
        plan_id: r.get(0)?,
        step_id: r.get(1)?,
        case_id: r.get(2)?,
        action: r.get(3)?,
        step: serde_json::from_str(&step).map_err(conversion)?,
        step_digest: r.get(5)?,
        policy_hash: r.get(6)?,
        decision: r.get(7)?,
        approver_roles: serde_json::from_str(&roles).map_err(conversion)?,
        state: StepState::parse(&state).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(9, rusqlite::types::Type::Text, format!("state {state}").into())
        })?,
        decided_at: ts(Some(r.get(10)?))?.unwrap_or_default(),
        reviewed_by: r.get(11)?,
        reviewed_at: ts(r.get(12)?)?,
        review_reason: r.get(13)?,
        approval_expires_at: ts(r.get(14)?)?,
        idempotency_key: r.get(15)?,
        last_seq: r.get::<_, i64>(16)?.unsigned_abs(),
    })
}

pub(crate) fn get(conn: &Connection, plan_id: &str, step_id: &str) -> Result<Option<StepRecord>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM steps WHERE plan_id = ? AND step_id = ?"))?
        .query_row([plan_id, step_id], row)
        .optional()?)
}

pub(crate) fn list(conn: &Connection, filter: &StepFilter) -> Result<Vec<StepRecord>, StoreError> {
    // What every row must meet. With `touching`, the states and actions are only checked
    // (`+`: no index), so that each arm below is found by its own index.
    let unindexed = if filter.touching.is_some() { "+" } else { "" };
    let mut base = String::from("1 = 1");
    let mut base_args: Vec<String> = Vec::new();
    if let Some(c) = &filter.case_id {
        base.push_str(" AND case_id = ?");
        base_args.push(c.clone());
    }
    if !filter.states.is_empty() {
        base.push_str(&format!(" AND {unindexed}state IN ({})", vec!["?"; filter.states.len()].join(", ")));
        base_args.extend(filter.states.iter().map(|s| s.as_str().to_string()));
    }
    if !filter.actions.is_empty() {
        base.push_str(&format!(" AND {unindexed}action IN ({})", vec!["?"; filter.actions.len()].join(", ")));
        base_args.extend(filter.actions.iter().cloned());
    }
    let mut arms: Vec<(String, Vec<String>)> = Vec::new();
    match &filter.touching {
        None => arms.push((String::new(), Vec::new())),
        Some(t) => {
            arms.push((" AND case_id = ?".into(), vec![t.case_id.clone()]));
            if !t.orders.is_empty() {
                arms.push((format!(" AND order_id IN ({})", vec!["?"; t.orders.len()].join(", ")), t.orders.clone()));
            }
            arms.push((" AND order_id IS NULL".into(), Vec::new()));
            for (action, param) in &t.order_params {
                for op in ["<", ">"] {
                    arms.push((format!(" AND action = ? AND order_param {op} ?"), vec![action.clone(), param.clone()]));
                }
            }
        }
    }
    let mut args: Vec<String> = Vec::new();
    let sql = arms
        .into_iter()
        .map(|(cond, arm_args)| {
            args.extend(base_args.iter().cloned());
            args.extend(arm_args);
            format!("SELECT {COLUMNS} FROM steps WHERE {base}{cond}")
        })
        .collect::<Vec<_>>()
        .join(" UNION ")
        + " ORDER BY decided_at, plan_id, step_id";
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

pub(crate) fn insert(conn: &Connection, s: &NewStep, seq: u64) -> Result<(), StoreError> {
    if !matches!(s.state, StepState::Waiting | StepState::Approved) {
        return Err(StoreError::InvalidEvent {
            reason: format!("a new step starts waiting or approved, not {:?}", s.state),
        });
    }
    let step = serde_json_canonicalizer::to_string(&s.step)
        .map_err(|e| StoreError::InvalidEvent { reason: format!("step is not canonical JSON: {e}") })?;
    let roles = serde_json::to_string(&s.approver_roles)
        .map_err(|e| StoreError::InvalidEvent { reason: format!("approver roles: {e}") })?;
    let exists = get(conn, &s.plan_id, &s.step_id)?.is_some();
    if exists {
        return Err(StoreError::StepExists { plan_id: s.plan_id.clone(), step_id: s.step_id.clone() });
    }
    conn.prepare_cached(
        "INSERT INTO steps (plan_id, step_id, case_id, action, step, step_digest, policy_hash, decision,
                            approver_roles, state, decided_at, last_seq, order_id, order_param)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )?
    .execute(params![
        s.plan_id,
        s.step_id,
        s.case_id,
        s.action,
        step,
        s.step_digest,
        s.policy_hash,
        s.decision,
        roles,
        s.state.as_str(),
        s.decided_at.to_string(),
        crate::writer::seq_sql(seq),
        s.order_id.as_deref().unwrap_or(""),
        s.order_param.as_deref().unwrap_or(""),
    ])?;
    Ok(())
}

/// Check and apply a transition's row change (the event is appended by the caller first).
pub(crate) fn check(conn: &Connection, t: &Transition) -> Result<StepRecord, StoreError> {
    let Some(current) = get(conn, &t.plan_id, &t.step_id)? else {
        return Err(StoreError::StepNotFound { plan_id: t.plan_id.clone(), step_id: t.step_id.clone() });
    };
    if !t.from.contains(&current.state) {
        return Err(StoreError::StepConflict {
            plan_id: t.plan_id.clone(),
            step_id: t.step_id.clone(),
            state: current.state.as_str().to_string(),
            wanted: t.to.as_str().to_string(),
        });
    }
    if let Some(guard) = &t.unless_paused
        && let Some(p) = crate::pause::active(conn)?.into_iter().find(|p| {
            p.covers(&guard.case, &guard.workflows.iter().map(String::as_str).collect::<Vec<_>>(), &guard.action)
        })
    {
        return Err(StoreError::StepConflict {
            plan_id: t.plan_id.clone(),
            step_id: t.step_id.clone(),
            state: format!("paused by {} ({} {:?})", p.id, p.scope.as_str(), p.value),
            wanted: t.to.as_str().to_string(),
        });
    }
    Ok(current)
}

pub(crate) fn apply(conn: &Connection, t: &Transition, seq: u64) -> Result<(), StoreError> {
    let u = &t.update;
    conn.prepare_cached(
        "UPDATE steps SET state = ?,
            reviewed_by = COALESCE(?, reviewed_by), reviewed_at = COALESCE(?, reviewed_at),
            review_reason = COALESCE(?, review_reason),
            approval_expires_at = COALESCE(?, approval_expires_at),
            idempotency_key = COALESCE(?, idempotency_key), last_seq = ?
         WHERE plan_id = ? AND step_id = ?",
    )?
    .execute(params![
        t.to.as_str(),
        u.reviewed_by,
        u.reviewed_at.map(|t| t.to_string()),
        u.review_reason,
        u.approval_expires_at.map(|t| t.to_string()),
        u.idempotency_key,
        crate::writer::seq_sql(seq),
        t.plan_id,
        t.step_id,
    ])?;
    Ok(())
}
