//! The lead's filters at two million events (issue "Team oversight", "Benchmarks": p95
//! under 200 ms): `countersign_team::view::steps_page`, the query a lead's `Steps` ask is
//! answered with, timed for each filter a lead uses on a team database that holds
//! `VIEW_BENCH_EVENTS` (2,000,000) events, with the same run's raw references beside it.
//!
//! `cargo bench -p countersign-team --bench view` (no keyring needed). Real part: a
//! throwaway PostgreSQL 15 cluster with `fsync` on and its default settings
//! (`shared_buffers` 128 MB; only `max_wal_size` lowered to 256 MB, for the fill's disk
//! use), migrated with the service's own `project::open`.
//!
//! - **The fill (untimed):** `VIEW_BENCH_DESKS` (20) desks, each a valid hash chain made
//!   with the store's own canonical body and link, of cases spread over 90 days: a case
//!   opened (3 tenants, 5 channels), sometimes an identity check, the facts read (by one
//!   of the desk's two agents, 12 in all), a plan, its decision (1–3 steps of the demo
//!   policy's actions: auto, confirm, supervisor, recommend, forbid), reviews (some
//!   rejected), steps started and finished (some failed, unknown, settled), a reply; each
//!   desk loads pack v3, then v4 on a day of its own. Every event is read back into the
//!   core's `Event` and the `cases` and `steps` rows are derived from them by the
//!   projection's own `facets::Facets`. All goes in with `COPY` in time order (as the
//!   projection's batches would have it), without the projection's verification; then
//!   `ANALYZE`.
//! - **Timed:** each filter `VIEW_BENCH_REPS` (100) times, round robin over the filters
//!   (after one untimed warm-up pass), through the service's own pool (two connections,
//!   prepared statements cached as in the service). Pages of 50 rows.
//! - **References, same run, same pool:** a one-row primary-key read of `steps` (the
//!   round trip's floor), and for each filter `SELECT count(*)` of every row it matches
//!   (what a query that did not stop at a page would at least read), `VIEW_BENCH_COUNT_REPS`
//!   (5) times each.
//!
//! `VIEW_BENCH_HOLD_SECS=N` keeps the cluster up for N s at the end (its URL printed), to
//! look at plans with `psql`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::float_arithmetic)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use countersign_core::evidence::Event;
use countersign_core::teamview::StepFilter;
use countersign_store::{Hash, NewEvent, canonical_body};
use countersign_team::facets::{DeskFacts, Facets};
use countersign_team::project::copy_field;
use countersign_team::view::{Grants, steps_page};
use countersign_test_support::bench::percentile;
use countersign_test_support::bench::{env_usize as env, ms};
use countersign_test_support::postgres::Postgres;
use countersign_test_support::rng::Rng;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

const TENANTS: [(u64, &str); 3] = [(60, "acme"), (30, "globex"), (10, "initech")];
const CHANNELS: [(u64, &str); 5] =
    [(40, "email"), (30, "chat"), (10, "instagram_dm"), (10, "whatsapp"), (10, "web_form")];
const AGENTS: usize = 12;

/// A plan's intent: its steps (action, decision) and the customer's words.
struct Intent {
    name: &'static str,
    steps: &'static [(&'static str, &'static str)],
    text: &'static str,
}

