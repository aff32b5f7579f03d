//! The engine's side of the optional team plane: pauses that reach every desktop, and
//! the lease that tells a desktop it is still hearing them.
//!
//! The engine never talks to the network. A face joins it to a team with
//! [`Engine::join_team`], handing in a [`TeamPort`] (the NATS link, `countersign-plane`,
//! wired by the host) and feeding every entry the link sees into
//! [`Engine::team_entry`]. What an entry may do is decided here, against the signed
//! pack: a pause counts only when a lead on the pack's roster signed it with the key the
//! roster lists for them; a lease only when the team service's key signed it. A pause
//! that counts is recorded in this desktop's evidence, with its signed entry, and from
//! then on it is an ordinary pause: every decision and the executor's gate before each
//! call see it.
//!
//! Without a fresh lease (the policy's `cut_off.lease_secs`, default 30 s, by this engine's clock from when it saw the
//! last good one) the desktop cannot know it has seen every pause, so decisions take
//! the policy's `[cut_off]` floors ([`countersign_core::team::CutOff`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use countersign_core::evidence::{Event, Verdict};
use countersign_core::model::Pause;
use countersign_core::team::{ApprovalRequest, CutOff, Grant, Lease, SignedEntry, TeamPause, TeamPauseState};
use countersign_trust::keys::{PublicKey, SecretKey};
use countersign_trust::team::{self as signing, GRANT_DOMAIN, LEASE_DOMAIN, PAUSE_DOMAIN};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::{Engine, EngineError};

/// The key of the lease in the team's control bucket.
pub const LEASE_KEY: &str = "lease";
/// The prefix of a pause's key in the team's control bucket (`pause.<id>`).
pub const PAUSE_KEY_PREFIX: &str = "pause.";

/// The prefix of a supervisor step's request (`request.<device>.<id>`).
pub const REQUEST_KEY_PREFIX: &str = "request.";
/// The prefix of a lead's answer to it (`answer.<device>.<id>`).
pub const ANSWER_KEY_PREFIX: &str = "answer.";
/// The prefix of the team service's witnessed checkpoint of a desk (`witness.<device>`).
pub const WITNESS_KEY_PREFIX: &str = "witness.";
/// How long a lead's grant may wait to be taken up by the agent's desk.
const GRANT_VALID: SignedDuration = SignedDuration::from_mins(15);

/// How the engine publishes to its team (implemented over NATS by `countersign-plane`).
pub trait TeamPort: Send + Sync + std::fmt::Debug {
    /// Store `value` under `key` in the team's control bucket; `Ok` once the server has
    /// it. Refused when this desktop's credentials may not write there.
    fn put(&self, key: &str, value: Vec<u8>) -> Result<(), String>;
    /// Store `value` under `key` only if the key holds nothing yet: `Ok(false)` when it
    /// does (another lead answered first).
    fn create(&self, key: &str, value: Vec<u8>) -> Result<bool, String>;
    /// Is the link up right now (for the status line; freshness is the lease's)?
    fn connected(&self) -> bool;
    /// Ask the team service for `device`'s team view (`body`: a lead's signed ask) and
    /// return its answer's bytes.
    fn ask_view(&self, device: &str, body: Vec<u8>) -> Result<Vec<u8>, String>;
}

/// What joining a team needs.
#[derive(Debug)]
pub struct TeamSettings {
    pub team: String,
    /// This desktop's name in the team.
    pub device: String,
    /// The role this desktop was enrolled with; in a team it is the seat's role.
    pub role: String,
    /// The team service's key, which signs leases.
    pub service_key: PublicKey,
    /// This desktop's device key: what it signs on the team plane (a lead's pauses).
    pub signer: SecretKey,
}

#[derive(Debug)]
pub(crate) struct Team {
    settings: TeamSettings,
    port: Arc<dyn TeamPort>,
    /// The newest good lease and when this engine saw it.
    lease: Mutex<Option<(Lease, Timestamp)>>,
    /// Supervisor steps waiting on the team's desks, by request id, and which of them
    /// some lead has answered (a lead's queue).
    requests: Mutex<BTreeMap<String, ApprovalRequest>>,
    answered: Mutex<BTreeSet<String>>,
    /// This desk's requests already on the plane.
    published: Mutex<BTreeSet<String>>,
    /// What each desk of the team last said it runs, and when this desk heard it.
    desks: Mutex<BTreeMap<String, (DeskReport, Timestamp)>>,
    /// A newer signed pack the team published, fetched and staged for the next start.
    staged: Mutex<Option<u64>>,
    /// The announced pack objects this desk fetched and refused: not fetched again at
    /// every reconnect.
    refused_packs: Mutex<std::collections::BTreeSet<String>>,
    /// Team pauses seen and verified but not yet in this desk's evidence: in force from
    /// the moment they are seen (the gates read them), recorded by
    /// [`Engine::team_record_seen`] at the face's next tick, or before a gate or a
    /// decision reads them, whichever comes first.
    in_force: Mutex<BTreeMap<String, (Pause, SignedEntry)>>,
    /// The team pauses in this desk's evidence, by id: read from the log once (`None`
    /// until then), then kept up as this process records them, so that taking a pause in
    /// reads no file (see [`is_logged`]).
    logged: Mutex<Option<std::collections::HashSet<String>>>,
    /// The newest checkpoint of this desk the team service witnessed (its signed note).
    witnessed: Mutex<Option<String>>,
    /// The keys whose pauses count, read from the running pack it is kept with.
    #[allow(clippy::type_complexity)]
    pause_signers: Mutex<Option<(std::sync::Weak<crate::Running>, Arc<Vec<PublicKey>>)>>,
    /// Held while the pauses in force are recorded.
    recording: Mutex<()>,
}

impl Team {
    pub(crate) fn settings(&self) -> &TeamSettings {
        &self.settings
    }

    pub(crate) fn port(&self) -> &dyn TeamPort {
        self.port.as_ref()
    }
}

/// The control bucket's key of the newest pack's announcement.
pub const PACK_KEY: &str = "pack";
/// The prefix of a desk's report of what it runs (`desk.<device>`).
pub const DESK_KEY_PREFIX: &str = "desk.";

/// What a desk runs, as it tells the team (and a lead's desk shows).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct DeskReport {
    pub device: String,
    pub role: String,
    pub operator: String,
    pub policy_id: String,
    pub policy_version: u64,
    pub policy_hash: String,
    /// The signed pack's version and manifest digest (none in dev mode).
    pub pack_version: Option<u64>,
    pub pack_digest: Option<String>,
    /// When the desk said so (its clock).
    pub at: String,
    /// When this desk last heard from it (filled in by the listener).
    #[serde(default)]
    pub heard_at: Option<String>,
}

