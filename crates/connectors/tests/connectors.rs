//! Connectors against real parts: the snapshot connector over the shipped demo
//! data, and credentials in the real OS keyring (Secret Service; in CI a
//! gnome-keyring inside `dbus-run-session`, see scripts/test.sh).
#![allow(clippy::unwrap_used)]

use std::path::Path;

use countersign_connectors::Connector;
use countersign_connectors::credentials::{CredentialError, CredentialName, CredentialStore, KeyringStore, Secret};
use countersign_connectors::snapshot::SnapshotConnector;

#[test]
fn snapshot_reads_orders_exactly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/demo-store");
    let c = SnapshotConnector::load(&dir).unwrap();
    assert_eq!(c.len(), 1000);
    let o = c.order_facts("#W2611340").unwrap().unwrap();
    assert_eq!(o.customer_id, "james_li_5688");
    assert_eq!(o.status, "processed");
    assert_eq!(o.paid.to_string(), "536.65", "amounts are read exactly from the JSON text");
    assert!(c.order_facts("#W0").unwrap().is_none());
}

#[test]
fn snapshot_reports_malformed_data() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("orders.json"), "{\"#W1\": {\"order_id\": 5}}").unwrap();
    let err = SnapshotConnector::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("orders.json") && err.contains("malformed"), "{err}");
    let missing = SnapshotConnector::load(&dir.path().join("nope")).unwrap_err().to_string();
    assert!(missing.contains("nope/orders.json"), "{missing}");
}

#[test]
fn keyring_set_get_list_delete() {
    let store = KeyringStore::new(format!("countersign-test-{}", std::process::id()));
    let name = CredentialName::new("demo_seller_center", "acme-us").unwrap();
    let other = CredentialName::new("tiktok_shop", "acme-us").unwrap();

    match store.get(&name) {
        Err(CredentialError::Missing { .. }) => {}
        other => panic!("a credential never set must be CredentialMissing, got {other:?}"),
    }
    store.set(&name, &Secret::new("tok-planted-7f3a")).unwrap();
    store.set(&other, &Secret::new("tok-other")).unwrap();
    assert_eq!(store.get(&name).unwrap().expose(), "tok-planted-7f3a", "read back from the OS keyring");
    assert_eq!(store.list().unwrap(), vec![name.clone(), other.clone()], "list shows names");

    store.set(&name, &Secret::new("tok-rotated")).unwrap();
    assert_eq!(store.get(&name).unwrap().expose(), "tok-rotated", "setting again replaces the value");

    store.delete(&name).unwrap();
    store.delete(&other).unwrap();
    assert!(matches!(store.get(&name), Err(CredentialError::Missing { .. })));
    assert!(matches!(store.delete(&name), Err(CredentialError::Missing { .. })), "deleting twice is an error");
    assert!(store.list().unwrap().is_empty());
    assert!(matches!(store.set(&name, &Secret::new("  ")), Err(CredentialError::EmptyValue)));
    assert!(CredentialName::new("demo", "acme us").is_err(), "names are checked");
}
