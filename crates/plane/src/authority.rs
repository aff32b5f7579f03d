//! A team's authority, kept by its admin: the NATS operator and account (decentralised
//! JWT auth), the folder the team's server runs from, and the roll of enrolled devices.
//!
//! - `init` makes the operator, the team's account (JetStream on), the system account,
//!   the team service's identity and lease key, and the server's configuration. The
//!   operator, account and signing seeds go to the admin's OS keyring.
//! - `enroll` signs a user JWT for a device's own transport key (the device made it and
//!   keeps its seed; only the public key travels), with the permissions of its role
//!   ([`crate::subjects::permissions`]). The server needs no change and no restart: it
//!   trusts any user the account's signing key signed.
//! - `revoke` adds the device's key to the account's revocations and pushes the new
//!   account JWT to the running server, which drops the device's connections at once.
//!   `rotate` is enrolling the device's new key and revoking the old one.
//!
//! The team folder holds what is public (`team.toml`, the server config, the resolver's
//! JWTs) and the team service's own secrets (`service.creds`, `service.key`, mode 0600,
//! as a server's credentials usually are); the admin's seeds never touch it.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use countersign_connectors::credentials::{KeyringStore, Secret};
use countersign_trust::keys::SecretKey;
use jiff::Timestamp;
use nats_io_jwt::{Account, Operator, Token, User};
use nkeys::KeyPair;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::PlaneError;
use crate::quota::{Quota, max_bytes};
use crate::subjects::{Role, check_device_name, permissions};

/// `team.toml` in the team folder: everything public about the team.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamFile {
    pub name: String,
    /// Where desktops reach the server (`nats://…` on loopback, `tls://…` elsewhere).
    pub url: String,
    pub operator: String,
    pub account: String,
    /// The account's signing key (signs devices' user JWTs).
    pub signer: String,
    pub system_account: String,
    /// The team service's lease key (ed25519, hex).
    pub service_key: String,
    /// What the team's streams and stores may hold on the server's disk, in all (the
    /// server refuses a write past it), if limited. The server must have that much room:
    /// it does not enable an account whose quota exceeds its own store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_disk_bytes: Option<u64>,
    /// Each desk's share of it for its blob store (see [`crate::quota`]); a 64th when
    /// not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desk_disk_bytes: Option<u64>,
    #[serde(default, rename = "device")]
    pub devices: Vec<DeviceRecord>,
}

impl TeamFile {
    /// `team.toml` in the team folder `dir` (public: no keyring needed).
    pub fn read(dir: &Path) -> Result<TeamFile, PlaneError> {
        let path = dir.join("team.toml");
        let text = std::fs::read_to_string(&path).map_err(|e| PlaneError::file(&path, e))?;
        toml::from_str(&text).map_err(|e| PlaneError::file(&path, e.to_string().trim_end()))
    }

    /// How the team's quota is shared out, if it has one.
    pub fn quota(&self) -> Option<Quota> {
        Quota::of(self.max_disk_bytes, self.desk_disk_bytes)
    }

    /// The devices enrolled and not revoked.
    pub fn live_devices(&self) -> impl Iterator<Item = &DeviceRecord> {
        self.devices.iter().filter(|d| d.revoked_at.is_none())
    }

    /// The evidence key the admin gave for `device` at enrolment (its live record's).
    pub fn device_key(&self, device: &str) -> Option<&str> {
        self.devices.iter().rev().find(|d| d.name == device && d.revoked_at.is_none())?.device_key.as_deref()
    }
}

/// One enrolled device (every key it ever had stays listed; revoked ones with the time).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceRecord {
    pub name: String,
    pub role: Role,
    /// Its transport key (a NATS user nkey, `U…`).
    pub key: String,
    /// The key its evidence is signed with (ed25519, hex), when the admin gave it at
    /// enrolment: the team service then holds the desk's checkpoints to it from the
    /// first one (without it, the desk's first checkpoint that verifies pins its key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_key: Option<String>,
    pub enrolled_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
    /// When its credentials were last issued again (`team reissue`): every JWT of its key
    /// issued before that second is refused by the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reissued_at: Option<Timestamp>,
}