/// What became of an entry the link delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum EntryOutcome {
    /// A lease: the desktop is current until `fresh_until`.
    Lease { seq: u64 },
    /// A pause newly in force here (recorded).
    PauseSet { id: String },
    /// A pause newly cleared here (recorded).
    PauseCleared { id: String },
    /// A supervisor step of the team waiting for a lead (kept for the leads' queue).
    Request,
    /// A lead's grant, taken up here: the step is countersigned (or rejected).
    Granted { plan_id: String, step_id: String },
    /// A lead's answer to another desk's request (it leaves the queue).
    Answered,
    /// A newer signed pack is on the plane: the face fetches and stages it
    /// ([`Engine::team_pack_dir`]); it loads at the next start, verified then.
    PackAnnounced { version: u64, object: String },
    /// A desk's report of what it runs (kept for the leads).
    Desk,
    /// Already known: nothing to record.
    Known,
    /// Not accepted, and why (logged; nothing changes).
    Refused { reason: String },
}

/// This log checked against the newest checkpoint the team witnessed for this desk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WitnessCheck {
    /// The events the team witnessed, and the hash of the last of them.
    pub count: u64,
    pub head: String,
    /// This log still holds those events as the team saw them.
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// Where this desktop stands with its team (for the banner and `countersign team status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TeamStatus {
    pub team: String,
    pub device: String,
    pub role: String,
    /// The link to the team server is up.
    pub connected: bool,
    /// When this desktop last saw a good lease, if ever (RFC 3339).
    pub last_lease: Option<String>,
    /// The last lease is fresh: every pause the team set has reached this desktop.
    pub current: bool,
    /// While not current: what the policy makes of steps meanwhile, in words.
    pub cut_off: Option<String>,
    /// A newer signed pack the team published, staged here and not loaded yet.
    pub pack_waiting: Option<u64>,
    /// The hash of the policy it runs now, and its signed pack's digest (none in dev
    /// mode): a pack the team published loads while it runs.
    pub policy_hash: String,
    pub pack_digest: Option<String>,
}

impl Engine {
    /// Join this engine to a team: the seat's role becomes the enrolled one, pauses set
    /// by a lead go to the whole team through `port`, and decisions need a fresh lease.
    pub fn join_team(&mut self, settings: TeamSettings, port: Arc<dyn TeamPort>) -> Result<(), EngineError> {
        let running = self.running();
        if let Some(t) = &running.policy.team
            && (t.name != settings.team || !t.service_key.eq_ignore_ascii_case(&settings.service_key.to_hex()))
        {
            return Err(EngineError::Config {
                message: format!(
                    "policy {} holds this desktop to team {:?} and its service key; the enrolment is for team {:?}",
                    running.policy.id, t.name, settings.team
                ),
            });
        }
        if !running.policy.roles.contains(&settings.role) {
            return Err(EngineError::Config {
                message: format!(
                    "this desktop was enrolled in team {:?} as {:?}, a role policy {} does not declare",
                    settings.team, settings.role, running.policy.id
                ),
            });
        }
        self.operator.role = settings.role.clone();
        self.team = Some(Arc::new(Team {
            settings,
            port,
            lease: Mutex::new(None),
            requests: Mutex::default(),
            answered: Mutex::default(),
            published: Mutex::default(),
            desks: Mutex::default(),
            staged: Mutex::default(),
            refused_packs: Mutex::default(),
            in_force: Mutex::default(),
            logged: Mutex::default(),
            witnessed: Mutex::default(),
            pause_signers: Mutex::default(),
            recording: Mutex::default(),
        }));
        Ok(())
    }

    /// Record the team pauses [`Engine::team_entry`] put in force in this desk's evidence
    /// (each a durable append). A pause leaves the in-memory list only once recorded, so
    /// a failed write leaves it in force. Returns how many were recorded.
    pub fn team_record_seen(&self) -> Result<usize, EngineError> {
        let Some(team) = &self.team else { return Ok(0) };
        if lock(&team.in_force).is_empty() {
            return Ok(0);
        }
        // One recorder at a time (the face's tick, a decision, a clear): each pause once.
        let _one = lock(&team.recording);
        let seen: Vec<(String, (Pause, SignedEntry))> =
            lock(&team.in_force).iter().map(|(id, p)| (id.clone(), p.clone())).collect();
        let mut recorded = 0;
        for (id, (pause, entry)) in seen {
            if self.store.pause(&id)?.is_none() {
                self.store.writer().set_team_pause(pause, entry)?;
                recorded += 1;
            }
            // Known as logged before it leaves memory: the same entry delivered again
            // meanwhile is never taken for a new pause.
            mark_logged(team, &id);
            lock(&team.in_force).remove(&id);
        }
        Ok(recorded)
    }

    /// [`Engine::active_pauses`] for a gate or a decision: the team pauses in force but
    /// not yet recorded are recorded first, so a refusal citing one follows it in the
    /// log (but for one taken in at that very moment, recorded just after). One that
    /// cannot be recorded now still holds (from memory).
    pub(crate) fn gate_pauses(&self) -> Result<Vec<Pause>, EngineError> {
        if let Err(e) = self.team_record_seen() {
            tracing::warn!(error = %e, "a team pause could not be recorded yet; it holds");
        }
        self.active_pauses()
    }

    /// Every pause in force on this desk: the recorded ones and the team's pauses seen
    /// but not yet recorded. What the pause gates and `decide` read.
    pub(crate) fn active_pauses(&self) -> Result<Vec<Pause>, EngineError> {
        // Memory before the store: a pause leaves memory only once it is stored, so one
        // recorded in between is in one or the other, never in neither.
        let held: Vec<Pause> = match &self.team {
            Some(team) => lock(&team.in_force).values().map(|(p, _)| p.clone()).collect(),
            None => Vec::new(),
        };
        let mut pauses = self.store.active_pauses()?;
        for pause in held {
            if !pauses.iter().any(|p| p.id == pause.id) {
                pauses.push(pause);
            }
        }
        Ok(pauses)
    }

    /// Check this log against the newest checkpoint of this desk the team service
    /// witnessed (`None`: solo, or the team has witnessed none that reached this desk).
    /// A desk that rewrote any event the team saw no longer ends at that head.
    pub fn team_witness_check(&self) -> Result<Option<WitnessCheck>, EngineError> {
        let Some(team) = &self.team else { return Ok(None) };
        let Some(note) = lock(&team.witnessed).clone() else { return Ok(None) };
        let seen = countersign_trust::witness::open(
            &note,
            &team.settings.team,
            &team.settings.device,
            &team.settings.service_key,
        )?;
        let (count, head) = (seen.count, countersign_store::Hash(seen.head));
        let at = if count == 0 {
            Some(countersign_store::Hash::genesis())
        } else {
            let filter =
                countersign_store::EventFilter { since_seq: Some(count - 1), limit: Some(1), ..Default::default() };
            self.store.list_events(&filter)?.into_iter().find(|e| e.seq == count).map(|e| e.hash)
        };
        let problem = match at {
            None => Some(format!("the team witnessed {count} events; event {count} is missing here")),
            Some(h) if h != head => {
                Some(format!("event {count} is not the one the team witnessed: the log was rewritten up to it"))
            }
            Some(_) => None,
        };
        Ok(Some(WitnessCheck { count, head: head.to_hex(), ok: problem.is_none(), problem }))
    }

