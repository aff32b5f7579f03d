//! Names on the team's server, and what each role may publish and subscribe to. The
//! server enforces these (they are in each device's user JWT); the engine's signature
//! checks are the second wall.

use serde::{Deserialize, Serialize};

use crate::PlaneError;

/// The key-value bucket of pauses, supervisor steps' requests and their answers, and the
/// lease. One bucket on purpose: a watch of it that died silently shows up as a stale
/// lease.
pub const CONTROL_BUCKET: &str = "cs_control";
/// The stream behind it.
pub const CONTROL_STREAM: &str = "KV_cs_control";

/// The key-value bucket of supervisor steps' requests (`request.<device>.<id>`): they carry
/// the customer's words, so only leads (and the service) may read it; every desk may put
/// its own.
pub const REQUESTS_BUCKET: &str = "cs_requests";
/// The stream behind it.
pub const REQUESTS_STREAM: &str = "KV_cs_requests";

/// The bucket a key of the team's lives in: requests in [`REQUESTS_BUCKET`], everything
/// else in [`CONTROL_BUCKET`].
pub fn bucket_of_key(key: &str) -> &'static str {
    if key.starts_with("request.") { REQUESTS_BUCKET } else { CONTROL_BUCKET }
}

/// The prefix of the team service's witnessed checkpoint of a desk (`witness.<device>`).
pub const WITNESS_KEY_PREFIX: &str = "witness.";

/// The object store of signed policy packs.
pub const PACKS_BUCKET: &str = "cs_packs";

/// A desk's object store of the blobs its evidence names (screenshots, page
/// snapshots), by hash: one per desk, so no desk can touch another's.
pub fn blobs_bucket_of(device: &str) -> String {
    format!("cs_blobs_{device}")
}

/// The stream every desk's evidence goes to, one subject per desk.
pub const EVIDENCE_STREAM: &str = "CS_EVIDENCE";

/// A desk's evidence subject.
pub fn evidence_subject(device: &str) -> String {
    format!("cs.evidence.{device}")
}

/// Where a lead's desk asks the team service for its team view (request / reply): the
/// server lets each lead's desk publish only its own, so the service knows which desk
/// asks.
pub fn view_subject(device: &str) -> String {
    format!("cs.view.{device}")
}

/// A device's role in the team.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A frontline agent's desktop: hears the team, sets nothing for it.
    Agent,
    /// A team lead's desktop: sets and clears pauses for the team.
    Lead,
    /// The admin's desktop: what a lead may, and (later) publishes packs.
    Admin,
    /// The team service: publishes the lease, owns the buckets.
    Service,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Agent, Role::Lead, Role::Admin, Role::Service];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Lead => "lead",
            Role::Admin => "admin",
            Role::Service => "service",
        }
    }

    pub fn parse(text: &str) -> Result<Role, PlaneError> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == text)
            .ok_or_else(|| PlaneError::bad(format!("{text:?} is not a team role (agent, lead, admin, service)")))
    }

    /// The policy role a desktop enrolled with this role works in (an admin's desk
    /// countersigns as a lead does).
    pub fn policy_role(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Lead | Role::Admin => "team_lead",
            Role::Service => "service",
        }
    }
}

/// A device name: it becomes part of subjects, so letters, digits, `-` and `_` only.
pub fn check_device_name(name: &str) -> Result<(), PlaneError> {
    let ok =
        !name.is_empty() && name.len() <= 48 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(PlaneError::bad(format!(
            "device name {name:?}: use 1 to 48 letters, digits, '-' or '_' (it becomes part of the device's subjects)"
        )))
    }
}

/// The inbox prefix of a device: replies to it (JetStream's answers) come only there.
pub fn inbox_prefix(device: &str) -> String {
    format!("_INBOX_{device}")
}

