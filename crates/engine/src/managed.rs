//! Which policy the engine runs on: a signed pack (managed) or a plain workspace policy
//! (dev mode), and what happens when a new one arrives.
//!
//! - A workspace that names a pack (`[workspace] pack = "DIR"`) runs only on packs signed
//!   by a key this build trusts ([`TrustedKeys::bundled`]). A pack that is unsigned,
//!   tampered, signed by an unknown key, or older than one this installation loaded before
//!   (or the same version with other contents) is refused: a `policy_refused` event with
//!   the reason, and the engine keeps running on the last good pack, the verified copy it
//!   keeps in `<data dir>/pack/` (re-verified at every open).
//! - The versions loaded before come from the evidence log's `policy_loaded` events, so
//!   they are as tamper-evident as the rest of the log.
//! - A workspace with a plain `policy` and no pack is dev mode: `policy_loaded` says
//!   `signed: false`. An installation that has once loaded a signed pack refuses an
//!   unsigned policy from then on (an agent cannot opt out by editing workspace.toml).
//! - When a policy loads, every step still waiting for (or holding) an approval decided
//!   under another policy is invalidated at once, each with a `step_invalidated` event;
//!   when a new signed pack loads, every such step is, even if only the roster, catalog or
//!   settings changed.
//! - Managed settings come only from the pack; the engine exposes them read-only.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use countersign_core::Policy;
use countersign_core::evidence::{Event, PackRef};
use countersign_store::{EventFilter, StepFilter, StepState, StepUpdate, Store, StoreError};
use serde::Serialize;

use crate::keys::TrustedKeys;
use crate::log::last_of;
use crate::pack::{self, ManagedSettings, Pack, PackInfo, PackRefusal, RefusalCode};
use crate::workspace::{ConnectorConfig, Workspace};
use crate::{Engine, EngineError, PolicySummary};

/// Where, under the data dir, the engine keeps its copy of the last good pack.
pub const PACK_COPY_DIR: &str = "pack";

/// The engine's view of where its policy came from.
#[derive(Debug)]
pub(crate) struct Managed {
    pub trusted: TrustedKeys,
    pub data_dir: PathBuf,
    pub connector_overridden: bool,
    /// Held while a pack loads ([`Engine::load_pack`]).
    pub loading: std::sync::Mutex<()>,
}

/// A copy of what runs, to change a part of it.
fn clone_running(r: &crate::Running) -> crate::Running {
    crate::Running {
        workspace: r.workspace.clone(),
        policy: r.policy.clone(),
        connector: r.connector.clone(),
        loaded: r.loaded.clone(),
        refused: r.refused.clone(),
        settings: r.settings.clone(),
    }
}

/// Signed pack or dev mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyMode {
    /// A pack signed by a trusted admin key.
    Signed,
    /// An unsigned workspace policy: for development and the demo only.
    Dev,
}

/// What the engine runs on, for the app's status bar and `policy status`.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyStatus {
    pub mode: PolicyMode,
    pub policy: PolicySummary,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pack: Option<PackInfo>,
    /// A pack refused since the engine opened; it kept the policy it had.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<PackRefusal>,
    /// The admin keys this build trusts: `id label`.
    pub trusted_keys: Vec<String>,
}

/// The highest signed pack version this store loaded, and its digest.
#[derive(Debug, Clone)]
struct LastSigned {
    version: u64,
    digest: String,
}

fn last_signed(store: &Store) -> Result<Option<LastSigned>, EngineError> {
    let events =
        crate::log::events_in(store, &EventFilter { kind: Some("policy_loaded".into()), ..EventFilter::default() })?;
    let mut best: Option<LastSigned> = None;
    for e in events {
        let Event::PolicyLoaded { signed: true, pack: Some(p), .. } = e.event else { continue };
        if best.as_ref().is_none_or(|b| p.version >= b.version) {
            best = Some(LastSigned { version: p.version, digest: p.digest });
        }
    }
    Ok(best)
}