    /// The team this desktop belongs to, and whether it is current.
    pub fn team_status(&self) -> Option<TeamStatus> {
        let running = self.running();
        let Some(team) = self.team.as_ref() else {
            // Not joined to the team the policy names: cut off, and saying why.
            let named = running.policy.team.as_ref()?;
            return Some(TeamStatus {
                team: named.name.clone(),
                device: String::new(),
                role: self.operator.role.clone(),
                connected: false,
                last_lease: None,
                current: false,
                pack_waiting: None,
                policy_hash: running.policy.hash.clone(),
                pack_digest: running.loaded.as_ref().map(|p| p.digest.clone()),
                cut_off: self.cut_off().map(|c| self.cut_off_words(&c)),
            });
        };
        let last = team.lease.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|(_, seen)| *seen);
        let cut = self.cut_off();
        Some(TeamStatus {
            team: team.settings.team.clone(),
            device: team.settings.device.clone(),
            role: team.settings.role.clone(),
            connected: team.port.connected(),
            last_lease: last.map(|t| t.to_string()),
            current: cut.is_none(),
            pack_waiting: *lock(&team.staged),
            policy_hash: running.policy.hash.clone(),
            pack_digest: running.loaded.as_ref().map(|p| p.digest.clone()),
            cut_off: cut.map(|c| self.cut_off_words(&c)),
        })
    }

    fn cut_off_words(&self, c: &CutOff) -> String {
        let running = self.running();
        format!(
            "{}. Until it is back, a write is at least `{}` and a money step at least `{}`.",
            c.reason,
            running.policy.cut_off.write_floor(c),
            running.policy.cut_off.money
        )
    }

    /// This desktop runs a policy that names a team it has not joined (`why`: no
    /// enrolment, or one that did not hold): it decides as cut off until it joins.
    pub fn team_missing(&mut self, why: String) {
        tracing::warn!(reason = %why, "not in the team the signed policy names: deciding as cut off");
        self.team_missing = Some(why);
    }

    /// This desktop's public device key, for the pack's roster (`key = "…"`).
    pub fn team_signer_key(&self) -> Option<String> {
        self.team.as_ref().map(|t| t.settings.signer.public("").to_hex())
    }

    /// Why this desktop decides as cut off from its team, if it does.
    pub(crate) fn cut_off(&self) -> Option<CutOff> {
        let running = self.running();
        let Some(team) = self.team.as_ref() else {
            let named = running.policy.team.as_ref()?;
            let why = self.team_missing.clone().unwrap_or_else(|| "it holds no enrolment".into());
            return Some(CutOff {
                last_lease: None,
                reason: format!(
                    "the signed policy holds this desktop to team {:?}, and it is not in it: {why}",
                    named.name
                ),
                unenrolled: true,
            });
        };
        let lease = team.lease.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.clock.now();
        let ttl = SignedDuration::from_secs(i64::from(running.policy.cut_off.lease_secs));
        match lease.as_ref() {
            None => Some(CutOff {
                last_lease: None,
                reason: format!("no lease from team {:?}'s service has reached this desktop yet", team.settings.team),
                unenrolled: false,
            }),
            // A clock that went back (a step of NTP, or set back by hand) proves nothing:
            // stale, like a lease too old.
            Some((_, seen)) if now < *seen || now.duration_since(*seen) > ttl => Some(CutOff {
                last_lease: Some(*seen),
                reason: format!(
                    "no lease from team {:?}'s service for {} s (a lease is fresh for {} s)",
                    team.settings.team,
                    now.duration_since(*seen).as_secs(),
                    ttl.as_secs()
                ),
                unenrolled: false,
            }),
            Some(_) => None,
        }
    }

    /// Why a step decided `decision` may not run now, when this desk is cut off from its
    /// team and the policy's `[cut_off]` floor for the step is stricter than that
    /// (checked by the executor's gate right before the call: a step decided while the
    /// desk was current, run after the lease went stale).
    pub(crate) fn cut_off_refusal(&self, action: &str, decision: &str) -> Option<String> {
        let running = self.running();
        use countersign_core::policy::{Kind, Outcome};
        let cut = self.cut_off()?;
        let def = running.policy.actions.get(action);
        // A reply (no action of the policy) is a write too.
        let write = def.is_none_or(|d| d.kind == Kind::Write);
        let money = def.is_some_and(|d| d.money_param.is_some());
        let floors = [(write, running.policy.cut_off.write_floor(&cut)), (money, running.policy.cut_off.money)];
        let floor = floors.iter().filter(|(applies, _)| *applies).map(|(_, f)| *f).max()?;
        let decided = Outcome::ALL.into_iter().find(|o| o.as_str() == decision).unwrap_or(Outcome::Forbid);
        (decided < floor).then(|| {
            format!(
                "cut off from the team ({}): this step was decided `{decided}` but needs at least `{floor}` now; it did \
                 not run",
                cut.reason
            )
        })
    }

    /// Take in one entry of the team's control bucket, as the link saw it (`None` for a
    /// deleted key). Idempotent: the link re-reads the bucket after every reconnect.
    pub fn team_entry(&self, key: &str, value: Option<&[u8]>) -> Result<EntryOutcome, EngineError> {
        let running = self.running();
        let Some(team) = &self.team else {
            return Err(EngineError::Config { message: "this desktop is not in a team".into() });
        };
        let refused = |reason: String| {
            tracing::warn!(key, %reason, "team entry refused");
            Ok(EntryOutcome::Refused { reason })
        };
        let Some(value) = value else { return Ok(EntryOutcome::Known) };
        if key == PACK_KEY {
            #[derive(serde::Deserialize)]
            struct Announced {
                version: u64,
                object: String,
            }
            let announced: Announced = match serde_json::from_slice(value) {
                Ok(a) => a,
                Err(e) => return Ok(EntryOutcome::Refused { reason: format!("pack announcement: {e}") }),
            };
            // Nothing new: the version it runs or one staged, or the very pack it refused
            // (not fetched again at every reconnect).
            let loaded = running.loaded.as_ref().map_or(0, |p| p.version);
            let staged = lock(&team.staged).unwrap_or(0);
            if announced.version <= loaded.max(staged) || lock(&team.refused_packs).contains(&announced.object) {
                return Ok(EntryOutcome::Known);
            }
            return Ok(EntryOutcome::PackAnnounced { version: announced.version, object: announced.object });
        }
        if let Some(device) = key.strip_prefix(DESK_KEY_PREFIX) {
            return Ok(match serde_json::from_slice::<DeskReport>(value) {
                Ok(r) if r.device == device => {
                    // The same report delivered again is not contact: keep when it was heard.
                    let mut desks = lock(&team.desks);
                    let heard = match desks.get(device) {
                        Some((before, heard)) if *before == r => *heard,
                        _ => self.clock.now(),
                    };
                    desks.insert(r.device.clone(), (r, heard));
                    EntryOutcome::Desk
                }
                Ok(_) => EntryOutcome::Refused { reason: format!("desk report {device}: names another desk") },
                Err(e) => EntryOutcome::Refused { reason: format!("desk report {device}: {e}") },
            });
        }
        if let Some(rest) = key.strip_prefix(REQUEST_KEY_PREFIX) {
            return Ok(match serde_json::from_slice::<ApprovalRequest>(value) {
                Ok(r) if r.team == team.settings.team && rest == format!("{}.{}", r.device, r.request_id) => {
                    // Delivered again (a reconnect, a start): nothing new, no new notice.
                    match lock(&team.requests).insert(r.request_id.clone(), r.clone()) {
                        Some(before) if before == r => EntryOutcome::Known,
                        _ => EntryOutcome::Request,
                    }
                }
                Ok(_) => EntryOutcome::Refused { reason: format!("request {rest}: names another team or key") },
                Err(e) => EntryOutcome::Refused { reason: format!("request {rest}: {e}") },
            });
        }
        if let Some(device) = key.strip_prefix(WITNESS_KEY_PREFIX) {
            // Another desk's is the leads' business, not this desk's.
            if device != team.settings.device {
                return Ok(EntryOutcome::Known);
            }
            let Ok(note) = std::str::from_utf8(value) else {
                return refused("a witnessed checkpoint that is not text".into());
            };
            let opened =
                countersign_trust::witness::open(note, &team.settings.team, device, &team.settings.service_key);
            return match opened {
                Ok(_) => {
                    *lock(&team.witnessed) = Some(note.to_string());
                    Ok(EntryOutcome::Known)
                }
                Err(e) => refused(format!("witnessed checkpoint: {e}")),
            };
        }
        let entry: SignedEntry = match serde_json::from_slice(value) {
            Ok(e) => e,
            Err(e) => return refused(format!("not a signed entry: {e}")),
        };
        if key == LEASE_KEY {
            let trusted = [team.settings.service_key.clone()];
            let lease: Lease = match signing::open(LEASE_DOMAIN, &entry, &trusted) {
                Ok((_, lease)) => lease,
                Err(e) => return refused(format!("lease: {e}")),
            };
            if lease.team != team.settings.team {
                return refused(format!("a lease of team {:?}, not {:?}", lease.team, team.settings.team));
            }
            let mut last = team.lease.lock().unwrap_or_else(|e| e.into_inner());
            if last.as_ref().is_some_and(|(l, _)| l.seq >= lease.seq) {
                return Ok(EntryOutcome::Known);
            }
            let seq = lease.seq;
            *last = Some((lease, self.clock.now()));
            return Ok(EntryOutcome::Lease { seq });
        }
        if let Some(rest) = key.strip_prefix(ANSWER_KEY_PREFIX) {
            return self.team_answer_seen(team, rest, entry);
        }
        let Some(id) = key.strip_prefix(PAUSE_KEY_PREFIX) else {
            return refused(format!("unknown key {key:?}"));
        };
        let (who, body) = match open_pause(team, &running, id, &entry) {
            Ok(opened) => opened,
            Err(reason) => return refused(reason),
        };
        match body.state {
            TeamPauseState::Set => Ok(put_in_force(team, &self.store, id, body.pause, entry)),
            TeamPauseState::Cleared => {
                // A pause is recorded set before it is recorded cleared.
                self.team_record_seen()?;
                let known = self.store.pause(id)?;
                if known.as_ref().is_some_and(|r| r.cleared.is_some()) {
                    return Ok(EntryOutcome::Known);
                }
                if known.is_none() {
                    // Cleared before this desktop saw it set: record both, so the log
                    // shows what the team had in force.
                    self.store.writer().set_team_pause(body.pause.clone(), entry.clone())?;
                }
                let at = body.cleared_at.unwrap_or_else(|| self.clock.now());
                let reason = body.clear_reason.clone().unwrap_or_default();
                self.store.writer().clear_team_pause(id, &who, &reason, at, entry)?;
                mark_logged(team, id);
                Ok(EntryOutcome::PauseCleared { id: id.to_string() })
            }
        }
    }

    /// Set a pause for the whole team: signed by this desktop's key, stored on the team
    /// plane, then recorded here. Only a roster member whose key this desktop holds may.
    pub(crate) fn team_pause_set(&self, pause: Pause) -> Result<Pause, EngineError> {
        let team = self.team.as_ref().ok_or_else(|| EngineError::Config { message: "not in a team".into() })?;
        self.check_team_signer(team)?;
        let pause = Pause { team: Some(team.settings.team.clone()), ..pause };
        let body = TeamPause {
            team: team.settings.team.clone(),
            state: TeamPauseState::Set,
            pause: pause.clone(),
            cleared_by: None,
            cleared_at: None,
            clear_reason: None,
        };
        let entry = signing::sign(PAUSE_DOMAIN, &body, &team.settings.signer)?;
        if let Err(e) = self.publish(team, &format!("{PAUSE_KEY_PREFIX}{}", pause.id), &entry) {
            // An emergency stop must not wait for the network: in force on this desk at
            // once, and the lead told it did not reach the team.
            let local = Pause { team: None, ..pause };
            self.store.writer().set_pause(local.clone())?;
            return Err(EngineError::TeamUnreachable {
                message: format!(
                    "pause {} is in force on this desk only ({e}): set it again for the team once the server is back",
                    local.id
                ),
            });
        }
        self.store.writer().set_team_pause(pause.clone(), entry)?;
        mark_logged(team, &pause.id);
        Ok(pause)
    }

    /// Clear a team pause for the whole team (see [`Engine::team_pause_set`]).
    pub(crate) fn team_pause_clear(&self, pause: Pause, reason: &str) -> Result<(), EngineError> {
        let team = self.team.as_ref().ok_or_else(|| EngineError::Config { message: "not in a team".into() })?;
        self.check_team_signer(team)?;
        let at = self.clock.now();
        let body = TeamPause {
            team: team.settings.team.clone(),
            state: TeamPauseState::Cleared,
            pause: pause.clone(),
            cleared_by: Some(self.operator.id.clone()),
            cleared_at: Some(at),
            clear_reason: Some(reason.to_string()),
        };
        let entry = signing::sign(PAUSE_DOMAIN, &body, &team.settings.signer)?;
        self.publish(team, &format!("{PAUSE_KEY_PREFIX}{}", pause.id), &entry)?;
        self.store.writer().clear_team_pause(&pause.id, &self.operator.id, reason, at, entry)?;
        Ok(())
    }

    /// Is this seat's operator a lead whose roster key is this desktop's key?
    pub(crate) fn check_team_signer(&self, team: &Team) -> Result<(), EngineError> {
        let mine = team.settings.signer.public("").to_hex();
        let signers = pause_signers(team, &self.running());
        if signers.iter().any(|k| k.label == self.operator.id && k.to_hex() == mine) {
            return Ok(());
        }
        Err(EngineError::NotPermitted {
            message: format!(
                "{} ({}) may not set or clear a pause for team {:?}: only a lead on the signed pack's roster, at the \
                 desk whose key the roster lists for them, may (this desk's key is {mine})",
                self.operator.id, self.operator.role, team.settings.team
            ),
        })
    }

    fn publish(&self, team: &Team, key: &str, entry: &SignedEntry) -> Result<(), EngineError> {
        let bytes = serde_json::to_vec(entry)
            .map_err(|e| EngineError::Config { message: format!("serialising a team entry: {e}") })?;
        team.port.put(key, bytes).map_err(|message| EngineError::TeamUnreachable {
            message: format!("team {:?}: {message}", team.settings.team),
        })
    }

    /// Does a pause set at this seat go to the whole team? In a team, a lead's (a role
    /// that countersigns or may clear pauses) does; anyone else's pauses only this desk.
    pub(crate) fn pauses_for_team(&self) -> bool {
        let running = self.running();
        self.team.is_some()
            && (running.policy.supervisor_roles.contains(&self.operator.role)
                || running.settings.pause_clear_roles.contains(&self.operator.role))
    }
}