/// What a device of `role` may publish and subscribe to.
pub fn permissions(role: Role, device: &str) -> (Vec<String>, Vec<String>) {
    let s = CONTROL_STREAM;
    let mut publish = vec![
        "$JS.API.INFO".to_string(),
        format!("$JS.API.STREAM.INFO.{s}"),
        format!("$JS.API.STREAM.MSG.GET.{s}"),
        format!("$JS.API.DIRECT.GET.{s}"),
        format!("$JS.API.DIRECT.GET.{s}.>"),
        format!("$JS.API.CONSUMER.CREATE.{s}"),
        format!("$JS.API.CONSUMER.CREATE.{s}.>"),
        format!("$JS.API.CONSUMER.INFO.{s}.>"),
        format!("$JS.API.CONSUMER.DELETE.{s}.>"),
        "$JS.FC.>".to_string(),
    ];
    // Every desk puts its own supervisor steps' requests (in a bucket only leads read);
    // only leads answer them.
    publish.push(format!("$JS.API.STREAM.INFO.{REQUESTS_STREAM}"));
    publish.push(format!("$KV.{REQUESTS_BUCKET}.request.{device}.>"));
    // What it runs (policy and pack), for the leads.
    publish.push(format!("$KV.{CONTROL_BUCKET}.desk.{device}"));
    // Reading the signed packs the admin publishes.
    let packs = format!("OBJ_{PACKS_BUCKET}");
    for api in ["STREAM.INFO", "STREAM.MSG.GET", "DIRECT.GET", "CONSUMER.CREATE", "CONSUMER.INFO", "CONSUMER.DELETE"] {
        publish.push(format!("$JS.API.{api}.{packs}"));
        publish.push(format!("$JS.API.{api}.{packs}.>"));
    }
    // The blobs its evidence names, in its own store (the team service makes it, with
    // the desk's share of the quota: a desk cannot size its own). Reading its own
    // store's last entries is how a put checks for an object already there: without it
    // every put waits out a request timeout.
    let blobs = blobs_bucket_of(device);
    for api in ["STREAM.INFO", "STREAM.MSG.GET", "DIRECT.GET"] {
        publish.push(format!("$JS.API.{api}.OBJ_{blobs}"));
    }
    publish.push(format!("$JS.API.DIRECT.GET.OBJ_{blobs}.>"));
    publish.push(format!("$O.{blobs}.>"));
    // Its own evidence, and the last of it the team holds; nobody else's.
    publish.push(evidence_subject(device));
    publish.push(format!("$JS.API.DIRECT.GET.{EVIDENCE_STREAM}.{}", evidence_subject(device)));
    // A lead's desk reads every desk's requests (a watch, as of the control bucket).
    let read_requests = |publish: &mut Vec<String>| {
        let r = REQUESTS_STREAM;
        for api in ["STREAM.MSG.GET", "DIRECT.GET", "CONSUMER.CREATE", "CONSUMER.INFO", "CONSUMER.DELETE"] {
            publish.push(format!("$JS.API.{api}.{r}"));
            publish.push(format!("$JS.API.{api}.{r}.>"));
        }
    };
    match role {
        Role::Agent => {}
        Role::Lead => {
            read_requests(&mut publish);
            publish.push(view_subject(device));
            publish.push(format!("$KV.{CONTROL_BUCKET}.pause.>"));
            publish.push(format!("$KV.{CONTROL_BUCKET}.answer.>"));
        }
        Role::Admin => {
            read_requests(&mut publish);
            publish.push(view_subject(device));
            publish.push(format!("$KV.{CONTROL_BUCKET}.pause.>"));
            publish.push(format!("$KV.{CONTROL_BUCKET}.answer.>"));
            // Only the admin publishes packs.
            publish.push(format!("$KV.{CONTROL_BUCKET}.pack"));
            publish.push(format!("$O.{PACKS_BUCKET}.>"));
            publish.push(format!("$JS.API.STREAM.PURGE.OBJ_{PACKS_BUCKET}"));
        }
        Role::Service => {
            // The team's own component: it makes and reads every stream and store (the
            // evidence, every desk's blobs, the packs) and alone writes the lease.
            publish.push(format!("$KV.{CONTROL_BUCKET}.lease"));
            // Its co-signatures of each desk's verified checkpoints.
            publish.push(format!("$KV.{CONTROL_BUCKET}.{WITNESS_KEY_PREFIX}>"));
            publish.push("$JS.API.>".to_string());
            publish.push("$JS.ACK.>".to_string());
        }
    }
    let mut subscribe = vec![format!("{}.>", inbox_prefix(device))];
    if role == Role::Service {
        // It answers the leads' team views (its answers go to the asker's inbox under
        // the server's response permission, see `authority::enroll`).
        subscribe.push(view_subject("*"));
    }
    (publish, subscribe)
}
