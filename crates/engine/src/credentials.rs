//! Platform credentials: set, delete and list names in the OS keyring.
//! Values go in and never come out through this API (only connectors read them,
//! at call time).

use countersign_connectors::credentials::{CredentialError, CredentialName, CredentialStore, KeyringStore, Secret};

use crate::EngineError;

/// The keyring namespace: `$COUNTERSIGN_KEYRING_SERVICE`, else `countersign`.
pub fn keyring() -> KeyringStore {
    KeyringStore::new(std::env::var("COUNTERSIGN_KEYRING_SERVICE").unwrap_or_else(|_| "countersign".into()))
}

/// Parse `PLATFORM/STORE`.
pub fn parse_name(text: &str) -> Result<CredentialName, EngineError> {
    let (platform, store) = text.split_once('/').ok_or_else(|| EngineError::BadInput {
        message: format!("credential name {text:?} must be PLATFORM/STORE, e.g. demo_seller_center/acme-us"),
    })?;
    Ok(CredentialName::new(platform, store)?)
}

pub fn set(store: &dyn CredentialStore, name: &str, value: Secret) -> Result<CredentialName, EngineError> {
    let name = parse_name(name)?;
    store.set(&name, &value)?;
    Ok(name)
}

pub fn delete(store: &dyn CredentialStore, name: &str) -> Result<CredentialName, EngineError> {
    let name = parse_name(name)?;
    store.delete(&name)?;
    Ok(name)
}

pub fn list(store: &dyn CredentialStore) -> Result<Vec<CredentialName>, EngineError> {
    Ok(store.list()?)
}

impl From<CredentialError> for EngineError {
    fn from(e: CredentialError) -> EngineError {
        EngineError::Credential(e)
    }
}