/// Takes a lead's pause in on the link's own thread, the moment it arrives: the entry is
/// verified as [`Engine::team_entry`] verifies it and the pause is in force at once (the
/// gates read it), without waiting for the thread that feeds the engine every other entry
/// (which may be fetching a pack or writing). Only setting a pause goes this way; a
/// clearing takes effect once recorded, so it goes the ordinary way, as does every other
/// key. Recording stays with the face ([`Engine::team_record_seen`]).
#[derive(Debug, Clone)]
pub struct PauseIntake {
    team: Arc<Team>,
    running: Arc<std::sync::RwLock<Arc<crate::Running>>>,
    store: Arc<countersign_store::Store>,
}

impl PauseIntake {
    /// Make ready what taking a pause in reads, so that the first pause costs no more
    /// than the next: the keys that count for pauses under the running pack, and the
    /// ids of the team pauses already in the log.
    pub fn warm(&self) {
        let running = self.running.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        pause_signers(&self.team, &running);
        is_logged(&self.team, &self.store, "");
    }

    /// What became of the entry under `key` when it sets a pause; `None` for anything
    /// else (hand it to [`Engine::team_entry`]).
    pub fn take(&self, key: &str, value: Option<&[u8]>) -> Option<EntryOutcome> {
        let id = key.strip_prefix(PAUSE_KEY_PREFIX)?;
        let entry: SignedEntry = serde_json::from_slice(value?).ok()?;
        let running = self.running.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        // A clearing, or an entry that does not hold: the ordinary way (which records
        // or refuses it, with its reason).
        let (_, body) = open_pause(&self.team, &running, id, &entry).ok()?;
        if body.state != TeamPauseState::Set {
            return None;
        }
        Some(put_in_force(&self.team, &self.store, id, body.pause, entry))
    }
}