fn check_version(pack: Pack, last: Option<&LastSigned>) -> Result<Pack, PackRefusal> {
    let Some(last) = last else { return Ok(pack) };
    let info = &pack.info;
    let refuse = |code, message| PackRefusal {
        code,
        message,
        pack_id: Some(info.id.clone()),
        version: Some(info.version),
        digest: Some(info.digest.clone()),
    };
    if info.version < last.version {
        return Err(refuse(
            RefusalCode::Downgrade,
            format!(
                "pack {} v{} is older than v{}, which this installation already loaded",
                info.id, info.version, last.version
            ),
        ));
    }
    if info.version == last.version && info.digest != last.digest {
        return Err(refuse(
            RefusalCode::VersionReused,
            format!(
                "pack {} v{} was loaded before with other contents ({}); a changed pack needs a higher version",
                info.id, info.version, last.digest
            ),
        ));
    }
    Ok(pack)
}

/// What [`select`] chose at open.
#[derive(Debug)]
pub(crate) struct Selected {
    pub policy: Policy,
    pub pack: Option<Pack>,
    pub refused: Option<PackRefusal>,
}

/// At open: the workspace's pack if it verifies, else the last good pack (with the
/// refusal); dev mode's plain policy only on an installation that never ran a signed pack.
/// With nothing to fall back on, the refusal is recorded and returned as an error.
pub(crate) fn select(
    workspace: &mut Workspace,
    store: &Store,
    data_dir: &Path,
    trusted: &TrustedKeys,
    dev_policy: Option<Policy>,
    at: jiff::Timestamp,
) -> Result<Selected, EngineError> {
    let last = last_signed(store)?;
    let offered = match (&workspace.pack, dev_policy) {
        (Some(dir), _) => pack::verify_pack(dir, trusted).and_then(|p| check_version(p, last.as_ref())),
        (None, Some(policy)) => match &last {
            None => return Ok(Selected { policy, pack: None, refused: None }),
            Some(l) => Err(PackRefusal {
                code: RefusalCode::Unsigned,
                message: format!(
                    "{}: an unsigned policy, but this installation has run signed policy packs (up to v{}): \
                     dev mode is over for it",
                    workspace.policy.display(),
                    l.version
                ),
                pack_id: None,
                version: None,
                digest: None,
            }),
        },
        (None, None) => {
            return Err(EngineError::Config {
                message: format!("{}: no policy and no pack", workspace.file.display()),
            });
        }
    };
    let copy_dir = data_dir.join(PACK_COPY_DIR);
    let (pack, refused) = match offered {
        Ok(p) => {
            let same = std::fs::read(copy_dir.join(pack::MANIFEST_FILE)).ok().as_deref()
                == p.files().get(pack::MANIFEST_FILE).map(Vec::as_slice);
            if !same {
                pack::store_copy(&p, &copy_dir)?;
            }
            (p, None)
        }
        Err(r) => match pack::verify_pack(&copy_dir, trusted).and_then(|p| check_version(p, last.as_ref())) {
            Ok(p) => (p, Some(r)),
            Err(_) => {
                record_refusal(store, &r, at)?;
                return Err(EngineError::PackRefused { refusal: r });
            }
        },
    };
    apply_to_workspace(workspace, &pack, &copy_dir);
    Ok(Selected { policy: pack.policy.clone(), pack: Some(pack), refused })
}

/// The pack's roster and catalog replace the workspace's.
fn apply_to_workspace(workspace: &mut Workspace, pack: &Pack, copy_dir: &Path) {
    workspace.roster = pack.roster.clone();
    workspace.policy = copy_dir.join(pack::POLICY_FILE);
    if pack.info.has_catalog
        && let ConnectorConfig::Http { catalog, .. } = &mut workspace.connector
    {
        *catalog = copy_dir.join(pack::CATALOG_FILE);
    }
}

/// Record a refusal, unless the last policy event already says the same (every CLI call
/// opens the engine; one refused pack on disk is one event, not one per command).
fn record_refusal(store: &Store, r: &PackRefusal, at: jiff::Timestamp) -> Result<(), EngineError> {
    let event = Event::PolicyRefused {
        reason: r.message.clone(),
        code: Some(r.code.as_str().to_string()),
        pack_id: r.pack_id.clone(),
        pack_version: r.version,
        digest: r.digest.clone(),
    };
    let (refused, loaded) = (last_of(store, "policy_refused")?, last_of(store, "policy_loaded")?);
    if let Some(prev) = refused
        && prev.event == event
        && loaded.is_none_or(|l| l.seq < prev.seq)
    {
        return Ok(());
    }
    store.append(countersign_store::NewEvent::from_event(None, "system", at, &event))?;
    Ok(())
}