/// What a device receives when enrolled: the team's public facts and its user JWT. No
/// secret: the device's seed never left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Enrollment {
    pub team: String,
    pub url: String,
    pub device: String,
    pub role: Role,
    /// The team service's lease key (hex).
    pub service_key: String,
    /// The device's user JWT (public; useless without the device's seed).
    pub jwt: String,
}

impl Enrollment {
    /// Check this enrolment against the team a signed policy names: the JWT must be
    /// signed by the team's `signer`, for `transport_key` (the desk's own), and name this
    /// device and role; the team and its service key must be the policy's. What the
    /// file says is believed only as far as that signature carries it.
    pub fn verify(&self, team: &str, signer: &str, service_key: &str, transport_key: &str) -> Result<(), PlaneError> {
        use base64::Engine as _;
        let bad = |why: String| PlaneError::bad(format!("the enrolment of {:?} does not hold: {why}", self.device));
        if self.team != team {
            return Err(bad(format!("it is for team {:?}; the signed policy names {team:?}", self.team)));
        }
        if !self.service_key.eq_ignore_ascii_case(service_key) {
            return Err(bad("its service key is not the one the signed policy names".into()));
        }
        let mut parts = self.jwt.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("its JWT is not three parts".into()));
        };
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let signature =
            b64.decode(signature.trim_end_matches('=')).map_err(|e| bad(format!("its JWT's signature: {e}")))?;
        let key = KeyPair::from_public_key(signer).map_err(|e| bad(format!("the policy's team signer: {e}")))?;
        key.verify(format!("{header}.{payload}").as_bytes(), &signature)
            .map_err(|_| bad("its JWT is not signed by the team's signer".into()))?;
        let claims: serde_json::Value = b64
            .decode(payload.trim_end_matches('='))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| bad("its JWT's claims are not JSON".into()))?;
        let text = |name: &str| claims.get(name).and_then(serde_json::Value::as_str).unwrap_or_default();
        if text("iss") != signer {
            return Err(bad("its JWT names another issuer".into()));
        }
        if text("sub") != transport_key {
            return Err(bad("it was signed for another desk's transport key".into()));
        }
        if text("name") != self.device {
            return Err(bad(format!("its JWT is for device {:?}", text("name"))));
        }
        let tags: Vec<&str> = claims
            .pointer("/nats/tags")
            .and_then(serde_json::Value::as_array)
            .map(|t| t.iter().filter_map(serde_json::Value::as_str).collect())
            .unwrap_or_default();
        let role = format!("role:{}", self.role.as_str());
        if !tags.contains(&role.as_str()) {
            return Err(bad(format!("its JWT does not enrol it as {}", self.role.as_str())));
        }
        Ok(())
    }
}

/// How to set a team up.
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub name: String,
    /// The address the server listens on.
    pub host: IpAddr,
    pub port: u16,
    /// TLS certificate and key for the server: required unless it listens on loopback.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// What the team's streams and stores may hold on disk, in all, if limited.
    pub max_disk_bytes: Option<u64>,
    /// Each desk's share of it for its blob store (a 64th when not given).
    pub desk_disk_bytes: Option<u64>,
}

fn slot(team: &str, what: &str) -> String {
    format!("team.{team}.{what}")
}

fn keypair(seed: &Secret, what: &str) -> Result<KeyPair, PlaneError> {
    KeyPair::from_seed(seed.expose()).map_err(|e| PlaneError::Keyring { message: format!("{what}: {e}") })
}

fn secret_of(kp: &KeyPair) -> Result<Secret, PlaneError> {
    kp.seed().map(Secret::new).map_err(|e| PlaneError::bad(format!("a key without a seed: {e}")))
}

fn typed<T: serde::de::DeserializeOwned>(value: serde_json::Value, what: &str) -> Result<T, PlaneError> {
    serde_json::from_value(value).map_err(|e| PlaneError::bad(format!("building the {what} JWT: {e}")))
}

/// The team folder of an initialised team.
#[derive(Debug)]
pub struct Authority {
    dir: PathBuf,
    keyring: KeyringStore,
    pub file: TeamFile,
}