impl Engine {
    /// The intake of lead's pauses for the link's own thread, when this engine is in a
    /// team.
    pub fn pause_intake(&self) -> Option<PauseIntake> {
        let team = self.team.as_ref()?;
        Some(PauseIntake { team: team.clone(), running: self.running.clone(), store: self.store.clone() })
    }
}

/// A pause entry of `id`, verified: signed by a key the running pack counts for pauses,
/// naming this team and this id, and made by the person whose key signed it. Returns who
/// set or cleared it, and its body; `Err` says why it does not count.
fn open_pause(
    team: &Team,
    running: &Arc<crate::Running>,
    id: &str,
    entry: &SignedEntry,
) -> Result<(String, TeamPause), String> {
    let leads = pause_signers(team, running);
    let (signer, body): (_, TeamPause) =
        signing::open(PAUSE_DOMAIN, entry, &leads).map_err(|e| format!("pause {id}: {e}"))?;
    if body.team != team.settings.team || body.pause.id != id || body.pause.team.as_deref() != Some(&*body.team) {
        return Err(format!("pause {id}: names another team or id"));
    }
    let who = match body.state {
        TeamPauseState::Set => body.pause.set_by.clone(),
        TeamPauseState::Cleared => body.cleared_by.clone().unwrap_or_default(),
    };
    // The roster line of a key is its label: the key must be that person's.
    if signer.label != who {
        return Err(format!("pause {id}: signed by {}'s key, but made by {who:?}", signer.label));
    }
    Ok((who, body))
}

/// Put a verified pause in force, unless it is already in force or recorded. When the
/// log cannot be read to tell, it is put in force all the same (the safe side; recording
/// skips one the log has).
fn put_in_force(
    team: &Team,
    store: &countersign_store::Store,
    id: &str,
    pause: Pause,
    entry: SignedEntry,
) -> EntryOutcome {
    // The lock is not held while the log is read (once, the first time): the gates read
    // the pauses meanwhile.
    if lock(&team.in_force).contains_key(id) || is_logged(team, store, id) {
        return EntryOutcome::Known;
    }
    // In force at once; recorded by `team_record_seen`, which the face calls soon after
    // and every gate and decision calls first (a desk that stopped in between sees it
    // again at start). Held under the lock, checked again: one entry taken in twice at
    // once (the link's thread and the pump) is in force once.
    let mut in_force = lock(&team.in_force);
    if in_force.contains_key(id) {
        return EntryOutcome::Known;
    }
    in_force.insert(id.to_string(), (pause, entry));
    EntryOutcome::PauseSet { id: id.to_string() }
}

/// Is the team pause `id` in this desk's log? Answered from memory: the log's pauses
/// are read once, the first time, and this process adds each it records. One
/// that another process (the command line, on the same data folder) recorded since reads
/// as not logged: it is put in force again, which holds what holds anyway, and recording
/// skips it (it reads the log before it writes). When the log cannot be read, nothing
/// reads as logged (the safe side), and it is read again next time.
fn is_logged(team: &Team, store: &countersign_store::Store, id: &str) -> bool {
    let mut logged = lock(&team.logged);
    if logged.is_none() {
        match store.pause_history() {
            Ok(history) => {
                *logged = Some(history.into_iter().map(|r| r.pause.id).collect());
            }
            Err(e) => {
                tracing::warn!(id, error = %e, "whether a team pause is recorded could not be read: it holds");
                return false;
            }
        }
    }
    logged.as_ref().is_some_and(|ids| ids.contains(id))
}