/// The demo policy's actions, in plans shaped like the demo's cases.
const INTENTS: [(u64, Intent); 14] = [
    (
        20,
        Intent {
            name: "order_status",
            steps: &[("get_order_details", "auto")],
            text: "Where is my order? It was supposed to arrive on Monday and the tracking has not moved.",
        },
    ),
    (
        12,
        Intent {
            name: "cancel",
            steps: &[("get_order_details", "auto"), ("cancel_pending_order", "confirm")],
            text: "Please cancel my order, I ordered the wrong size by mistake.",
        },
    ),
    (
        10,
        Intent {
            name: "refund",
            steps: &[("get_order_details", "auto"), ("refund_partial", "auto")],
            text: "The water bottle arrived with a dent in it. Can you do something?",
        },
    ),
    (
        5,
        Intent {
            name: "refund",
            steps: &[("get_order_details", "auto"), ("refund_partial", "supervisor")],
            text: "Half of the set arrived broken, I want my money back for the broken pieces.",
        },
    ),
    (
        2,
        Intent {
            name: "refund",
            steps: &[("get_order_details", "auto"), ("refund_partial", "forbid")],
            text: "Refund the whole order to my other card or I will dispute the charge with my bank.",
        },
    ),
    (
        8,
        Intent {
            name: "return",
            steps: &[("get_order_details", "auto"), ("return_delivered_order_items", "confirm")],
            text: "I would like to return the lamp, it does not fit on my desk.",
        },
    ),
    (
        3,
        Intent {
            name: "exchange",
            steps: &[
                ("get_order_details", "auto"),
                ("get_product_details", "auto"),
                ("exchange_delivered_order_items", "confirm"),
            ],
            text: "Can I exchange the jacket for a size M in the same colour?",
        },
    ),
    (
        7,
        Intent {
            name: "address_change",
            steps: &[("get_customer_details", "auto"), ("modify_pending_order_address", "confirm")],
            text: "I moved last week, please send my order to my new address.",
        },
    ),
    (
        2,
        Intent {
            name: "address_change",
            steps: &[("get_customer_details", "auto"), ("modify_pending_order_address", "supervisor")],
            text: "Send the parcel to this address instead, it is my office.",
        },
    ),
    (
        4,
        Intent {
            name: "password_reset",
            steps: &[("find_customer_by_email", "auto"), ("send_password_reset", "supervisor")],
            text: "I cannot log in to my account, can you reset my password?",
        },
    ),
    (
        1,
        Intent {
            name: "password_reset",
            steps: &[("find_customer_by_email", "auto"), ("send_password_reset", "forbid")],
            text: "Reset my password and send the link here in this chat please.",
        },
    ),
    (
        2,
        Intent {
            name: "email_change",
            steps: &[("get_customer_details", "auto"), ("change_account_email", "supervisor")],
            text: "Please change the email on my account, I no longer use the old one.",
        },
    ),
    (
        4,
        Intent {
            name: "goodwill",
            steps: &[("get_order_details", "auto"), ("create_goodwill_coupon", "auto")],
            text: "My parcel was a week late and nobody answered my messages.",
        },
    ),
    (
        3,
        Intent {
            name: "availability",
            steps: &[("get_product_details", "auto"), ("suggest_replacement_product", "recommend")],
            text: "Is the blue backpack coming back in stock? If not what is similar?",
        },
    ),
];

/// One event of a desk's chain, before its seq and hash.
struct Draft {
    case_id: Option<String>,
    kind: &'static str,
    actor: String,
    at: Timestamp,
    payload: Value,
}

/// A desk's chain as it is made, one case at a time.
struct DeskChain {
    device: String,
    index: usize,
    rng: Rng,
    seq: u64,
    prev: Hash,
    facts: DeskFacts,
    /// When its next case opens, and the time between cases.
    next_at: Timestamp,
    every: SignedDuration,
    /// When it loads pack v4.
    upgrade_at: Timestamp,
    upgraded: bool,
    cases: u64,
    quota: u64,
}

/// What the fill writes: COPY text per table.
#[derive(Default)]
struct Copy {
    events: String,
    cases: String,
    steps: String,
    n_events: u64,
    n_steps: u64,
    stream_seq: u64,
}

fn nullable(v: Option<&str>) -> String {
    v.map_or_else(|| "\\N".to_string(), copy_field)
}

impl DeskChain {
    fn agents(&self) -> [String; 2] {
        [format!("agent-{:02}", self.index % AGENTS + 1), format!("agent-{:02}", (self.index + 5) % AGENTS + 1)]
    }

    fn policy_loaded(&self, version: u64, at: Timestamp) -> Draft {
        Draft {
            case_id: None,
            kind: "policy_loaded",
            actor: "system".into(),
            at,
            payload: json!({
                "policy_id": "demo-retail", "version": 1, "hash": format!("{:064x}", version), "signed": true,
                "pack": {"id": "acme-retail", "version": version, "key_id": "admin-2026",
                         "digest": format!("sha256:{:064x}", version * 7)},
            }),
        }
    }

