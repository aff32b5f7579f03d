//! Earned autonomy across the team: every visible desk's steps read from the team's store
//! into the newest pack's bands ([`countersign_core::autonomy`]), and each proposal's
//! draft replayed over the team's recorded decisions ([`countersign_core::simulate`]).
//! A lead asks over the team view; nothing here changes a policy.

use std::collections::BTreeMap;

use countersign_core::Policy;
use countersign_core::autonomy::{Gather, propose, record};
use countersign_core::evidence::Event;
use countersign_core::simulate::{Logged, Recorded, SimulationReport, Unreplayable, pair, simulate};
use countersign_core::teamview::{TeamAutonomy, TeamProposal};
use countersign_trust::pack::{POLICY_FILE, Pack};
use jiff::Timestamp;
use sqlx::PgPool;

use crate::view::{Grants, Refusal, db, refuse};

/// One event as the team's store holds it: desk, seq, time, actor, kind, payload.
type Row = (String, i64, String, String, String, String);

/// The most events a record reads (decisions without their inputs), and the most a
/// simulation reads (with them): past these, the answer is refused as too large rather
/// than the service running out of memory.
const MAX_RECORD_EVENTS: i64 = 2_000_000;
const MAX_REPLAY_EVENTS: i64 = 400_000;

/// The events of `kinds` on the desks and tenants `grants` allows, each desk's in order;
/// a `decided` one without its recorded inputs unless `inputs`; at most `limit`.
async fn events(pool: &PgPool, grants: &Grants, kinds: &[&str], inputs: bool, limit: i64) -> Result<Vec<Row>, Refusal> {
    let kinds: Vec<String> = kinds.iter().map(|k| (*k).to_string()).collect();
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT e.device, e.seq, to_json(e.at)#>>'{}', e.actor, e.kind,
                CASE WHEN e.kind = 'decided' AND NOT $4 THEN (e.payload - 'inputs')::text ELSE e.payload::text END
         FROM events e
         LEFT JOIN cases c ON c.device = e.device AND c.case_id = e.case_id
         WHERE e.kind = ANY($1)
           AND ($2::text[] IS NULL OR e.device = ANY($2))
           AND ($3::text[] IS NULL OR c.tenant = ANY($3))
         ORDER BY e.device, e.seq
         LIMIT $5",
    )
    .bind(&kinds)
    .bind(&grants.desks)
    .bind(&grants.tenants)
    .bind(inputs)
    .bind(limit + 1)
    .fetch_all(pool)
    .await
    .map_err(db)?;
    if i64::try_from(rows.len()).unwrap_or(i64::MAX) > limit {
        return Err(refuse(
            "too_large",
            format!(
                "the desks you may see hold more than {limit} events of this kind: earned autonomy and simulation \
                 over the team read them all; ask the admin for narrower view grants, or simulate on a desk"
            ),
        ));
    }
    Ok(rows)
}

fn unreadable(desk: &str, seq: i64, e: impl std::fmt::Display) -> Refusal {
    refuse("unavailable", format!("event {seq} of {desk} cannot be read from the team's store: {e}"))
}

/// Each band's record over the desks the lead may see, and the newest pack's proposals,
/// each with its simulation over the same desks' decisions.
pub async fn autonomy(pool: &PgPool, grants: &Grants, pack: &Pack) -> Result<TeamAutonomy, Refusal> {
    let mut answer = TeamAutonomy {
        pack_id: pack.info.id.clone(),
        pack_version: pack.info.version,
        desks: Vec::new(),
        settings: pack.policy.autonomy.clone(),
        records: Vec::new(),
        proposals: Vec::new(),
    };
    let Some(settings) = &pack.policy.autonomy else { return Ok(answer) };
    let mut gather = Gather::default();
    for (desk, seq, at, actor, kind, payload) in events(pool, grants, &Gather::KINDS, false, MAX_RECORD_EVENTS).await? {
        let at: Timestamp = at.parse().map_err(|e| unreadable(&desk, seq, e))?;
        let event = Event::from_text(&kind, &payload).map_err(|e| unreadable(&desk, seq, e))?;
        gather.add(&desk, seq.unsigned_abs(), at, &actor, &event);
        if answer.desks.last() != Some(&desk) {
            answer.desks.push(desk);
        }
    }
    answer.records = record(settings, &gather.finish(), Timestamp::now());
    let source = pack
        .files()
        .get(POLICY_FILE)
        .and_then(|b| std::str::from_utf8(b).ok())
        .ok_or_else(|| refuse("no_pack", format!("pack {} has no readable {POLICY_FILE}", pack.info.id)))?;
    let proposals = propose(&pack.policy, source, &answer.records);
    let drafts: Vec<Option<Policy>> =
        proposals.iter().map(|p| p.draft.as_deref().and_then(|d| Policy::parse("draft", d).ok())).collect();
    let (recorded, without_inputs, unreplayable) = if drafts.iter().any(Option::is_some) {
        let (r, without, unreplayable) = recorded(pool, grants).await?;
        (r.into_iter().map(|r| r.recorded).collect::<Vec<_>>(), without, unreplayable)
    } else {
        (Vec::new(), 0, Vec::new())
    };
    for (proposal, draft) in proposals.into_iter().zip(drafts) {
        let report = draft.map(|draft| {
            let mut simulation = simulate(&draft, &recorded);
            simulation.unreplayable.extend(unreplayable.iter().cloned());
            SimulationReport::new(&draft, &simulation, None, without_inputs)
        });
        answer.proposals.push(TeamProposal { proposal, report });
    }
    Ok(answer)
}