impl Engine {
    /// After open chose a policy: record the refusal (if the workspace's pack was refused),
    /// `policy_loaded` when the policy is new to the log, and invalidate stale steps.
    pub(crate) fn finish_policy_load(&self, refused: Option<&PackRefusal>) -> Result<(), EngineError> {
        let running = self.running();
        if let Some(r) = refused {
            record_refusal(&self.store, r, self.clock.now())?;
        }
        let new_pack = self.record_policy_loaded()? && running.loaded.is_some();
        self.invalidate_stale(new_pack)?;
        Ok(())
    }

    /// Record `policy_loaded` unless the log's last one says the same; `true` if recorded.
    fn record_policy_loaded(&self) -> Result<bool, EngineError> {
        let running = self.running();
        let last = match last_of(&self.store, "policy_loaded")?.map(|e| e.event) {
            Some(Event::PolicyLoaded { hash, pack, .. }) => Some((hash, pack.map(|p| p.digest))),
            _ => None,
        };
        let pack = running.loaded.as_ref().map(|p| PackRef {
            id: p.id.clone(),
            version: p.version,
            key_id: p.key_id.clone(),
            digest: p.digest.clone(),
            simulation: p.simulation.clone(),
        });
        let now = (running.policy.hash.clone(), pack.as_ref().map(|p| p.digest.clone()));
        if last.as_ref() == Some(&now) {
            return Ok(false);
        }
        self.append(
            None,
            "system",
            Event::PolicyLoaded {
                policy_id: running.policy.id.clone(),
                version: running.policy.version,
                hash: running.policy.hash.clone(),
                signed: pack.is_some(),
                pack,
            },
        )?;
        Ok(true)
    }