    /// The next case's events (the desk's first starts with its pack loading).
    fn next_case(&mut self) -> Vec<Draft> {
        let mut out = Vec::new();
        let start = self.next_at;
        if self.seq == 0 && self.cases == 0 {
            out.push(self.policy_loaded(3, start - SignedDuration::from_secs(60)));
        }
        if !self.upgraded && start >= self.upgrade_at {
            self.upgraded = true;
            out.push(self.policy_loaded(4, start - SignedDuration::from_secs(30)));
        }
        let agents = self.agents();
        let r = &mut self.rng;
        let n = self.cases;
        self.cases += 1;
        let case_id = format!("T-{:02}{:07}", self.index, n);
        let plan_id = format!("{case_id}-plan-1");
        let tenant = *r.pick(&TENANTS);
        let channel = *r.pick(&CHANNELS);
        let intent = r.pick(&INTENTS);
        let customer = format!("customer_{}", r.below(40_000));
        let order = format!("#W{:07}", r.below(10_000_000));
        let hour = start.to_zoned(jiff::tz::TimeZone::UTC).hour();
        let agent = agents[usize::from(hour >= 14)].clone();
        // Each event a few seconds to a couple of minutes after the one before, all well
        // inside the gap to the desk's next case.
        let step_gap = (self.every.as_secs() / 40).max(2);
        let mut at = start;
        let mut later = |r: &mut Rng| {
            at += SignedDuration::from_secs(1 + r.below(step_gap.unsigned_abs()) as i64);
            at
        };
        let case = json!({
            "id": case_id, "tenant": tenant, "store": format!("{tenant}-us"), "platform": "demo_seller_center",
            "channel": channel, "customer": {"id": customer, "identity": "verified"},
            "messages": [{"from": "customer", "text": intent.text, "at": start}],
            "order_ids": [order],
        });
        let c = Some(case_id.clone());
        out.push(Draft {
            case_id: c.clone(),
            kind: "case_opened",
            actor: agent.clone(),
            at: start,
            payload: json!({"case": case}),
        });
        if r.chance(30) {
            let at = later(r);
            out.push(Draft {
                case_id: c.clone(),
                kind: "identity_checked",
                actor: agent.clone(),
                at,
                payload: json!({"customer_id": customer, "how": "called back on the number on file"}),
            });
        }
        let at_read = later(r);
        out.push(Draft {
            case_id: c.clone(),
            kind: "context_read",
            actor: agent.clone(),
            at: at_read,
            payload: json!({"orders": [], "fields": ["order.status", "order.items", "order.total", "customer.email"]}),
        });
        let steps: Vec<Value> = intent
            .steps
            .iter()
            .enumerate()
            .map(|(i, (action, _))| {
                json!({"id": format!("s{}", i + 1), "action": action,
                       "params": {"order_id": {"value": order, "source": "connector"}}})
            })
            .collect();
        let at_plan = later(r);
        out.push(Draft {
            case_id: c.clone(),
            kind: "plan_proposed",
            actor: "scripted".into(),
            at: at_plan,
            payload: json!({"plan": {"id": plan_id, "case_id": case_id, "planner": "scripted", "intent": intent.name,
                                     "steps": steps}}),
        });
        let digest = |i: usize| format!("{:064x}", (n << 4) + i as u64);
        let decided: Vec<Value> = intent
            .steps
            .iter()
            .enumerate()
            .map(|(i, (action, decision))| {
                json!({"step_id": format!("s{}", i + 1), "action": action, "decision": decision,
                       "reasons": [{"rule": format!("action.{action}"), "decision": decision,
                                    "text": format!("{action} is {decision} by default")}],
                       "rule_ids": [format!("action.{action}")], "step_digest": digest(i),
                       "approver_roles": if *decision == "supervisor" { vec!["team_lead"] } else { vec![] },
                       "may_read": []})
            })
            .collect();
        let at_decided = later(r);
        out.push(Draft {
            case_id: c.clone(),
            kind: "decided",
            actor: "policy".into(),
            at: at_decided,
            payload: json!({"decision": {"plan_id": plan_id, "case_id": case_id, "policy_id": "demo-retail",
                                         "policy_version": 1, "policy_hash": format!("{:064x}", 4), "handoff": false,
                                         "signals": [], "steps": decided}}),
        });
        for (i, (action, decision)) in intent.steps.iter().enumerate() {
            let step_id = format!("s{}", i + 1);
            let run = match *decision {
                "auto" => true,
                "confirm" => r.chance(90),
                "supervisor" => {
                    let at = later(r);
                    out.push(Draft {
                        case_id: c.clone(),
                        kind: "review_requested",
                        actor: agent.clone(),
                        at,
                        payload: json!({"plan_id": plan_id, "step_id": step_id, "step_digest": digest(i),
                                        "decision": "supervisor", "approver_roles": ["team_lead"]}),
                    });
                    let approved = r.chance(75);
                    let at = later(r);
                    out.push(Draft {
                        case_id: c.clone(),
                        kind: "review_decided",
                        actor: "lead-1".into(),
                        at,
                        payload: json!({"plan_id": plan_id, "step_id": step_id, "step_digest": digest(i),
                                        "policy_hash": format!("{:064x}", 4),
                                        "verdict": if approved { "approved" } else { "rejected" },
                                        "by": {"id": format!("lead-{}", 1 + r.below(3)), "role": "team_lead"},
                                        "reason": if approved { "checked the order history" } else { "not eligible" }}),
                    });
                    approved
                }
                _ => false,
            };
            if !run {
                continue;
            }
            let at = later(r);
            out.push(Draft {
                case_id: c.clone(),
                kind: "step_started",
                actor: agent.clone(),
                at,
                payload: json!({"plan_id": plan_id, "step_id": step_id, "step_digest": digest(i),
                                "idempotency_key": format!("{plan_id}-{step_id}-1"),
                                "request": {"action": action, "order_id": order}}),
            });
            let outcome = *r.pick(&[(94, "succeeded"), (3, "failed"), (2, "unknown"), (1, "needs_human")]);
            let at = later(r);
            out.push(Draft {
                case_id: c.clone(),
                kind: "step_finished",
                actor: agent.clone(),
                at,
                payload: json!({"plan_id": plan_id, "step_id": step_id, "outcome": outcome,
                                "before": {"status": "pending"}, "after": {"status": "done"},
                                "request": {"action": action, "order_id": order},
                                "response": {"ok": outcome == "succeeded"}}),
            });
            if outcome == "unknown" && r.chance(50) {
                let at = later(r);
                out.push(Draft {
                    case_id: c.clone(),
                    kind: "step_settled",
                    actor: "lead-1".into(),
                    at,
                    payload: json!({"plan_id": plan_id, "step_id": step_id, "applied": r.chance(60),
                                    "reason": "checked on the seller center"}),
                });
            }
        }
        if r.chance(80) {
            let at = later(r);
            out.push(Draft {
                case_id: c,
                kind: "reply_sent",
                actor: agent,
                at,
                payload: json!({"plan_id": plan_id, "text": "Thank you for your patience; this is done now.",
                                "citations": []}),
            });
        }
        let jitter = SignedDuration::from_secs(self.rng.below(60) as i64);
        self.next_at = start + self.every + jitter;
        out
    }

