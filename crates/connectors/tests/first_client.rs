//! The HTTP connector's client is the first TLS-capable thing a process builds.
//!
//! `reqwest` is built without a crypto provider of its own and panics when a client is
//! built before one is installed (`countersign-http` installs ring first). In the app or
//! the CLI nothing else installs one beforehand, so this runs in a process of its own (an
//! integration test binary is one; in `tests/connectors.rs` another test could install it
//! first and hide a panic) and does exactly what they do: build the connector, call it.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use countersign_connectors::catalog::Catalog;
use countersign_connectors::credentials::{CredentialError, CredentialName, CredentialStore, Secret};
use countersign_connectors::{Connector, HttpConnector};
use countersign_demo_store::{ApiToken, BackgroundServer, DEFAULT_SEED_DIR};
use serde_json::{Map, Value, json};

const TOKEN: &str = "tok-first-client-4c1e";

/// One token for every name (this test is about TLS, not the keyring).
#[derive(Debug)]
struct OneToken;

impl CredentialStore for OneToken {
    fn get(&self, _: &CredentialName) -> Result<Secret, CredentialError> {
        Ok(Secret::new(TOKEN))
    }
    fn set(&self, _: &CredentialName, _: &Secret) -> Result<(), CredentialError> {
        Err(CredentialError::Unavailable("read-only in this test".into()))
    }
    fn delete(&self, _: &CredentialName) -> Result<(), CredentialError> {
        Err(CredentialError::Unavailable("read-only in this test".into()))
    }
    fn list(&self) -> Result<Vec<CredentialName>, CredentialError> {
        Ok(Vec::new())
    }
}

#[test]
fn the_http_connector_builds_its_client_and_calls_first_thing_in_a_process() {
    let dir = tempfile::tempdir().unwrap();
    let server = BackgroundServer::start(
        dir.path().join("demo-store.sqlite3"),
        DEFAULT_SEED_DIR.into(),
        ApiToken::new(TOKEN).unwrap(),
    )
    .unwrap();
    assert!(
        rustls::crypto::CryptoProvider::get_default().is_none(),
        "nothing may install a crypto provider before the connector, or this test proves nothing"
    );

    let catalog = Catalog::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/demo/catalog.toml")).unwrap();
    let connector = HttpConnector::new(catalog, Arc::new(OneToken))
        .expect("the connector's HTTP client builds before any crypto provider was installed")
        .with_base_url(&server.url())
        .unwrap();
    let params: Map<String, Value> = json!({"order_id": "#W2611340"}).as_object().unwrap().clone();
    let order = connector.call("get_order_details", &params, None).unwrap();
    assert_eq!(order.status, 200);
    assert_eq!(order.response["customer_id"], "james_li_5688", "the call reached the store on loopback");
    assert!(rustls::crypto::CryptoProvider::get_default().is_some(), "building the client installed the provider");
}
