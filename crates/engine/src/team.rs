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

use std::sync::{Arc, Mutex};

use countersign_core::model::Pause;
use countersign_core::team::{CutOff, Lease, SignedEntry, TeamPause, TeamPauseState};
use countersign_trust::keys::{PublicKey, SecretKey};
use countersign_trust::team::{self as signing, LEASE_DOMAIN, PAUSE_DOMAIN};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::{Engine, EngineError};

/// The key of the lease in the team's control bucket.
pub const LEASE_KEY: &str = "lease";
/// The prefix of a pause's key in the team's control bucket (`pause.<id>`).
pub const PAUSE_KEY_PREFIX: &str = "pause.";

/// How the engine publishes to its team (implemented over NATS by `countersign-plane`).
pub trait TeamPort: Send + Sync + std::fmt::Debug {
    /// Store `entry` under `key` in the team's control bucket; `Ok` once the server has
    /// it. Refused when this desktop's credentials may not write there.
    fn put(&self, key: &str, entry: &SignedEntry) -> Result<(), String>;
    /// Is the link up right now (for the status line; freshness is the lease's)?
    fn connected(&self) -> bool;
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
    /// Already known: nothing to record.
    Known,
    /// Not accepted, and why (logged; nothing changes).
    Refused { reason: String },
}

/// Where this desktop stands with its team (for the banner and `countersign team status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(export))]
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
}

impl Engine {
    /// Join this engine to a team: the seat's role becomes the enrolled one, pauses set
    /// by a lead go to the whole team through `port`, and decisions need a fresh lease.
    pub fn join_team(&mut self, settings: TeamSettings, port: Arc<dyn TeamPort>) -> Result<(), EngineError> {
        if !self.policy.roles.contains(&settings.role) {
            return Err(EngineError::Config {
                message: format!(
                    "this desktop was enrolled in team {:?} as {:?}, a role policy {} does not declare",
                    settings.team, settings.role, self.policy.id
                ),
            });
        }
        self.operator.role = settings.role.clone();
        self.team = Some(Team { settings, port, lease: Mutex::new(None) });
        Ok(())
    }