    /// Chain `drafts` onto the desk's log, and write their events, cases and steps.
    fn write(&mut self, drafts: Vec<Draft>, copy: &mut Copy) {
        let mut facets = Facets::default();
        for d in drafts {
            if self.seq >= self.quota {
                break;
            }
            self.seq += 1;
            let event = NewEvent {
                case_id: d.case_id.clone(),
                kind: d.kind.to_string(),
                actor: d.actor.clone(),
                at: d.at,
                payload: d.payload,
            };
            let body = canonical_body(self.seq, &event).unwrap();
            let hash = Hash::link(&self.prev, body.as_bytes());
            let typed: Event = serde_json::from_value(json!({"kind": d.kind, "payload": event.payload}))
                .unwrap_or_else(|e| panic!("a {} event the core reads: {e}", d.kind));
            facets.take(&self.device, d.at, d.case_id.as_deref(), &d.actor, &typed, &mut self.facts);
            copy.stream_seq += 1;
            let fields = [
                hash.to_hex(),
                copy_field(&self.device),
                self.seq.to_string(),
                self.prev.to_hex(),
                d.at.to_string(),
                nullable(d.case_id.as_deref()),
                d.kind.to_string(),
                copy_field(&d.actor),
                copy_field(&body),
                copy_field(&event.payload.to_string()),
                copy.stream_seq.to_string(),
            ];
            copy.events.push_str(&fields.join("\t"));
            copy.events.push('\n');
            copy.n_events += 1;
            self.prev = hash;
        }
        let mut tenants = BTreeMap::new();
        for c in facets.cases.values() {
            tenants.insert(c.case_id.clone(), c.tenant.clone());
            let fields = [copy_field(&c.device), copy_field(&c.case_id), copy_field(&c.tenant), copy_field(&c.channel)];
            copy.cases.push_str(&format!("{}\t{}\n", fields.join("\t"), c.at));
        }
        for (k, s) in &facets.steps {
            let review = facets.reviews.get(k);
            let end = facets.ends.get(k).filter(|e| e.1.is_some());
            let tenant = s.case_id.as_ref().and_then(|c| tenants.get(c));
            let fields = [
                copy_field(&s.device),
                copy_field(&s.plan_id),
                copy_field(&s.step_id),
                nullable(s.case_id.as_deref()),
                nullable(tenant.map(String::as_str)),
                copy_field(&s.action),
                copy_field(&s.decision),
                copy_field(&s.agent),
                nullable(s.pack.as_ref().map(|p| p.0.as_str())),
                s.pack.as_ref().map_or_else(|| "\\N".to_string(), |p| p.1.to_string()),
                s.at.to_string(),
                nullable(review.map(|r| r.1)),
                nullable(review.map(|r| r.2.as_str())),
                review.map_or_else(|| "\\N".to_string(), |r| r.0.to_string()),
                nullable(end.and_then(|e| e.1.as_deref())),
                end.map_or_else(|| "\\N".to_string(), |e| e.0.to_string()),
            ];
            copy.steps.push_str(&fields.join("\t"));
            copy.steps.push('\n');
            copy.n_steps += 1;
        }
    }
}

async fn copy_in(conn: &mut sqlx::PgConnection, statement: &'static str, text: &mut String) {
    if text.is_empty() {
        return;
    }
    let mut copy = conn.copy_in_raw(statement).await.unwrap();
    copy.send(std::mem::take(text).into_bytes()).await.unwrap();
    copy.finish().await.unwrap();
}