/// `id` is in this desk's log now (a no-op until the log's pauses were first read: that
/// read will find it).
fn mark_logged(team: &Team, id: &str) {
    if let Some(ids) = lock(&team.logged).as_mut() {
        ids.insert(id.to_string());
    }
}

/// The keys whose pauses count: roster members with a key, in a role that
/// countersigns supervisor steps or may clear pauses. Each key is labelled with its
/// member's id.
/// Read once per running pack (a key's point is checked as it is read), kept beside it.
fn pause_signers(team: &Team, running: &Arc<crate::Running>) -> Arc<Vec<PublicKey>> {
    let mut cached = lock(&team.pause_signers);
    // A weak reference: the pack replaced is not kept alive by the cache, and its
    // address is not reused while the cache names it.
    if let Some((at, keys)) = cached.as_ref()
        && std::ptr::eq(at.as_ptr(), Arc::as_ptr(running))
    {
        return keys.clone();
    }
    let roles = &running.settings.pause_clear_roles;
    let keys: Arc<Vec<PublicKey>> = Arc::new(
        running
            .workspace
            .roster
            .iter()
            .filter(|e| running.policy.supervisor_roles.contains(&e.role) || roles.contains(&e.role))
            .filter_map(|e| PublicKey::from_hex(e.key.as_deref()?, e.id.clone()).ok())
            .collect(),
    );
    *cached = Some((Arc::downgrade(running), keys.clone()));
    keys
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A request's id: the desk, the plan, the step and its digest, hashed (key-safe).
fn request_id(device: &str, plan_id: &str, step_id: &str, digest: &str) -> String {
    let mut text = String::new();
    for part in [device, plan_id, step_id, digest] {
        text.push_str(part);
        text.push('\n');
    }
    hex::encode(&countersign_trust::keys::sha256(text.as_bytes())[..12])
}

/// A pause's id for the team: unique across desktops (who set it and when).
pub(crate) fn team_pause_id(operator: &str, at: Timestamp) -> String {
    let who: String = operator.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
    format!("pause-{}-{who}", at.as_millisecond())
}

/// A supervisor step waiting on one of the team's desks, as a lead's queue shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TeamRequestView {
    pub request_id: String,
    pub device: String,
    pub case_id: String,
    pub plan_id: String,
    pub step_id: String,
    pub action: String,
    /// The step's parameters, `name: value` each.
    pub params: Vec<String>,
    pub reasons: Vec<String>,
    pub context: String,
    pub requested_by: String,
    pub requested_at: String,
}

impl From<ApprovalRequest> for TeamRequestView {
    fn from(r: ApprovalRequest) -> TeamRequestView {
        TeamRequestView {
            params: r
                .params
                .iter()
                .map(|(k, v)| format!("{k}: {}", v.as_str().map_or_else(|| v.to_string(), str::to_string)))
                .collect(),
            request_id: r.request_id,
            device: r.device,
            case_id: r.case_id,
            plan_id: r.plan_id,
            step_id: r.step_id,
            action: r.action,
            reasons: r.reasons,
            context: r.context,
            requested_by: r.requested_by,
            requested_at: r.requested_at.to_string(),
        }
    }
}

/// Supervisor steps across the team: requests out, grants in.
impl Engine {
    /// [`Engine::team_queue`] as views.
    pub fn team_queue_views(&self) -> Vec<TeamRequestView> {
        self.team_queue().into_iter().map(TeamRequestView::from).collect()
    }

    /// Put this desk's supervisor steps that wait for a lead on the team plane (each
    /// once; again after a restart, which is harmless: same key, same request). A face
    /// calls it as it pumps the link. Returns how many went out now.
    pub fn team_publish_requests(&self) -> Result<usize, EngineError> {
        let Some(team) = &self.team else { return Ok(0) };
        let mut sent = 0;
        for record in self.review_queue()? {
            if record.decision != countersign_core::policy::Outcome::Supervisor.as_str() {
                continue;
            }
            let device = &team.settings.device;
            let rid = request_id(device, &record.plan_id, &record.step_id, &record.step_digest);
            if lock(&team.published).contains(&rid) {
                continue;
            }
            let recorded = self.recorded(&record)?;
            let step = recorded.plan.steps.iter().find(|s| s.id == record.step_id);
            let params = step.map(crate::execute::params_of).unwrap_or_default();
            let reasons = recorded.decided.map(|d| d.reasons.into_iter().map(|r| r.text).collect()).unwrap_or_default();
            let case = &recorded.case;
            let said = case.messages.iter().rev().find(|m| m.from == countersign_core::model::Sender::Customer);
            let words: String = said.map(|m| m.text.chars().take(400).collect()).unwrap_or_default();
            let request = ApprovalRequest {
                team: team.settings.team.clone(),
                device: device.clone(),
                request_id: rid.clone(),
                case_id: record.case_id.clone(),
                plan_id: record.plan_id.clone(),
                step_id: record.step_id.clone(),
                action: record.action.clone(),
                step_digest: record.step_digest.clone(),
                policy_hash: record.policy_hash.clone(),
                params,
                reasons,
                context: format!("{} · {} · {}: \"{words}\"", case.channel.as_str(), case.tenant, case.store),
                requested_by: self.operator.id.clone(),
                requested_at: self.clock.now(),
            };
            let bytes = serde_json::to_vec(&request)
                .map_err(|e| EngineError::Config { message: format!("serialising a request: {e}") })?;
            team.port
                .put(&format!("{REQUEST_KEY_PREFIX}{device}.{rid}"), bytes)
                .map_err(|message| EngineError::TeamUnreachable { message })?;
            lock(&team.published).insert(rid);
            sent += 1;
        }
        Ok(sent)
    }

    /// The team's supervisor steps no lead has answered yet (a lead's queue), oldest first.
    pub fn team_queue(&self) -> Vec<ApprovalRequest> {
        let Some(team) = &self.team else { return Vec::new() };
        let answered = lock(&team.answered).clone();
        let mut queue: Vec<ApprovalRequest> =
            lock(&team.requests).values().filter(|r| !answered.contains(&r.request_id)).cloned().collect();
        queue.sort_by_key(|r| r.requested_at);
        queue
    }

