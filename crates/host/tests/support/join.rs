//! Joining a real desk to a test team as the faces join one: enrolled by the team's
//! authority with its transport key from `keys`, the enrolment kept with
//! `host::team::join_with`, its engine opened and connected with
//! `host::team::connect_with`, and the control bucket read once. Shared by the team
//! tests and the team bench (`#[path]`), so both join a desk the same way.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use countersign_connectors::credentials::KeyringStore;
use countersign_core::model::Operator;
use countersign_engine::{Clock, Engine, EngineOptions};
use countersign_plane::link::TeamLink;
use countersign_plane::subjects::Role;
use countersign_test_support::nats::TeamPlane;

/// A joined desk: its engine, its link, and the folder holding its data.
pub struct Joined {
    pub engine: Engine,
    pub link: Arc<TeamLink>,
    pub data: tempfile::TempDir,
}

/// Enrol `device` as `role` in `plane`'s team, with the key it signs its evidence with,
/// and join a desk of `workspace` to it, its seat claiming `operator` (id, role; the
/// enrolment's role wins), having read the control bucket (within 30 s).
pub fn join(
    plane: &mut TeamPlane,
    workspace: &Path,
    keys: &KeyringStore,
    device: &str,
    role: Role,
    operator: (&str, &str),
    clock: Arc<dyn Clock>,
) -> Joined {
    // The engine signs with this process's device key (`countersign_engine::checkpoints`).
    let own = countersign_engine::device::device_key(&countersign_engine::credentials::keyring()).unwrap();
    join_as(plane, workspace, keys, (device, role, &own.public("").to_hex()), operator, clock)
}

/// [`join`], the device enrolled with `device_key` as its evidence key (whatever key it
/// really signs with).
pub fn join_as(
    plane: &mut TeamPlane,
    workspace: &Path,
    keys: &KeyringStore,
    (device, role, device_key): (&str, Role, &str),
    operator: (&str, &str),
    clock: Arc<dyn Clock>,
) -> Joined {
    let transport = countersign_plane::authority::device_transport_key(keys).unwrap();
    let enrolled = plane.authority.enroll_with(device, role, &transport.public_key(), Some(device_key)).unwrap();
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("enrollment.toml");
    std::fs::write(&file, toml::to_string(&enrolled).unwrap()).unwrap();
    let data_dir = data.path().join("data");
    countersign_host::team::join_with(&data_dir, &file, keys).unwrap();
    let enrolled = countersign_host::team::enrollment(&data_dir).unwrap().expect("joined");
    let mut engine = Engine::open(
        EngineOptions {
            workspace: workspace.to_path_buf(),
            data_dir,
            operator: Some(Operator { id: operator.0.into(), role: operator.1.into() }),
            connector: None,
        },
        clock,
    )
    .unwrap();
    let link = countersign_host::team::connect_with(&mut engine, &enrolled, Some(&plane.url()), keys).unwrap();
    assert!(countersign_host::team::catch_up(&engine, &link, Duration::from_secs(30)), "{device} read the bucket");
    Joined { engine, link, data }
}