/// Fill the database: `total` events over `desks` desks, their cases and steps, in time
/// order; returns how many events and steps it wrote.
async fn fill(pool: &sqlx::PgPool, desks: usize, total: u64, now: Timestamp) -> (u64, u64) {
    let span = SignedDuration::from_hours(24 * 90);
    let start = now - span;
    // About nine events a case.
    let per_desk = total / desks as u64;
    let cases_per_desk = (per_desk / 9).max(1);
    let every = SignedDuration::from_secs(span.as_secs() / cases_per_desk as i64);
    let mut chains: Vec<DeskChain> = (0..desks)
        .map(|i| {
            let mut rng = Rng(0xC0FFEE ^ (i as u64 * 7919));
            let offset = SignedDuration::from_secs(rng.below(every.as_secs().unsigned_abs()) as i64);
            DeskChain {
                device: format!("desk-{i:03}"),
                index: i,
                rng,
                seq: 0,
                prev: Hash::genesis(),
                facts: DeskFacts::default(),
                next_at: start + offset,
                every,
                upgrade_at: start + SignedDuration::from_hours(24 * (40 + i as i64)),
                upgraded: false,
                cases: 0,
                quota: per_desk + u64::from((i as u64) < total % desks as u64),
            }
        })
        .collect();
    let mut conn = pool.acquire().await.unwrap();
    for c in &chains {
        sqlx::query("INSERT INTO devices (device, last_seq, last_hash) VALUES ($1, 0, $2)")
            .bind(&c.device)
            .bind(Hash::genesis().to_hex())
            .execute(&mut *conn)
            .await
            .unwrap();
    }
    let mut copy = Copy::default();
    // The desks' cases merged in time order, as they would reach the team.
    while let Some(next) = chains.iter_mut().filter(|c| c.seq < c.quota).min_by_key(|c| c.next_at) {
        let drafts = next.next_case();
        next.write(drafts, &mut copy);
        if copy.events.len() > 32 << 20 {
            flush(&mut conn, &mut copy).await;
        }
    }
    flush(&mut conn, &mut copy).await;
    for c in &chains {
        sqlx::query(
            "UPDATE devices SET last_seq = $2, last_hash = $3, pack_id = $4, pack_version = $5, agent = $6
             WHERE device = $1",
        )
        .bind(&c.device)
        .bind(c.seq as i64)
        .bind(c.prev.to_hex())
        .bind(c.facts.pack.as_ref().map(|p| p.0.clone()))
        .bind(c.facts.pack.as_ref().map(|p| p.1 as i64))
        .bind(&c.facts.agent)
        .execute(&mut *conn)
        .await
        .unwrap();
    }
    (copy.n_events, copy.n_steps)
}

async fn flush(conn: &mut sqlx::PgConnection, copy: &mut Copy) {
    copy_in(
        conn,
        "COPY events (hash, device, seq, prev_hash, at, case_id, kind, actor, body, payload, stream_seq) FROM STDIN",
        &mut copy.events,
    )
    .await;
    copy_in(conn, "COPY cases (device, case_id, tenant, channel, first_at) FROM STDIN", &mut copy.cases).await;
    copy_in(
        conn,
        "COPY steps (device, plan_id, step_id, case_id, tenant, action, decision, agent, pack_id, pack_version, \
         decided_at, verdict, reviewed_by, reviewed_at, outcome, ended_at) FROM STDIN",
        &mut copy.steps,
    )
    .await;
}

/// A lead's question, and the `count(*)` of everything it matches (the reference).
struct Probe {
    name: String,
    grants: Grants,
    filter: StepFilter,
    /// Pages deep (1: the first page only); each page is one timed call.
    pages: usize,
    count_sql: String,
}

fn filter() -> StepFilter {
    StepFilter::default()
}