    /// Answer a request from the queue as this desk's lead: a grant signed with this
    /// desk's key, put on the plane only if no lead answered first, and recorded here.
    pub fn team_answer(&self, request_id: &str, verdict: Verdict, reason: &str) -> Result<SignedEntry, EngineError> {
        let team = self.team.as_ref().ok_or_else(|| EngineError::Config { message: "not in a team".into() })?;
        self.check_team_signer(team)?;
        if verdict == Verdict::Rejected && reason.trim().is_empty() {
            return Err(EngineError::BadInput { message: "a rejection needs a reason".into() });
        }
        let request = lock(&team.requests)
            .get(request_id)
            .cloned()
            .ok_or_else(|| EngineError::NotFound { message: format!("no request {request_id} in the team's queue") })?;
        let grant = Grant {
            team: team.settings.team.clone(),
            device: request.device.clone(),
            request_id: request.request_id.clone(),
            plan_id: request.plan_id.clone(),
            step_id: request.step_id.clone(),
            step_digest: request.step_digest.clone(),
            policy_hash: request.policy_hash.clone(),
            verdict,
            reason: reason.to_string(),
            by: self.operator.id.clone(),
            expires_at: self.clock.now() + GRANT_VALID,
            nonce: signing::nonce()?,
        };
        let entry = signing::sign(GRANT_DOMAIN, &grant, &team.settings.signer)?;
        let bytes = serde_json::to_vec(&entry)
            .map_err(|e| EngineError::Config { message: format!("serialising a grant: {e}") })?;
        let key = format!("{ANSWER_KEY_PREFIX}{}.{}", request.device, request.request_id);
        let created = team.port.create(&key, bytes).map_err(|message| EngineError::TeamUnreachable { message })?;
        if !created {
            lock(&team.answered).insert(request.request_id.clone());
            return Err(EngineError::Conflict {
                message: format!("another lead answered {} of plan {} first", request.step_id, request.plan_id),
            });
        }
        lock(&team.answered).insert(request.request_id.clone());
        let case_id = request.case_id.clone();
        self.append(
            Some(&case_id),
            &self.operator.id.clone(),
            Event::TeamGrantSigned { request: Box::new(request), grant: entry.clone() },
        )?;
        Ok(entry)
    }

    /// A lead's answer as the plane delivered it (`rest`: `<device>.<request id>`): for
    /// another desk it only leaves the queue; for this desk it is checked and, if it
    /// holds, countersigns (or rejects) the waiting step, once.
    fn team_answer_seen(&self, team: &Team, rest: &str, entry: SignedEntry) -> Result<EntryOutcome, EngineError> {
        let running = self.running();
        let (device, rid) = rest.split_once('.').unwrap_or((rest, ""));
        lock(&team.answered).insert(rid.to_string());
        if device != team.settings.device {
            return Ok(EntryOutcome::Answered);
        }
        let signers: Vec<PublicKey> = self
            .running()
            .workspace
            .roster
            .iter()
            .filter(|e| running.policy.supervisor_roles.contains(&e.role))
            .filter_map(|e| PublicKey::from_hex(e.key.as_deref()?, e.id.clone()).ok())
            .collect();
        let opened = signing::open::<Grant>(GRANT_DOMAIN, &entry, &signers);
        let (signer, grant) = match opened {
            Ok((k, g)) => (k.label.clone(), g),
            Err(e) => return self.refuse_grant(None, &entry, &format!("{e}")),
        };
        let refuse = |why: String| self.refuse_grant(Some(&grant), &entry, &why);
        if signer != grant.by {
            return refuse(format!("signed by {signer}'s key but made out by {}", grant.by));
        }
        if grant.team != team.settings.team || grant.device != team.settings.device || grant.request_id != rid {
            return refuse("made out for another team, desk or request".into());
        }
        // The plane delivers every answer again after a reconnect or a start: one this
        // desk already took up, or refused, is nothing new (and never used twice).
        let seen_before = |kind: &str| -> Result<bool, EngineError> {
            let filter = countersign_store::EventFilter {
                kind: Some(kind.into()),
                text: Some(grant.nonce.clone()),
                ..countersign_store::EventFilter::default()
            };
            Ok(!self.events(&filter)?.is_empty())
        };
        if seen_before("review_decided")? || seen_before("review_refused")? {
            return Ok(EntryOutcome::Known);
        }
        if self.clock.now() > grant.expires_at {
            return refuse(format!("expired at {}", grant.expires_at));
        }
        if grant.expires_at > self.clock.now() + GRANT_VALID + SignedDuration::from_mins(5) {
            return refuse(format!("valid until {}, longer than a grant may be", grant.expires_at));
        }
        let record = match self.store.step(&grant.plan_id, &grant.step_id)? {
            Some(r) if r.state == countersign_store::StepState::Waiting => r,
            // Decided meanwhile (at the seat, or by another grant): nothing to do.
            Some(_) => return Ok(EntryOutcome::Known),
            None => return refuse(format!("no step {} in plan {}", grant.step_id, grant.plan_id)),
        };
        if grant.step_digest != record.step_digest {
            return refuse("for another step (its digest differs from the waiting step's)".into());
        }
        if grant.policy_hash != record.policy_hash || grant.policy_hash != running.policy.hash {
            return refuse(format!(
                "for another policy pack ({}, this desk runs {})",
                grant.policy_hash, running.policy.hash
            ));
        }
        let role =
            running.workspace.roster.iter().find(|e| e.id == grant.by).map(|e| e.role.clone()).unwrap_or_default();
        let who = countersign_core::model::Operator { id: grant.by.clone(), role };
        let (plan_id, step_id) = (record.plan_id.clone(), record.step_id.clone());
        self.review_by(record, grant.verdict, &grant.reason, &who, crate::review::Proven::Grant(entry))?;
        Ok(EntryOutcome::Granted { plan_id, step_id })
    }

    /// A grant that does not hold: recorded (who it claimed to be from, why), never used.
    fn refuse_grant(&self, grant: Option<&Grant>, entry: &SignedEntry, why: &str) -> Result<EntryOutcome, EngineError> {
        let nonce = grant.map(|g| format!(" (grant {})", g.nonce)).unwrap_or_default();
        let reason = format!("team grant refused: {why}{nonce}");
        tracing::warn!(%reason, key = %entry.key, "team grant");
        if let Some(g) = grant {
            let event = Event::ReviewRefused {
                plan_id: g.plan_id.clone(),
                step_id: g.step_id.clone(),
                step_digest: g.step_digest.clone(),
                claimed_id: g.by.clone(),
                seat: self.operator.clone(),
                reason: reason.clone(),
            };
            let case_id = self.store.step(&g.plan_id, &g.step_id)?.map(|r| r.case_id);
            self.append(case_id.as_deref(), &self.operator.id.clone(), event)?;
        }
        Ok(EntryOutcome::Refused { reason })
    }
}

/// The cursor name under which the outbox's position is kept (beside the case sources').
const OUTBOX_CURSOR: &str = "@team-evidence-outbox";
/// The same for the blobs (screenshots, page snapshots) the events name.
const BLOB_CURSOR: &str = "@team-blob-outbox";