impl Authority {
    /// Set up a team in the empty (or new) folder `dir`.
    pub fn init(dir: &Path, options: &InitOptions, keyring: KeyringStore) -> Result<Authority, PlaneError> {
        check_device_name(&options.name)
            .map_err(|_| PlaneError::bad(format!("team name {:?}: use letters, digits, '-' or '_'", options.name)))?;
        let loopback = options.host.is_loopback();
        if !loopback && options.tls.is_none() {
            return Err(PlaneError::bad(format!(
                "the server would listen on {} without TLS: give --tls-cert and --tls-key (only loopback may go \
                 without)",
                options.host
            )));
        }
        if dir.join("team.toml").exists() {
            return Err(PlaneError::bad(format!("{} already holds a team", dir.display())));
        }
        if let Some(bytes) = options.max_disk_bytes
            && bytes < 1 << 20
        {
            return Err(PlaneError::bad(format!(
                "a team needs at least 1 MiB of disk for its streams, not {bytes} bytes"
            )));
        }
        match (options.max_disk_bytes, options.desk_disk_bytes) {
            (Some(team), Some(desk)) => Quota::check(team, desk).map_err(PlaneError::bad)?,
            (None, Some(_)) => {
                return Err(PlaneError::bad(
                    "a desk's share of the disk needs the team's quota: give --max-disk-gib too",
                ));
            }
            _ => {}
        }
        std::fs::create_dir_all(dir.join("jwt")).map_err(|e| PlaneError::file(dir, e))?;
        let operator = KeyPair::new_operator();
        let account = KeyPair::new_account();
        let signer = KeyPair::new_account();
        let system = KeyPair::new_account();
        let sys_user = KeyPair::new_user();
        for (what, kp) in [("operator", &operator), ("account", &account), ("signer", &signer), ("sys", &sys_user)] {
            keyring.set_key(&slot(&options.name, what), &secret_of(kp)?)?;
        }
        keyring.set_key(&slot(&options.name, "system"), &secret_of(&system)?)?;
        let scheme = if loopback { "nats" } else { "tls" };
        let service_key = SecretKey::generate().map_err(|e| PlaneError::bad(e.to_string()))?;
        let file = TeamFile {
            name: options.name.clone(),
            url: format!("{scheme}://{}", std::net::SocketAddr::new(options.host, options.port)),
            operator: operator.public_key(),
            account: account.public_key(),
            signer: signer.public_key(),
            system_account: system.public_key(),
            service_key: service_key.public("").to_hex(),
            max_disk_bytes: options.max_disk_bytes,
            desk_disk_bytes: options.desk_disk_bytes,
            devices: Vec::new(),
        };
        let mut authority = Authority { dir: dir.to_path_buf(), keyring, file };
        service_key.write_file(&dir.join("service.key")).map_err(|e| PlaneError::bad(e.to_string()))?;
        // The service is a device of its own, enrolled like any other.
        let service = KeyPair::new_user();
        let jwt = authority.enroll("service", Role::Service, &service.public_key())?.jwt;
        write_private(&dir.join("service.creds"), &creds(&jwt, &secret_of(&service)?))?;
        authority.write_server_config(options, &system)?;
        authority.save()?;
        Ok(authority)
    }