fn probes(now: Timestamp) -> Vec<Probe> {
    let all = Grants::default();
    let day = |d: i64| (now - SignedDuration::from_hours(24 * d)).to_string();
    let (week_from, week_to) = (day(37), day(30));
    let (day_from, day_to) = (day(61), day(60));
    let restricted = Grants {
        desks: Some((0..5).map(|i| format!("desk-{:03}", i * 4)).collect()),
        tenants: Some(vec!["acme".into(), "globex".into()]),
    };
    let restricted_sql = "device IN ('desk-000','desk-004','desk-008','desk-012','desk-016') \
                          AND tenant IN ('acme','globex')";
    let p = |name: &str, grants: &Grants, filter: StepFilter, pages: usize, count: String| Probe {
        name: name.into(),
        grants: grants.clone(),
        filter,
        pages,
        count_sql: format!("SELECT count(*) FROM steps WHERE {count}"),
    };
    vec![
        p("no filter", &all, filter(), 1, "true".into()),
        p("agent", &all, StepFilter { agent: Some("agent-07".into()), ..filter() }, 1, "agent = 'agent-07'".into()),
        p("desk", &all, StepFilter { desk: Some("desk-011".into()), ..filter() }, 1, "device = 'desk-011'".into()),
        p(
            "action (common: refund_partial)",
            &all,
            StepFilter { action: Some("refund_partial".into()), ..filter() },
            1,
            "action = 'refund_partial'".into(),
        ),
        p(
            "action (rare: change_account_email)",
            &all,
            StepFilter { action: Some("change_account_email".into()), ..filter() },
            1,
            "action = 'change_account_email'".into(),
        ),
        p(
            "decision supervisor",
            &all,
            StepFilter { decision: Some("supervisor".into()), ..filter() },
            1,
            "decision = 'supervisor'".into(),
        ),
        p(
            "decision forbid",
            &all,
            StepFilter { decision: Some("forbid".into()), ..filter() },
            1,
            "decision = 'forbid'".into(),
        ),
        p(
            "outcome succeeded",
            &all,
            StepFilter { outcome: Some("succeeded".into()), ..filter() },
            1,
            "outcome = 'succeeded'".into(),
        ),
        p(
            "outcome failed",
            &all,
            StepFilter { outcome: Some("failed".into()), ..filter() },
            1,
            "outcome = 'failed'".into(),
        ),
        p(
            "outcome needs_human",
            &all,
            StepFilter { outcome: Some("needs_human".into()), ..filter() },
            1,
            "outcome = 'needs_human'".into(),
        ),
        p(
            "outcome open",
            &all,
            StepFilter { outcome: Some("open".into()), ..filter() },
            1,
            "outcome IS NULL AND verdict IS DISTINCT FROM 'rejected'".into(),
        ),
        p(
            "outcome rejected",
            &all,
            StepFilter { outcome: Some("rejected".into()), ..filter() },
            1,
            "verdict = 'rejected'".into(),
        ),
        p(
            "pack version 3 (older)",
            &all,
            StepFilter { pack_version: Some(3), ..filter() },
            1,
            "pack_version = 3".into(),
        ),
        p("pack version 4", &all, StepFilter { pack_version: Some(4), ..filter() }, 1, "pack_version = 4".into()),
        p(
            "tenant globex",
            &all,
            StepFilter { tenant: Some("globex".into()), ..filter() },
            1,
            "tenant = 'globex'".into(),
        ),
        p(
            "tenant initech",
            &all,
            StepFilter { tenant: Some("initech".into()), ..filter() },
            1,
            "tenant = 'initech'".into(),
        ),
        p(
            "since (last 7 days)",
            &all,
            StepFilter { since: Some(day(7)), ..filter() },
            1,
            format!("decided_at >= '{}'", day(7)),
        ),
        p(
            "window: a week, a month ago",
            &all,
            StepFilter { since: Some(week_from.clone()), until: Some(week_to.clone()), ..filter() },
            1,
            format!("decided_at >= '{week_from}' AND decided_at < '{week_to}'"),
        ),
        p(
            "window: one day, two months ago",
            &all,
            StepFilter { since: Some(day_from.clone()), until: Some(day_to.clone()), ..filter() },
            1,
            format!("decided_at >= '{day_from}' AND decided_at < '{day_to}'"),
        ),
        p(
            "agent + action",
            &all,
            StepFilter { agent: Some("agent-03".into()), action: Some("cancel_pending_order".into()), ..filter() },
            1,
            "agent = 'agent-03' AND action = 'cancel_pending_order'".into(),
        ),
        p(
            "desk + supervisor + rejected",
            &all,
            StepFilter {
                desk: Some("desk-005".into()),
                decision: Some("supervisor".into()),
                outcome: Some("rejected".into()),
                ..filter()
            },
            1,
            "device = 'desk-005' AND decision = 'supervisor' AND verdict = 'rejected'".into(),
        ),
        p(
            "tenant + open + since 30 days",
            &all,
            StepFilter {
                tenant: Some("initech".into()),
                outcome: Some("open".into()),
                since: Some(day(30)),
                ..filter()
            },
            1,
            format!(
                "tenant = 'initech' AND outcome IS NULL AND verdict IS DISTINCT FROM 'rejected' AND decided_at >= '{}'",
                day(30)
            ),
        ),
        p(
            "refund + supervisor + v4 + week window",
            &all,
            StepFilter {
                action: Some("refund_partial".into()),
                decision: Some("supervisor".into()),
                pack_version: Some(4),
                since: Some(week_from.clone()),
                until: Some(week_to.clone()),
                ..filter()
            },
            1,
            format!(
                "action = 'refund_partial' AND decision = 'supervisor' AND pack_version = 4 AND decided_at >= \
                 '{week_from}' AND decided_at < '{week_to}'"
            ),
        ),
        p(
            "agent + failed (empty-ish)",
            &all,
            StepFilter { agent: Some("agent-11".into()), outcome: Some("failed".into()), ..filter() },
            1,
            "agent = 'agent-11' AND outcome = 'failed'".into(),
        ),
        p(
            "agent on a desk they never sit at (empty)",
            &all,
            StepFilter { agent: Some("agent-01".into()), desk: Some("desk-001".into()), ..filter() },
            1,
            "agent = 'agent-01' AND device = 'desk-001'".into(),
        ),
        p(
            "decision auto + rejected (empty: never reviewed)",
            &all,
            StepFilter { decision: Some("auto".into()), outcome: Some("rejected".into()), ..filter() },
            1,
            "decision = 'auto' AND verdict = 'rejected'".into(),
        ),
        p(
            "decision auto + open (auto steps not ended)",
            &all,
            StepFilter { decision: Some("auto".into()), outcome: Some("open".into()), ..filter() },
            1,
            "decision = 'auto' AND outcome IS NULL AND verdict IS DISTINCT FROM 'rejected'".into(),
        ),
        p(
            "a read action + supervisor (empty)",
            &all,
            StepFilter { action: Some("get_order_details".into()), decision: Some("supervisor".into()), ..filter() },
            1,
            "action = 'get_order_details' AND decision = 'supervisor'".into(),
        ),
        p("restricted grant (5 desks, 2 tenants)", &restricted, filter(), 1, restricted_sql.into()),
        p(
            "restricted grant + action",
            &restricted,
            StepFilter { action: Some("send_password_reset".into()), ..filter() },
            1,
            format!("{restricted_sql} AND action = 'send_password_reset'"),
        ),
        p(
            "restricted grant + desk outside it (empty)",
            &restricted,
            StepFilter { desk: Some("desk-001".into()), ..filter() },
            1,
            format!("{restricted_sql} AND device = 'desk-001'"),
        ),
        p("no filter, 5 pages deep", &all, filter(), 5, "true".into()),
        p(
            "outcome open, 5 pages deep",
            &all,
            StepFilter { outcome: Some("open".into()), ..filter() },
            5,
            "outcome IS NULL AND verdict IS DISTINCT FROM 'rejected'".into(),
        ),
        p(
            "agent + rejected, 5 pages deep",
            &all,
            StepFilter { agent: Some("agent-02".into()), outcome: Some("rejected".into()), ..filter() },
            5,
            "agent = 'agent-02' AND verdict = 'rejected'".into(),
        ),
        p("no filter, 500 rows a page", &all, StepFilter { limit: Some(500), ..filter() }, 1, "true".into()),
    ]
}