    /// Every step waiting for an approval, or approved and not yet started, that was
    /// decided under another policy than the one loaded (with `all`, when a new pack has
    /// just loaded: every such step, since its roster or catalog may have changed even if
    /// the policy did not) is invalidated, with evidence. Returns the steps it invalidated.
    pub(crate) fn invalidate_stale(&self, all: bool) -> Result<Vec<crate::StepRecord>, EngineError> {
        let running = self.running();
        let pending = self
            .store
            .steps(&StepFilter { states: vec![StepState::Waiting, StepState::Approved], ..StepFilter::default() })?;
        let mut out = Vec::new();
        for record in pending.into_iter().filter(|r| all || r.policy_hash != running.policy.hash) {
            let reason = if record.policy_hash == running.policy.hash {
                "a new policy pack was loaded (same policy, new pack); decide the plan again"
            } else {
                "a new policy was loaded; decide the plan again"
            };
            if self.invalidate("system", &record, reason)? {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// Invalidate a waiting or approved step, with a `step_invalidated` event by `actor`.
    /// False when it moved on meanwhile (started, reviewed): nothing left to invalidate.
    pub(crate) fn invalidate(
        &self,
        actor: &str,
        record: &crate::StepRecord,
        reason: &str,
    ) -> Result<bool, EngineError> {
        let running = self.running();
        let event = Event::StepInvalidated {
            plan_id: record.plan_id.clone(),
            step_id: record.step_id.clone(),
            step_digest: record.step_digest.clone(),
            decided_under: record.policy_hash.clone(),
            policy_hash: running.policy.hash.clone(),
            reason: reason.to_string(),
        };
        let now = self.clock.now();
        match self.transition_by(actor, record, StepState::Invalidated, StepUpdate::default(), now, event, None) {
            Ok(()) => Ok(true),
            Err(EngineError::Store(StoreError::StepConflict { .. })) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Load a new pack while running. A pack that does not verify, or is older than one
    /// loaded before, is refused (recorded as `policy_refused`) and the engine keeps the
    /// policy it has. On success the pack becomes the last good pack: the engine runs on
    /// it from the next use case on (one that already read the running policy finishes
    /// on that one), `policy_loaded` is recorded and approvals decided under the old
    /// policy are invalidated.
    pub fn load_pack(&self, dir: &Path) -> Result<PackInfo, EngineError> {
        // One load at a time: each builds on the one before.
        let _one = self.managed.loading.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let was = self.running();
        let last = last_signed(&self.store)?;
        let pack = match pack::verify_pack(dir, &self.managed.trusted).and_then(|p| check_version(p, last.as_ref())) {
            Ok(p) => p,
            Err(r) => {
                record_refusal(&self.store, &r, self.clock.now())?;
                self.set_running(crate::Running { refused: Some(r.clone()), ..clone_running(&was) });
                return Err(EngineError::PackRefused { refusal: r });
            }
        };
        // What `open` checks of a policy, checked before anything changes: a pack whose
        // policy does not know this seat's role or its roster's roles is refused, and
        // the refusal recorded.
        if let Some(role) = std::iter::once(&self.operator.role)
            .chain(pack.roster.iter().map(|e| &e.role))
            .find(|r| !pack.policy.roles.contains(*r))
        {
            let r = PackRefusal {
                code: pack::RefusalCode::InvalidContents,
                message: format!(
                    "its policy does not declare role {role:?}, which this desk's seat or the pack's roster has; \
                     the desk keeps the pack it runs"
                ),
                pack_id: Some(pack.info.id.clone()),
                version: Some(pack.info.version),
                digest: Some(pack.info.digest.clone()),
            };
            record_refusal(&self.store, &r, self.clock.now())?;
            self.set_running(crate::Running { refused: Some(r.clone()), ..clone_running(&was) });
            return Err(EngineError::PackRefused { refusal: r });
        }
        // The new connector is built from the verified staged files before the running
        // pack's copy is replaced, so a catalog that does not load changes nothing.
        let mut connector = was.connector.clone();
        if pack.info.has_catalog
            && !self.managed.connector_overridden
            && let ConnectorConfig::Http { base_url, .. } = &was.workspace.connector
        {
            let catalog = countersign_connectors::Catalog::load(&dir.join(pack::CATALOG_FILE))
                .map_err(|e| EngineError::Config { message: e.to_string() })?;
            let mut http =
                countersign_connectors::HttpConnector::new(catalog, Arc::new(crate::credentials::keyring()))?;
            if let Some(url) = base_url {
                http = http.with_base_url(url)?;
            }
            let http: Arc<dyn countersign_connectors::Connector> = Arc::new(http);
            http.attach_blobs(self.blobs());
            connector = http;
        }
        let copy_dir = self.managed.data_dir.join(PACK_COPY_DIR);
        pack::store_copy(&pack, &copy_dir)?;
        let mut workspace = (*was.workspace).clone();
        apply_to_workspace(&mut workspace, &pack, &copy_dir);
        self.set_running(crate::Running {
            workspace: Arc::new(workspace),
            policy: Arc::new(pack.policy.clone()),
            connector,
            loaded: Some(pack.info.clone()),
            refused: None,
            settings: pack.info.settings.clone(),
        });
        // What the old policy's signals found no longer holds.
        self.forget_scans();
        let recorded = self.record_policy_loaded()?;
        self.invalidate_stale(recorded)?;
        Ok(pack.info)
    }

    /// Signed pack or dev mode, the pack, the last refusal, the trusted keys.
    pub fn policy_status(&self) -> PolicyStatus {
        let running = self.running();
        PolicyStatus {
            mode: if running.loaded.is_some() { PolicyMode::Signed } else { PolicyMode::Dev },
            policy: PolicySummary::of(&running.policy),
            pack: running.loaded.clone(),
            refused: running.refused.clone(),
            trusted_keys: self.managed.trusted.keys().iter().map(|k| format!("{} {}", k.id(), k.label)).collect(),
        }
    }

    /// The admin's managed settings (read-only: they change only with a new signed pack;
    /// dev mode has the defaults).
    /// Does the engine run on a signed pack (not dev mode)?
    pub fn policy_is_signed(&self) -> bool {
        let running = self.running();
        running.loaded.is_some()
    }

    pub fn managed_settings(&self) -> ManagedSettings {
        let running = self.running();
        running.settings.clone()
    }

    /// May the seat's operator clear a pause? (Managed setting `pause_clear_roles`.)
    pub(crate) fn check_pause_clear(&self) -> Result<(), EngineError> {
        let running = self.running();
        let roles = &running.settings.pause_clear_roles;
        if roles.is_empty() || roles.contains(&self.operator.role) {
            return Ok(());
        }
        Err(EngineError::NotPermitted {
            message: format!(
                "{} ({}) may not clear a pause: the policy pack lets only {} do that",
                self.operator.id,
                self.operator.role,
                roles.join(" or ")
            ),
        })
    }
}