/// An event of this desk's log on its way to the team, as it travels: the stored event
/// (its canonical body and hash, so the team can verify the chain) and the desk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEvent {
    pub seq: u64,
    pub hash: String,
    pub message: Vec<u8>,
}

/// Where the outbox stands: every event up to `sent_seq` is durable on the team side,
/// the last of them at `stream_seq` in the team's evidence stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OutboxCursor {
    pub sent_seq: u64,
    pub stream_seq: u64,
}

/// The evidence log as a durable outbox: nothing is copied; a cursor says how far the
/// team has it. Only a publication the team side acknowledged as stored moves it.
impl Engine {
    /// How many writes this engine's log has taken since it opened (see
    /// `EvidenceWriter::writes`): unchanged, nothing new is there to send.
    pub fn log_writes(&self) -> u64 {
        self.store.writer().writes()
    }

    /// How many events the log holds (one read of its head), whoever wrote them.
    pub fn log_count(&self) -> Result<u64, EngineError> {
        Ok(self.store.head()?.count)
    }

    pub fn outbox_cursor(&self) -> Result<OutboxCursor, EngineError> {
        let Some(text) = self.store.source_cursor(OUTBOX_CURSOR)? else { return Ok(OutboxCursor::default()) };
        let parse = || -> Option<OutboxCursor> {
            let (a, b) = text.split_once(':')?;
            Some(OutboxCursor { sent_seq: a.parse().ok()?, stream_seq: b.parse().ok()? })
        };
        parse().ok_or_else(|| EngineError::Unreadable { message: format!("the evidence outbox's cursor {text:?}") })
    }

    /// Move the outbox on: the team has every event up to `cursor.sent_seq`. Never back.
    pub fn outbox_advance(&self, cursor: OutboxCursor) -> Result<(), EngineError> {
        if cursor.sent_seq <= self.outbox_cursor()?.sent_seq {
            return Ok(());
        }
        let text = format!("{}:{}", cursor.sent_seq, cursor.stream_seq);
        self.store.writer().set_source_cursor(OUTBOX_CURSOR, &text, self.clock.now())?;
        Ok(())
    }

    /// Up to `limit` events after `after`, oldest first, as they travel.
    pub fn outbox_events(&self, after: u64, limit: usize) -> Result<Vec<OutboxEvent>, EngineError> {
        let device = self.team.as_ref().map(|t| t.settings.device.clone()).unwrap_or_default();
        let filter =
            countersign_store::EventFilter { since_seq: Some(after), limit: Some(limit), ..Default::default() };
        self.store
            .list_events(&filter)?
            .into_iter()
            .map(|e| {
                let hash = e.hash.to_string();
                let message = serde_json::to_vec(&serde_json::json!({
                    "device": device,
                    "seq": e.seq,
                    "at": e.at,
                    "case_id": e.case_id,
                    "kind": e.kind,
                    "actor": e.actor,
                    "hash": hash,
                    "body": e.body,
                }))
                .map_err(|e| EngineError::Config { message: format!("serialising an event: {e}") })?;
                Ok(OutboxEvent { seq: e.seq, hash, message })
            })
            .collect()
    }

    /// Up to `limit` blobs the team does not have yet, oldest first: (row, blob).
    pub fn blob_outbox(&self, limit: usize) -> Result<Vec<(i64, countersign_store::Blob)>, EngineError> {
        let after = match self.store.source_cursor(BLOB_CURSOR)? {
            Some(text) => text
                .parse()
                .map_err(|_| EngineError::Unreadable { message: format!("the blob outbox's cursor {text:?}") })?,
            None => 0,
        };
        let mut out = Vec::new();
        for (row, hash) in self.store.blobs_after(after, limit)? {
            let blob = self.store.blob(&hash)?.ok_or_else(|| EngineError::Unreadable {
                message: format!("blob {hash} is listed but cannot be read"),
            })?;
            out.push((row, blob));
        }
        Ok(out)
    }

    /// The team has every blob up to row `row`.
    pub fn blob_outbox_advance(&self, row: i64) -> Result<(), EngineError> {
        self.store.writer().set_source_cursor(BLOB_CURSOR, &row.to_string(), self.clock.now())?;
        Ok(())
    }

    /// Where connectors built outside the engine keep their screenshots and page
    /// snapshots: this desk's blobs, written through the one writer.
    pub fn blob_sink(&self) -> Arc<dyn countersign_connectors::BlobSink> {
        Arc::new(crate::StoreBlobs { writer: self.store.writer(), clock: self.clock.clone() })
    }

    /// How many events the team does not have yet.
    pub fn outbox_pending(&self) -> Result<u64, EngineError> {
        Ok(self.store.head()?.count.saturating_sub(self.outbox_cursor()?.sent_seq))
    }
}

/// Packs over the plane, and what each desk runs.
impl Engine {
    /// Where a pack fetched from the team waits for the next start.
    pub fn team_pack_dir(&self) -> std::path::PathBuf {
        self.managed.data_dir.join("pack-incoming")
    }

    /// A fetched pack is staged (for the status line, until it loads).
    pub fn team_pack_staged(&self, version: u64) {
        if let Some(team) = &self.team {
            *lock(&team.staged) = Some(version);
        }
    }

    /// The pack announced as `object` was fetched and refused: it is not fetched again.
    pub fn team_pack_refused(&self, object: &str) {
        if let Some(team) = &self.team {
            lock(&team.refused_packs).insert(object.to_string());
        }
    }

    /// The staged pack has loaded (or was refused): nothing waits.
    pub fn team_pack_unstaged(&self) {
        if let Some(team) = &self.team {
            *lock(&team.staged) = None;
        }
    }

    /// The staged pack's version, if one waits for the next start.
    pub fn team_pack_waiting(&self) -> Option<u64> {
        self.team.as_ref().and_then(|t| *lock(&t.staged))
    }

    /// What this desk runs, for the team.
    pub fn team_desk_report(&self) -> Option<DeskReport> {
        let running = self.running();
        let team = self.team.as_ref()?;
        Some(DeskReport {
            device: team.settings.device.clone(),
            role: team.settings.role.clone(),
            operator: self.operator.id.clone(),
            policy_id: running.policy.id.clone(),
            policy_version: running.policy.version,
            policy_hash: running.policy.hash.clone(),
            pack_version: running.loaded.as_ref().map(|p| p.version),
            pack_digest: running.loaded.as_ref().map(|p| p.digest.clone()),
            at: self.clock.now().to_string(),
            heard_at: None,
        })
    }

    /// Every desk of the team this desk has heard from: what it runs and when it last
    /// said so (a lead's view of the team's versions).
    pub fn team_desks(&self) -> Vec<DeskReport> {
        let Some(team) = &self.team else { return Vec::new() };
        lock(&team.desks)
            .values()
            .map(|(r, heard)| DeskReport { heard_at: Some(heard.to_string()), ..r.clone() })
            .collect()
    }
}
