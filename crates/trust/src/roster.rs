//! Who may countersign as a team lead on an agent's machine.
//!
//! The workspace lists the people whose countersignature carries a role beyond the
//! seat's (later: the signed policy pack does, so an agent cannot add themself):
//!
//! ```toml
//! [[roster]]
//! id = "lead-dana"
//! role = "team_lead"
//! passphrase = "$argon2id$v=19$m=19456,t=2,p=1$…"   # `countersign roster hash`
//! ```
//!
//! A team lead proves who they are by typing their passphrase at the agent's seat; the
//! engine checks it against the Argon2id hash (a PHC string, parameters inside it) and
//! records the countersignature under the lead's id. The passphrase is read into a
//! [`Secret`], never stored, never logged; a failed attempt is evidence
//! (`review_refused`: who was claimed, which step, why) without it. Five failed attempts
//! for one id within 15 minutes lock that id out for the rest of the window, which bounds
//! guessing at the seat. The hash itself is on the agent's machine, so it must resist
//! offline guessing: Argon2id with at least the OWASP minimum cost, and a passphrase
//! rather than a short PIN.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};

use crate::{Secret, TrustError};

/// Failed attempts for one id, within [`LOCKOUT_WINDOW_MINUTES`], that lock it out.
pub const LOCKOUT_ATTEMPTS: usize = 5;
/// How far back failed attempts count.
pub const LOCKOUT_WINDOW_MINUTES: i64 = 15;

/// The evidence kind of a refused proof.
pub const REVIEW_REFUSED: &str = "review_refused";

/// The least Argon2id cost a roster hash may have (OWASP: 19 MiB, 2 passes, 1 lane).
const MIN_MEMORY_KIB: u32 = 19 * 1024;
const MIN_PASSES: u32 = 2;

/// One person on the roster. The hash is kept, never shown.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RosterEntry {
    pub id: String,
    pub role: String,
    #[serde(default)]
    pub name: Option<String>,
    /// Argon2id PHC string.
    passphrase: String,
    /// The public half of the person's device key (64 hex digits), for what they sign
    /// on the team plane (pauses, countersignatures from their own desk). Optional: a
    /// roster without keys works on one desktop.
    #[serde(default)]
    pub key: Option<String>,
    /// The desks (enrolled device names) whose evidence this person may see in the
    /// team's view; `"*"` for every desk. None when absent.
    #[serde(default)]
    pub view_desks: Vec<String>,
    /// The tenants whose cases this person may see in the team's view; `"*"` for every
    /// tenant. None when absent.
    #[serde(default)]
    pub view_tenants: Vec<String>,
}

impl std::fmt::Debug for RosterEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RosterEntry").field("id", &self.id).field("role", &self.role).finish_non_exhaustive()
    }
}

/// A roster entry as shown (no hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RosterMember {
    pub id: String,
    pub role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// What a countersigner presents: who they say they are and their passphrase.
#[derive(Debug)]
pub struct Proof {
    pub id: String,
    pub passphrase: Secret,
}

impl RosterEntry {
    /// May this person see `desk`'s evidence in the team's view?
    pub fn may_view_desk(&self, desk: &str) -> bool {
        self.view_desks.iter().any(|d| d == "*" || d == desk)
    }

    /// May this person see cases of `tenant` in the team's view (`None`: a case whose
    /// tenant is not known, which only a grant of every tenant covers)?
    pub fn may_view_tenant(&self, tenant: Option<&str>) -> bool {
        self.view_tenants.iter().any(|t| t == "*" || Some(t.as_str()) == tenant)
    }

    pub fn member(&self) -> RosterMember {
        RosterMember { id: self.id.clone(), role: self.role.clone(), name: self.name.clone() }
    }

    /// Check the entry's hash is a usable Argon2id PHC string of at least the minimum cost.
    pub fn check(&self) -> Result<(), String> {
        if self.id.trim().is_empty() || self.role.trim().is_empty() {
            return Err("a roster entry needs an id and a role".into());
        }
        if let Some(key) = &self.key {
            crate::keys::PublicKey::from_hex(key, "").map_err(|e| {
                format!(
                    "roster entry {:?}: key: {e} (the person's device key, from `countersign team whoami`)",
                    self.id
                )
            })?;
        }
        let hash = PasswordHash::new(&self.passphrase)
            .map_err(|e| format!("roster entry {:?}: passphrase is not a PHC hash string: {e}", self.id))?;
        if hash.algorithm != Algorithm::Argon2id.ident() {
            return Err(format!(
                "roster entry {:?}: passphrase must be an argon2id hash, not {}",
                self.id, hash.algorithm
            ));
        }
        let params = Params::try_from(&hash).map_err(|e| format!("roster entry {:?}: {e}", self.id))?;
        if params.m_cost() < MIN_MEMORY_KIB || params.t_cost() < MIN_PASSES {
            return Err(format!(
                "roster entry {:?}: the hash is too cheap (m={}, t={}); at least m={MIN_MEMORY_KIB}, t={MIN_PASSES}: \
                 make a new one with `countersign roster hash`",
                self.id,
                params.m_cost(),
                params.t_cost()
            ));
        }
        Ok(())
    }

    /// Does `passphrase` match? (Constant-time comparison inside `argon2`.)
    pub fn verify(&self, passphrase: &Secret) -> bool {
        PasswordHash::new(&self.passphrase)
            .is_ok_and(|h| Argon2::default().verify_password(passphrase.expose().as_bytes(), &h).is_ok())
    }
}

/// An Argon2id hash of `passphrase` with a fresh salt and the default (OWASP) cost, as a
/// PHC string for a `[[roster]]` entry.
pub fn hash_passphrase(passphrase: &Secret) -> Result<String, TrustError> {
    if passphrase.expose().chars().count() < 8 {
        return Err(TrustError::BadInput {
            message: "a team-lead passphrase has at least 8 characters (its hash sits on agents' machines)".into(),
        });
    }
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| TrustError::System { message: format!("no randomness for a salt: {e}") })?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| TrustError::System { message: e.to_string() })?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default());
    argon
        .hash_password(passphrase.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| TrustError::System { message: format!("hashing the passphrase: {e}") })
}