/// `draft` (a policy's text) replayed over the decisions of the desks the lead may see,
/// reporting those made at or after `since`; and those desks.
pub async fn simulate_draft(
    pool: &PgPool,
    grants: &Grants,
    draft: &str,
    since: Option<Timestamp>,
) -> Result<(SimulationReport, Vec<String>), Refusal> {
    let draft = Policy::parse("draft", draft).map_err(|e| refuse("bad_ask", format!("the draft: {e}")))?;
    // Without the encoder a draft that turns it on would hand off every replayed case.
    countersign_core::learned::check_encoder_for(&draft)
        .map_err(|e| refuse("unavailable", format!("cannot replay decisions under this draft: {e}")))?;
    let (recorded, without_inputs, unreplayable) = recorded(pool, grants).await?;
    let mut desks: Vec<String> = recorded.iter().map(|r| r.desk.clone()).collect();
    desks.sort();
    desks.dedup();
    let recorded: Vec<Recorded> = recorded.into_iter().map(|r| r.recorded).collect();
    let mut simulation = simulate(&draft, &recorded);
    simulation.unreplayable.extend(unreplayable);
    Ok((SimulationReport::new(&draft, &simulation, since, without_inputs), desks))
}

/// A recorded decision and the desk that recorded it.
struct DeskRecorded {
    desk: String,
    recorded: Recorded,
}

/// Every decision the visible desks recorded with what it read, in the order decided
/// across the team; how many carry no inputs; those that cannot be replayed.
async fn recorded(pool: &PgPool, grants: &Grants) -> Result<(Vec<DeskRecorded>, usize, Vec<Unreplayable>), Refusal> {
    let kinds = ["case_opened", "case_received", "plan_proposed", "decided"];
    let mut logs: BTreeMap<String, Vec<(u64, Logged)>> = BTreeMap::new();
    for (desk, seq, at, _, kind, payload) in events(pool, grants, &kinds, true, MAX_REPLAY_EVENTS).await? {
        let bad = |e: &dyn std::fmt::Display| unreadable(&desk, seq, e);
        let item = match Event::from_text(&kind, &payload).map_err(|e| bad(&e))? {
            Event::CaseOpened { case } | Event::CaseReceived { case, .. } => Logged::Case(Box::new(case)),
            Event::PlanProposed { plan } => Logged::Plan(Box::new(plan)),
            Event::Decided { decision, inputs } => {
                Logged::Decided { at: at.parse().map_err(|e| bad(&e))?, decision: Box::new(decision), inputs }
            }
            _ => continue,
        };
        logs.entry(desk.clone()).or_default().push((seq.unsigned_abs(), item));
    }
    let (mut recorded, mut without_inputs, mut unreplayable) = (Vec::new(), 0, Vec::new());
    for (desk, log) in logs {
        let (candidates, without, mut refused) = pair(log);
        without_inputs += without;
        unreplayable.append(&mut refused);
        for candidate in candidates {
            let holds = candidate.holds();
            match candidate.check(holds) {
                Ok(r) => recorded.push(DeskRecorded { desk: desk.clone(), recorded: r }),
                Err(u) => unreplayable.push(u),
            }
        }
    }
    recorded.sort_by_key(|r| r.recorded.at);
    Ok((recorded, without_inputs, unreplayable))
}

/// Every case a simulation report names (its samples, what it could not replay): what a
/// lead was shown.
pub fn report_cases(report: &SimulationReport) -> Vec<String> {
    let moves = report
        .actions
        .iter()
        .flat_map(|a| a.moves.iter())
        .chain(report.rules.iter().flat_map(|r| r.starts.iter().chain(r.stops.iter())))
        .chain(report.replies.iter());
    let mut cases: Vec<String> = moves
        .flat_map(|m| m.samples.iter().map(|s| s.case_id.clone()))
        .chain(report.unreplayable.iter().map(|u| u.case_id.clone()))
        .collect();
    cases.sort();
    cases.dedup();
    cases
}

/// Every case an earned-autonomy answer names: the records' samples and reversals, and
/// each proposal's simulation.
pub fn autonomy_cases(answer: &TeamAutonomy) -> Vec<String> {
    let mut cases: Vec<String> = answer
        .records
        .iter()
        .flat_map(|r| r.samples.iter().cloned().chain(r.reversed.iter().map(|x| x.case_id.clone())))
        .chain(answer.proposals.iter().filter_map(|p| p.report.as_ref()).flat_map(report_cases))
        .collect();
    cases.sort();
    cases.dedup();
    cases
}