    /// Open the team in `dir` (its admin's keyring holds the seeds).
    pub fn open(dir: &Path, keyring: KeyringStore) -> Result<Authority, PlaneError> {
        Ok(Authority { dir: dir.to_path_buf(), keyring, file: TeamFile::read(dir)? })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn seed(&self, what: &str) -> Result<KeyPair, PlaneError> {
        let secret = self.keyring.get_key(&slot(&self.file.name, what))?.ok_or_else(|| PlaneError::Keyring {
            message: format!(
                "no {what} key of team {:?} here: run this on the admin's machine, where `team init` ran",
                self.file.name
            ),
        })?;
        keypair(&secret, what)
    }

    fn save(&self) -> Result<(), PlaneError> {
        let path = self.dir.join("team.toml");
        let text = toml::to_string_pretty(&self.file).map_err(|e| PlaneError::file(&path, e))?;
        let tmp = self.dir.join("team.toml.tmp");
        std::fs::write(&tmp, text).map_err(|e| PlaneError::file(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| PlaneError::file(&path, e))
    }

    /// Sign a user JWT for `device` with `role`, for the transport key `key` (`U…`).
    pub fn enroll(&mut self, device: &str, role: Role, key: &str) -> Result<Enrollment, PlaneError> {
        self.enroll_with(device, role, key, None)
    }

    /// [`Authority::enroll`], with the key the device signs its evidence with (ed25519,
    /// hex; `countersign team key` prints it on the device), which the team service
    /// then holds its checkpoints to from the first one.
    pub fn enroll_with(
        &mut self,
        device: &str,
        role: Role,
        key: &str,
        device_key: Option<&str>,
    ) -> Result<Enrollment, PlaneError> {
        check_device_name(device)?;
        let device_key = device_key.map(|k| evidence_key(device, k)).transpose()?;
        self.check_room(device, role)?;
        if KeyPair::from_public_key(key).is_err() || !key.starts_with('U') {
            return Err(PlaneError::bad(format!(
                "{key:?} is not a device transport key (a NATS user public key, `U…`): the device prints its own with \
                 `countersign team key`"
            )));
        }
        if let Some(d) = self.file.devices.iter().find(|d| d.key == key) {
            return Err(PlaneError::bad(format!("key {key} is already enrolled, as {:?}", d.name)));
        }
        let live = self.file.devices.iter().find(|d| d.name == device && d.revoked_at.is_none());
        if let Some(d) = live {
            return Err(PlaneError::bad(format!(
                "{device:?} is enrolled already (key {}); to give it a new key, rotate it",
                d.key
            )));
        }
        let jwt = self.user_jwt(device, role, key)?;
        self.file.devices.push(DeviceRecord {
            name: device.to_string(),
            role,
            key: key.to_string(),
            device_key,
            enrolled_at: Timestamp::now(),
            revoked_at: None,
            reissued_at: None,
        });
        self.save()?;
        Ok(self.enrollment(device, role, jwt))
    }

    fn enrollment(&self, device: &str, role: Role, jwt: String) -> Enrollment {
        Enrollment {
            team: self.file.name.clone(),
            url: self.file.url.clone(),
            device: device.to_string(),
            role,
            service_key: self.file.service_key.clone(),
            jwt,
        }
    }

    /// A user JWT for `key` as `device` of `role`, with today's permissions.
    fn user_jwt(&self, device: &str, role: Role, key: &str) -> Result<String, PlaneError> {
        let signer = self.seed("signer")?;
        let (publish, subscribe) = permissions(role, device);
        // The team service answers requests (a lead's team view): one reply each, to
        // the asker's inbox, within a minute.
        let resp = (role == Role::Service).then(|| json!({"max": 1, "ttl": 60_000_000_000_i64}));
        let claims: User = typed(
            json!({
                "type": "user",
                "version": 2,
                "issuer_account": self.file.account,
                "bearer_token": false,
                "pub": {"allow": publish},
                "sub": {"allow": subscribe},
                "resp": resp,
                "subs": -1, "data": -1, "payload": -1,
                "tags": [format!("role:{}", role.as_str()), format!("device:{}", device.to_lowercase())],
            }),
            "user",
        )?;
        Ok(Token::new(key.to_string()).name(device).claims(claims).sign(&signer))
    }

    /// With a quota, a new desk needs room for its blob store beside every other
    /// (a name once enrolled keeps its store, revoked or not).
    fn check_room(&self, device: &str, role: Role) -> Result<(), PlaneError> {
        let Some(quota) = self.file.quota() else { return Ok(()) };
        if role == Role::Service {
            return Ok(());
        }
        let names: std::collections::BTreeSet<&str> =
            self.file.devices.iter().filter(|d| d.role != Role::Service).map(|d| d.name.as_str()).collect();
        if !names.contains(device) && names.len() as u64 >= quota.desks() {
            return Err(PlaneError::bad(format!(
                "team {:?} has room for {} desks' blob stores of {} MiB each beside its own streams, and {} names \
                 have one (a revoked desk keeps its store): this team needs a larger quota (`countersign team quota \
                 --max-disk-gib`)",
                self.file.name,
                quota.desks(),
                quota.desk_blobs >> 20,
                names.len()
            )));
        }
        Ok(())
    }

    /// Give the team a larger quota (`max_disk_bytes`), and each desk's blob store a share
    /// of `desk_disk_bytes` (kept as it is when `None`): `team.toml` is saved, then the
    /// account's new limits are pushed to the server. The running team service gives
    /// every stream and store its new share at its next tick. A quota or a share only
    /// grows here: a smaller one could be below what the streams already hold, and the
    /// server would then refuse every write, a lead's pause too. Returns the new shares,
    /// with the error of a push that failed beside them (`team push` sends it later).
    pub fn grow_quota(
        &mut self,
        max_disk_bytes: u64,
        desk_disk_bytes: Option<u64>,
    ) -> Result<(Quota, Option<PlaneError>), PlaneError> {
        let Some(before) = self.file.quota() else {
            return Err(PlaneError::bad(format!(
                "team {:?} was set up without a quota (its streams are not sized): there is nothing to grow",
                self.file.name
            )));
        };
        let desk = desk_disk_bytes.unwrap_or(before.desk_blobs);
        if max_disk_bytes < before.team || desk < before.desk_blobs {
            return Err(PlaneError::bad(format!(
                "team {:?} has a quota of {} MiB, each desk's store {} MiB: a quota or a share only grows (a smaller \
                 one could be below what the streams hold, and the server would refuse every write)",
                self.file.name,
                before.team >> 20,
                before.desk_blobs >> 20
            )));
        }
        Quota::check(max_disk_bytes, desk).map_err(PlaneError::bad)?;
        let after = Quota::of(Some(max_disk_bytes), Some(desk)).ok_or_else(|| PlaneError::bad("no quota"))?;
        let names: std::collections::BTreeSet<&str> =
            self.file.devices.iter().filter(|d| d.role != Role::Service).map(|d| d.name.as_str()).collect();
        if names.len() as u64 > after.desks() {
            return Err(PlaneError::bad(format!(
                "a quota of {} MiB has room for {} desks' stores of {} MiB, and team {:?} has {} names with one",
                max_disk_bytes >> 20,
                after.desks(),
                desk >> 20,
                self.file.name,
                names.len()
            )));
        }
        self.file.max_disk_bytes = Some(max_disk_bytes);
        self.file.desk_disk_bytes = Some(desk);
        self.save()?;
        Ok((after, self.push().err()))
    }

    /// Set the key `device` signs its evidence with (`countersign team key` on it), on
    /// its live record: the team service holds its checkpoints to it from then on (a
    /// reinstalled device, or a key given wrong at enrolment). A desk the team holds for
    /// a checkpoint its old key did not sign is then released to be checked again
    /// (`countersign-team release`). The key it had is returned.
    pub fn set_device_key(&mut self, device: &str, key: &str) -> Result<Option<String>, PlaneError> {
        let key = evidence_key(device, key)?;
        let live = self
            .file
            .devices
            .iter_mut()
            .rev()
            .find(|d| d.name == device && d.revoked_at.is_none())
            .ok_or_else(|| PlaneError::bad(format!("no live device {device:?} in team {:?}", self.file.name)))?;
        let before = live.device_key.replace(key);
        self.save()?;
        Ok(before)
    }

    /// Issue `device`'s credentials again for the key it has, with today's permissions
    /// (a device enrolled before a permission changed holds the old ones): every JWT of
    /// that key issued before now is revoked. The team service's new credentials go to
    /// `service.creds` (restart it); a desk's are returned, for it to `team join` again.
    /// As with a rotation, the error beside it says the server was not told yet.
    pub fn reissue(&mut self, device: &str) -> Result<(Enrollment, Option<PlaneError>), PlaneError> {
        let live = self
            .file
            .devices
            .iter()
            .rposition(|d| d.name == device && d.revoked_at.is_none())
            .ok_or_else(|| PlaneError::bad(format!("no live device {device:?} in team {:?}", self.file.name)))?;
        let record = &self.file.devices[live];
        let (role, key) = (record.role, record.key.clone());
        // The server refuses a JWT issued at or before the revocation's second: the old
        // ones must be from before this second (each issued no later than its record
        // says), the new one from this one on. Issued within this second, wait for the
        // next.
        let floor = (record.enrolled_at.as_second() + 1).max(record.reissued_at.map_or(0, |t| t.as_second() + 2));
        if floor > Timestamp::now().as_second() + 2 {
            return Err(PlaneError::bad(format!(
                "{device:?} was enrolled or issued credentials at a time still to come on this machine's clock: \
                 check the clock before issuing them again"
            )));
        }
        while Timestamp::now().as_second() < floor {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let jwt = self.user_jwt(device, role, &key)?;
        // The revocation's second is the one before the new JWT's own (as it was signed).
        let issued = jwt_issued_at(&jwt)?;
        let cut = Timestamp::from_second(issued - 1).map_err(|e| PlaneError::bad(e.to_string()))?;
        if role == Role::Service {
            let path = self.dir.join("service.creds");
            let text = std::fs::read_to_string(&path).map_err(|e| PlaneError::file(&path, e))?;
            let (_, seed) = parse_creds(&Secret::new(text))?;
            if seed.public_key() != key {
                return Err(PlaneError::bad(format!("{} is not the enrolled service's key", path.display())));
            }
            // Written beside it, then moved over it: never half a file.
            let next = self.dir.join("service.creds.new");
            let _ = std::fs::remove_file(&next);
            write_private(&next, &creds(&jwt, &secret_of(&seed)?))?;
            std::fs::rename(&next, &path).map_err(|e| PlaneError::file(&path, e))?;
        }
        self.file.devices[live].reissued_at = Some(cut);
        self.save()?;
        let enrolled = self.enrollment(device, role, jwt);
        Ok((enrolled, self.push().err()))
    }

    /// Revoke every live key of `device`, and push the account's new JWT to the server
    /// (which drops the device's connections at once). The roll is saved first: a
    /// server that cannot be reached gets the revocation with the next push.
    pub fn revoke(&mut self, device: &str) -> Result<Vec<String>, PlaneError> {
        let keys = self.mark_revoked(device)?;
        self.push()?;
        Ok(keys)
    }

    fn mark_revoked(&mut self, device: &str) -> Result<Vec<String>, PlaneError> {
        let now = Timestamp::now();
        let mut keys = Vec::new();
        for d in self.file.devices.iter_mut().filter(|d| d.name == device && d.revoked_at.is_none()) {
            d.revoked_at = Some(now);
            keys.push(d.key.clone());
        }
        if keys.is_empty() {
            return Err(PlaneError::bad(format!("no live device {device:?} in team {:?}", self.file.name)));
        }
        self.save()?;
        Ok(keys)
    }

    /// Give `device` a new transport key (`key`, made on the device): the old key is
    /// revoked and the new one enrolled with the same role. The enrolment is returned
    /// even when the server could not be told of the revocation (the error beside it):
    /// `team push` tells it later.
    pub fn rotate(&mut self, device: &str, key: &str) -> Result<(Enrollment, Option<PlaneError>), PlaneError> {
        let role = self
            .file
            .devices
            .iter()
            .find(|d| d.name == device && d.revoked_at.is_none())
            .map(|d| d.role)
            .ok_or_else(|| PlaneError::bad(format!("no live device {device:?} in team {:?}", self.file.name)))?;
        if self.file.devices.iter().any(|d| d.key == key) {
            return Err(PlaneError::bad(format!("key {key} was enrolled before: make a new one on the device")));
        }
        // A new transport key; the evidence key it was enrolled with stays its.
        let device_key = self.file.device_key(device).map(str::to_string);
        self.mark_revoked(device)?;
        let enrolled = self.enroll_with(device, role, key, device_key.as_deref())?;
        Ok((enrolled, self.push().err()))
    }

    /// The account's JWT as it stands (JetStream on, the signing key, the revocations).
    fn account_jwt(&self) -> Result<String, PlaneError> {
        let operator = self.seed("operator")?;
        // With a quota, every stream declares its size and none takes more than a
        // quarter (see `crate::quota`).
        let quota = self.file.quota();
        let revocations: serde_json::Map<String, serde_json::Value> = self
            .file
            .devices
            .iter()
            .filter_map(|d| Some((d.key.clone(), json!(d.revoked_at.or(d.reissued_at)?.as_second()))))
            .collect();
        let claims: Account = typed(
            json!({
                "type": "account",
                "version": 2,
                "signing_keys": [self.file.signer],
                "limits": {
                    "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "wildcards": true,
                    "conn": -1, "leaf": -1,
                    "mem_storage": -1,
                    "disk_storage": max_bytes(quota.map(|q| q.team)),
                    "disk_max_stream_bytes": quota.map_or(0, |q| max_bytes(Some(q.per_stream))),
                    "max_bytes_required": quota.is_some(),
                    "streams": -1, "consumer": -1,
                },
                "revocations": revocations,
            }),
            "account",
        )?;
        Ok(Token::new(self.file.account.clone()).name(&self.file.name).claims(claims).sign(&operator))
    }

    /// Send the account's current JWT to the running server (revocations take effect).
    pub fn push(&self) -> Result<(), PlaneError> {
        let jwt = self.account_jwt()?;
        std::fs::write(self.dir.join("jwt").join("team.jwt"), &jwt).map_err(|e| PlaneError::file(&self.dir, e))?;
        let sys = self.seed("sys")?;
        let sys_jwt = self.system_user_jwt(&sys)?;
        let url = self.file.url.clone();
        let err = |message: String| PlaneError::Server { url: url.clone(), message };
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| err(e.to_string()))?;
        runtime.block_on(async {
            let client = crate::link::connect_options(&sys_jwt, sys, "sys")
                .connect(url.as_str())
                .await
                .map_err(|e| err(format!("could not connect as the system user: {e}")))?;
            let reply = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                client.request("$SYS.REQ.CLAIMS.UPDATE", jwt.into_bytes().into()),
            )
            .await
            .map_err(|_| err("no answer to the account update".into()))?
            .map_err(|e| err(format!("the account update: {e}")))?;
            let answer: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap_or_default();
            if let Some(e) = answer.get("error") {
                return Err(err(format!("the server refused the account update: {e}")));
            }
            Ok(())
        })
    }

    fn system_user_jwt(&self, sys_user: &KeyPair) -> Result<String, PlaneError> {
        let system = self.seed("system")?;
        let claims: User = typed(
            json!({"type": "user", "version": 2, "bearer_token": false, "subs": -1, "data": -1, "payload": -1}),
            "system user",
        )?;
        Ok(Token::new(sys_user.public_key()).name("sys").claims(claims).sign(&system))
    }

    fn write_server_config(&self, options: &InitOptions, system: &KeyPair) -> Result<(), PlaneError> {
        let operator = self.seed("operator")?;
        let op_claims: Operator =
            typed(json!({"type": "operator", "version": 2, "system_account": self.file.system_account}), "operator")?;
        let operator_jwt = Token::new(operator.public_key()).name(&self.file.name).claims(op_claims).sign(&operator);
        let sys_claims: Account = typed(
            json!({"type": "account", "version": 2, "limits": {"mem_storage": 0, "disk_storage": 0}}),
            "system account",
        )?;
        let system_jwt = Token::new(system.public_key()).name("SYS").claims(sys_claims).sign(&operator);
        let team_jwt = self.account_jwt()?;
        let tls = match &options.tls {
            Some((cert, key)) => format!(
                "tls {{\n  cert_file: {}\n  key_file: {}\n}}\n",
                json!(cert.display().to_string()),
                json!(key.display().to_string())
            ),
            None => String::new(),
        };
        let dir = &self.dir;
        let conf = format!(
            "# The team {name}'s NATS server (made by `countersign team init`; public data only).\n\
             # Start it with: nats-server -c nats-server.conf\n\
             server_name: {name}\n\
             listen: {listen}\n\
             operator: {operator_jwt}\n\
             system_account: {system}\n\
             resolver: {{\n  type: full\n  dir: {jwt_dir}\n  allow_delete: false\n  interval: \"2m\"\n  timeout: \"1.9s\"\n}}\n\
             resolver_preload: {{\n  {system}: {system_jwt}\n  {account}: {team_jwt}\n}}\n\
             jetstream: {{\n  store_dir: {js_dir}\n  sync_interval: always\n}}\n\
             # A team view's answer carries a screenshot; the default is 1 MiB.\n\
             max_payload: 8MB\n\
             {tls}",
            name = self.file.name,
            listen = json!(std::net::SocketAddr::new(options.host, options.port).to_string()),
            operator_jwt = json!(operator_jwt),
            system = self.file.system_account,
            system_jwt = json!(system_jwt),
            account = self.file.account,
            team_jwt = json!(team_jwt),
            jwt_dir = json!(dir.join("jwt").display().to_string()),
            js_dir = json!(dir.join("jetstream").display().to_string()),
        );
        let path = dir.join("nats-server.conf");
        std::fs::write(&path, conf).map_err(|e| PlaneError::file(&path, e))
    }
}

/// A NATS credentials text (a user JWT and its seed), as `nats` tools read them.
pub fn creds(jwt: &str, seed: &Secret) -> Secret {
    Secret::new(format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
        seed.expose()
    ))
}