    /// The team this desktop belongs to, and whether it is current.
    pub fn team_status(&self) -> Option<TeamStatus> {
        let team = self.team.as_ref()?;
        let last = team.lease.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|(_, seen)| *seen);
        let cut = self.cut_off();
        Some(TeamStatus {
            team: team.settings.team.clone(),
            device: team.settings.device.clone(),
            role: team.settings.role.clone(),
            connected: team.port.connected(),
            last_lease: last.map(|t| t.to_string()),
            current: cut.is_none(),
            cut_off: cut.map(|c| {
                format!(
                    "{}. Until it is back, no write runs without a person's click and money steps are at most \
                     `{}`.",
                    c.reason, self.policy.cut_off.money
                )
            }),
        })
    }

    /// This desktop's public device key, for the pack's roster (`key = "…"`).
    pub fn team_signer_key(&self) -> Option<String> {
        self.team.as_ref().map(|t| t.settings.signer.public("").to_hex())
    }

    /// Why this desktop decides as cut off from its team, if it does.
    pub(crate) fn cut_off(&self) -> Option<CutOff> {
        let team = self.team.as_ref()?;
        let lease = team.lease.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.clock.now();
        let ttl = SignedDuration::from_secs(i64::from(self.policy.cut_off.lease_secs));
        match lease.as_ref() {
            None => Some(CutOff {
                last_lease: None,
                reason: format!("no lease from team {:?}'s service has reached this desktop yet", team.settings.team),
            }),
            Some((_, seen)) if now.duration_since(*seen) > ttl => Some(CutOff {
                last_lease: Some(*seen),
                reason: format!(
                    "no lease from team {:?}'s service for {} s (a lease is fresh for {} s)",
                    team.settings.team,
                    now.duration_since(*seen).as_secs(),
                    ttl.as_secs()
                ),
            }),
            Some(_) => None,
        }
    }

    /// Take in one entry of the team's control bucket, as the link saw it (`None` for a
    /// deleted key). Idempotent: the link re-reads the bucket after every reconnect.
    pub fn team_entry(&self, key: &str, value: Option<&[u8]>) -> Result<EntryOutcome, EngineError> {
        let Some(team) = &self.team else {
            return Err(EngineError::Config { message: "this desktop is not in a team".into() });
        };
        let refused = |reason: String| {
            tracing::warn!(key, %reason, "team entry refused");
            Ok(EntryOutcome::Refused { reason })
        };
        let Some(value) = value else { return Ok(EntryOutcome::Known) };
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
        let Some(id) = key.strip_prefix(PAUSE_KEY_PREFIX) else {
            return refused(format!("unknown key {key:?}"));
        };
        let leads = self.pause_signers();
        let (signer, body): (_, TeamPause) = match signing::open(PAUSE_DOMAIN, &entry, &leads) {
            Ok(opened) => opened,
            Err(e) => return refused(format!("pause {id}: {e}")),
        };
        if body.team != team.settings.team || body.pause.id != id || body.pause.team.as_deref() != Some(&*body.team) {
            return refused(format!("pause {id}: names another team or id"));
        }
        let who = match body.state {
            TeamPauseState::Set => body.pause.set_by.as_str(),
            TeamPauseState::Cleared => body.cleared_by.as_deref().unwrap_or_default(),
        };
        // The roster line of a key is its label: the key must be that person's.
        if signer.label != who {
            return refused(format!("pause {id}: signed by {}'s key, but made by {who:?}", signer.label));
        }
        let known = self.store.pause_history()?.into_iter().find(|r| r.pause.id == id);
        match body.state {
            TeamPauseState::Set if known.is_none() => {
                self.store.writer().set_team_pause(body.pause, entry)?;
                Ok(EntryOutcome::PauseSet { id: id.to_string() })
            }
            TeamPauseState::Cleared => {
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
                self.store.writer().clear_team_pause(id, who, &reason, at, entry)?;
                Ok(EntryOutcome::PauseCleared { id: id.to_string() })
            }
            TeamPauseState::Set => Ok(EntryOutcome::Known),
        }
    }

    /// The keys whose pauses count: roster members with a key, in a role that
    /// countersigns supervisor steps or may clear pauses. Each key is labelled with its
    /// member's id.
    fn pause_signers(&self) -> Vec<PublicKey> {
        let roles = &self.managed.settings.pause_clear_roles;
        self.workspace
            .roster
            .iter()
            .filter(|e| self.policy.supervisor_roles.contains(&e.role) || roles.contains(&e.role))
            .filter_map(|e| PublicKey::from_hex(e.key.as_deref()?, e.id.clone()).ok())
            .collect()
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
        self.publish(team, &format!("{PAUSE_KEY_PREFIX}{}", pause.id), &entry)?;
        self.store.writer().set_team_pause(pause.clone(), entry)?;
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
    fn check_team_signer(&self, team: &Team) -> Result<(), EngineError> {
        let mine = team.settings.signer.public("").to_hex();
        let signers = self.pause_signers();
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
        team.port.put(key, entry).map_err(|message| EngineError::TeamUnreachable {
            message: format!("team {:?}: {message}", team.settings.team),
        })
    }

    /// Does a pause set at this seat go to the whole team? In a team, a lead's (a role
    /// that countersigns or may clear pauses) does; anyone else's pauses only this desk.
    pub(crate) fn pauses_for_team(&self) -> bool {
        self.team.is_some()
            && (self.policy.supervisor_roles.contains(&self.operator.role)
                || self.managed.settings.pause_clear_roles.contains(&self.operator.role))
    }
}

/// A pause's id for the team: unique across desktops (who set it and when).
pub(crate) fn team_pause_id(operator: &str, at: Timestamp) -> String {
    let who: String = operator.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
    format!("pause-{}-{who}", at.as_millisecond())
}