/// Every page of `probe` in turn; the time of each call, and the rows of the first page.
async fn run_probe(pool: &sqlx::PgPool, probe: &Probe) -> (Vec<Duration>, usize) {
    let mut times = Vec::with_capacity(probe.pages);
    let mut filter = probe.filter.clone();
    let mut first = None;
    for _ in 0..probe.pages {
        let started = Instant::now();
        let (rows, next) = steps_page(pool, &probe.grants, &filter).await.unwrap();
        times.push(started.elapsed());
        first.get_or_insert(rows.len());
        match next {
            Some(n) => filter.after = Some(n),
            None => break,
        }
    }
    (times, first.unwrap_or(0))
}

struct Stats {
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
}

fn stats(times: &[Duration]) -> Stats {
    let mut sorted = times.to_vec();
    sorted.sort();
    Stats {
        p50: ms(percentile(&sorted, 50)),
        p95: ms(percentile(&sorted, 95)),
        p99: ms(percentile(&sorted, 99)),
        max: ms(*sorted.last().unwrap()),
    }
}

fn main() {
    let total = env("VIEW_BENCH_EVENTS", 2_000_000).max(1) as u64;
    let desks = env("VIEW_BENCH_DESKS", 20).max(1);
    let reps = env("VIEW_BENCH_REPS", 100).max(1);
    let count_reps = env("VIEW_BENCH_COUNT_REPS", 5).max(1);
    println!("== the lead's filters: {total} events from {desks} desks, {reps} runs of each filter ==");
    let db = Postgres::start_with(true);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let options =
        countersign_team::project::connect_options(&countersign_connectors::credentials::Secret::new(db.url()))
            .unwrap();
    let pool = rt.block_on(countersign_team::project::open(&options)).unwrap();
    // A checkpoint every 256 MB of WAL (not the default 1 GB): the fill's WAL takes less
    // of the disk. Nothing is written while the filters are timed.
    rt.block_on(async {
        sqlx::query("ALTER SYSTEM SET max_wal_size = '256MB'").execute(&pool).await.unwrap();
        sqlx::query("SELECT pg_reload_conf()").execute(&pool).await.unwrap();
    });
    // Whole seconds: the same `since` text every run of a filter.
    let now = Timestamp::from_second(Timestamp::now().as_second()).unwrap();

    let filled = Instant::now();
    let (events, steps) = rt.block_on(fill(&pool, desks, total, now));
    println!("filled {events} events and {steps} steps in {:.1} s", filled.elapsed().as_secs_f64());
    let analysed = Instant::now();
    rt.block_on(sqlx::query("ANALYZE").execute(&pool)).unwrap();
    println!("ANALYZE in {:.1} s", analysed.elapsed().as_secs_f64());
    let sizes: Vec<(String, i64, i64)> = rt
        .block_on(
            sqlx::query_as(
                "SELECT relname::text, pg_table_size(oid), pg_indexes_size(oid) FROM pg_class
                 WHERE relname IN ('events', 'cases', 'steps') ORDER BY relname",
            )
            .fetch_all(&pool),
        )
        .unwrap();
    for (name, table, indexes) in &sizes {
        println!("{name}: table {} MiB, indexes {} MiB", table >> 20, indexes >> 20);
    }
    let counts: Vec<(String, i64)> = rt
        .block_on(
            sqlx::query_as(
                "SELECT 'cases', count(*) FROM cases UNION ALL SELECT 'steps ' || decision, count(*) FROM steps
                 GROUP BY decision UNION ALL SELECT 'outcome ' || coalesce(outcome, verdict, 'open'), count(*)
                 FROM steps GROUP BY coalesce(outcome, verdict, 'open') ORDER BY 1",
            )
            .fetch_all(&pool),
        )
        .unwrap();
    println!("{}", counts.iter().map(|(k, n)| format!("{k}: {n}")).collect::<Vec<_>>().join(", "));

    let probes = probes(now);
    // One untimed pass (plans, caches), then round robin.
    let mut first_run = Vec::new();
    for p in &probes {
        let started = Instant::now();
        rt.block_on(run_probe(&pool, p));
        first_run.push(started.elapsed());
    }
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); probes.len()];
    let mut last_page: Vec<Vec<Duration>> = vec![Vec::new(); probes.len()];
    let timed = Instant::now();
    for _ in 0..reps {
        for (i, p) in probes.iter().enumerate() {
            let (t, _) = rt.block_on(run_probe(&pool, p));
            if p.pages > 1 {
                last_page[i].push(*t.last().unwrap());
            }
            times[i].extend(t);
        }
    }
    println!("timed {} calls in {:.1} s", times.iter().map(Vec::len).sum::<usize>(), timed.elapsed().as_secs_f64());

    // References: the round trip's floor, and each filter's count of every match.
    let (floor_key,): (String,) =
        rt.block_on(sqlx::query_as("SELECT plan_id FROM steps LIMIT 1").fetch_one(&pool)).unwrap();
    let mut floor = Vec::new();
    for _ in 0..reps * 5 {
        let started = Instant::now();
        let row: Option<(i32,)> = rt
            .block_on(
                sqlx::query_as("SELECT 1 FROM steps WHERE device = 'desk-000' AND plan_id = $1 AND step_id = 's1'")
                    .bind(&floor_key)
                    .fetch_optional(&pool),
            )
            .unwrap();
        floor.push(started.elapsed());
        let _ = row;
    }
    let mut count_times = Vec::new();
    let mut matched = Vec::new();
    for p in &probes {
        let mut t = Vec::new();
        let mut n = 0;
        for _ in 0..count_reps {
            let started = Instant::now();
            let (c,): (i64,) =
                rt.block_on(sqlx::query_as(sqlx::AssertSqlSafe(p.count_sql.clone())).fetch_one(&pool)).unwrap();
            t.push(started.elapsed());
            n = c;
        }
        count_times.push(t);
        matched.push(n);
    }

    let all: Vec<Duration> = times.iter().flatten().copied().collect();
    let overall = stats(&all);
    let f = stats(&floor);
    println!("\n| filter | rows matched | p50 | p95 | p99 | max | first run | `count(*)` of the matches, p50 |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (i, p) in probes.iter().enumerate() {
        let s = stats(&times[i]);
        let c = stats(&count_times[i]);
        let pages = if p.pages > 1 {
            let l = stats(&last_page[i]);
            format!(" (page {}: p95 {:.1})", p.pages, l.p95)
        } else {
            String::new()
        };
        println!(
            "| {}{} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            p.name,
            pages,
            matched[i],
            s.p50,
            s.p95,
            s.p99,
            s.max,
            ms(first_run[i]),
            c.p50
        );
    }
    println!(
        "| **every call** ({} calls) | | **{:.1}** | **{:.1}** | **{:.1}** | {:.1} | | |",
        all.len(),
        overall.p50,
        overall.p95,
        overall.p99,
        overall.max
    );
    println!(
        "| reference: one-row primary-key read of `steps` ({} calls) | 1 | {:.2} | {:.2} | {:.2} | {:.2} | | |",
        floor.len(),
        f.p50,
        f.p95,
        f.p99,
        f.max
    );
    let over: Vec<&str> =
        probes.iter().zip(&times).filter(|(_, t)| stats(t).p95 > 200.0).map(|(p, _)| p.name.as_str()).collect();
    println!("\nfilters with p95 over 200 ms: {}", if over.is_empty() { "none".into() } else { over.join(", ") });

    let hold = env("VIEW_BENCH_HOLD_SECS", 0);
    if hold > 0 {
        println!("\nthe cluster stays up at {} for {hold} s", db.url());
        std::thread::sleep(Duration::from_secs(hold as u64));
    }
}