/// Read a credentials text back into its JWT and key pair.
pub fn parse_creds(text: &Secret) -> Result<(String, KeyPair), PlaneError> {
    let mut blocks = text.expose().lines().filter(|l| !l.trim().is_empty() && !l.starts_with('-'));
    let jwt = blocks.next().ok_or_else(|| PlaneError::bad("a credentials file without a JWT"))?.trim().to_string();
    let seed = blocks.next().ok_or_else(|| PlaneError::bad("a credentials file without a seed"))?.trim();
    let kp = KeyPair::from_seed(seed).map_err(|e| PlaneError::bad(format!("a credentials file's seed: {e}")))?;
    Ok((jwt, kp))
}

/// The second a JWT says it was issued at (its `iat`).
fn jwt_issued_at(jwt: &str) -> Result<i64, PlaneError> {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).ok_or_else(|| PlaneError::bad("a JWT without a payload"))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|e| PlaneError::bad(format!("a JWT's payload: {e}")))?;
    let claims: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| PlaneError::bad(format!("a JWT's payload: {e}")))?;
    claims.get("iat").and_then(serde_json::Value::as_i64).ok_or_else(|| PlaneError::bad("a JWT without an issue time"))
}

/// A device's evidence key as given (64 hex digits), in its canonical form.
fn evidence_key(device: &str, key: &str) -> Result<String, PlaneError> {
    countersign_trust::keys::PublicKey::from_hex(key, device).map(|p| p.to_hex()).map_err(|e| {
        PlaneError::bad(format!(
            "{key:?} is not a device evidence key (64 hex digits; the device prints its own with `countersign team \
             key`): {e}"
        ))
    })
}

fn write_private(path: &Path, secret: &Secret) -> Result<(), PlaneError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path).map_err(|e| PlaneError::file(path, e))?;
    f.write_all(secret.expose().as_bytes()).map_err(|e| PlaneError::file(path, e))
}

/// A device's transport key pair in its keyring (slot `team-transport`), made on
/// first use. Only its public half ever leaves the device.
pub fn device_transport_key(keyring: &KeyringStore) -> Result<KeyPair, PlaneError> {
    const SLOT: &str = "team-transport";
    if let Some(seed) = keyring.get_key(SLOT)? {
        return keypair(&seed, "the device's transport key");
    }
    let kp = KeyPair::new_user();
    keyring.set_key(SLOT, &secret_of(&kp)?)?;
    Ok(kp)
}

/// Replace the device's transport key with a fresh one (for `team rotate`): the old
/// one stops working once the admin revokes it.
pub fn new_device_transport_key(keyring: &KeyringStore) -> Result<KeyPair, PlaneError> {
    let kp = KeyPair::new_user();
    keyring.set_key("team-transport", &secret_of(&kp)?)?;
    Ok(kp)
}
