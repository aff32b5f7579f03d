//! Platform credentials in the OS keyring.
//!
//! A credential is read at call time and held in a [`Secret`], whose `Debug` and
//! `Display` print `[redacted]`, which has no `Serialize` (so it cannot end up in
//! evidence, exports or JSON output) and which is zeroed when dropped.
//!
//! The keyring cannot enumerate its entries, so the store keeps an index of the
//! credential *names* (never values) in one more keyring entry. The keyring
//! service name is injectable, so tests use their own namespace.

use std::collections::BTreeSet;
use std::fmt;

use zeroize::Zeroizing;

/// A secret value. Never printed, never serialised.
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(Zeroizing::new(value.into()))
    }

    /// The value, for the one place that must send it (an `Authorization` header).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Which credential: one per platform and store.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct CredentialName {
    pub platform: String,
    pub store: String,
}

impl CredentialName {
    pub fn new(platform: &str, store: &str) -> Result<CredentialName, CredentialError> {
        let ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if ok(platform) && ok(store) {
            Ok(CredentialName { platform: platform.into(), store: store.into() })
        } else {
            Err(CredentialError::BadName(format!("{platform}/{store}")))
        }
    }

    /// `PLATFORM/STORE` as written in configuration.
    pub fn parse(text: &str) -> Result<CredentialName, CredentialError> {
        let (platform, store) = text.split_once('/').ok_or_else(|| CredentialError::BadName(text.to_owned()))?;
        CredentialName::new(platform, store)
    }

    fn user(&self) -> String {
        format!("{}/{}", self.platform, self.store)
    }
}

impl fmt::Display for CredentialName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.platform, self.store)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("no credential for {name}: set one with `countersign credentials set {}/{}`", name.platform, name.store)]
    Missing { name: CredentialName },
    #[error("credential name {0:?} must be PLATFORM/STORE with letters, digits, '-', '_' or '.'")]
    BadName(String),
    #[error("a credential value must not be empty")]
    EmptyValue,
    #[error("the OS keyring is not available: {0}")]
    Unavailable(String),
}

/// Where credentials live.
pub trait CredentialStore: Send + Sync + fmt::Debug {
    fn get(&self, name: &CredentialName) -> Result<Secret, CredentialError>;
    fn set(&self, name: &CredentialName, value: &Secret) -> Result<(), CredentialError>;
    fn delete(&self, name: &CredentialName) -> Result<(), CredentialError>;
    /// The names of the stored credentials (never their values).
    fn list(&self) -> Result<Vec<CredentialName>, CredentialError>;
}

/// The OS keyring (Secret Service on Linux, Keychain on macOS, Credential Manager on Windows).
#[derive(Debug, Clone)]
pub struct KeyringStore {
    service: String,
}

const INDEX_USER: &str = "_index";

impl KeyringStore {
    /// `service` namespaces the entries (the app uses `countersign`; tests their own).
    pub fn new(service: impl Into<String>) -> KeyringStore {
        KeyringStore { service: service.into() }
    }

    fn entry(&self, user: &str) -> Result<keyring::Entry, CredentialError> {
        keyring::Entry::new(&self.service, user).map_err(|e| CredentialError::Unavailable(e.to_string()))
    }

    fn index(&self) -> Result<BTreeSet<CredentialName>, CredentialError> {
        match self.entry(INDEX_USER)?.get_password() {
            Ok(text) => Ok(serde_json::from_str(&text).unwrap_or_default()),
            Err(keyring::Error::NoEntry) => Ok(BTreeSet::new()),
            Err(e) => Err(CredentialError::Unavailable(e.to_string())),
        }
    }

    fn save_index(&self, index: &BTreeSet<CredentialName>) -> Result<(), CredentialError> {
        let text = serde_json::to_string(index).map_err(|e| CredentialError::Unavailable(e.to_string()))?;
        self.entry(INDEX_USER)?.set_password(&text).map_err(|e| CredentialError::Unavailable(e.to_string()))
    }
}

/// Signing keys (an admin's pack-signing key, this installation's device key) live in the
/// same keyring service under their own entries, `key:<slot>`, outside the credential
/// index: `credentials list` never shows them and a credential name cannot reach them.
impl KeyringStore {
    fn key_entry(&self, slot: &str) -> Result<keyring::Entry, CredentialError> {
        let ok = !slot.is_empty()
            && slot.len() <= 64
            && slot.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            return Err(CredentialError::BadName(format!("key:{slot}")));
        }
        self.entry(&format!("key:{slot}"))
    }

    /// The secret stored in key slot `slot`, if any.
    pub fn get_key(&self, slot: &str) -> Result<Option<Secret>, CredentialError> {
        match self.key_entry(slot)?.get_password() {
            Ok(v) => Ok(Some(Secret::new(v))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(CredentialError::Unavailable(e.to_string())),
        }
    }

    /// Store a secret in key slot `slot` (replacing what was there).
    pub fn set_key(&self, slot: &str, value: &Secret) -> Result<(), CredentialError> {
        if value.expose().trim().is_empty() {
            return Err(CredentialError::EmptyValue);
        }
        self.key_entry(slot)?.set_password(value.expose()).map_err(|e| CredentialError::Unavailable(e.to_string()))
    }

    /// Delete key slot `slot`; `false` if it was empty.
    pub fn delete_key(&self, slot: &str) -> Result<bool, CredentialError> {
        match self.key_entry(slot)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring::Error::NoEntry) => Ok(false),
            Err(e) => Err(CredentialError::Unavailable(e.to_string())),
        }
    }
}

impl CredentialStore for KeyringStore {
    fn get(&self, name: &CredentialName) -> Result<Secret, CredentialError> {
        match self.entry(&name.user())?.get_password() {
            Ok(v) => Ok(Secret::new(v)),
            Err(keyring::Error::NoEntry) => Err(CredentialError::Missing { name: name.clone() }),
            Err(e) => Err(CredentialError::Unavailable(e.to_string())),
        }
    }

    fn set(&self, name: &CredentialName, value: &Secret) -> Result<(), CredentialError> {
        if value.expose().trim().is_empty() {
            return Err(CredentialError::EmptyValue);
        }
        self.entry(&name.user())?
            .set_password(value.expose())
            .map_err(|e| CredentialError::Unavailable(e.to_string()))?;
        let mut index = self.index()?;
        if index.insert(name.clone()) {
            self.save_index(&index)?;
        }
        Ok(())
    }

    fn delete(&self, name: &CredentialName) -> Result<(), CredentialError> {
        match self.entry(&name.user())?.delete_credential() {
            Ok(()) => {}
            Err(keyring::Error::NoEntry) => return Err(CredentialError::Missing { name: name.clone() }),
            Err(e) => return Err(CredentialError::Unavailable(e.to_string())),
        }
        let mut index = self.index()?;
        if index.remove(name) {
            self.save_index(&index)?;
        }
        Ok(())
    }

    fn list(&self) -> Result<Vec<CredentialName>, CredentialError> {
        Ok(self.index()?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2-planted");
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
    }
}

/// One credential held in this process's memory only: the token of a platform this
/// process started itself (the demo seller center on loopback). It is made fresh at
/// start, never written anywhere, and dropped (zeroised) with the process.
#[derive(Debug)]
pub struct ProcessCredential {
    name: CredentialName,
    value: Secret,
}

impl ProcessCredential {
    pub fn new(name: CredentialName, value: Secret) -> ProcessCredential {
        ProcessCredential { name, value }
    }

    /// The one name it answers for.
    pub fn name(&self) -> &CredentialName {
        &self.name
    }
}

impl CredentialStore for ProcessCredential {
    fn get(&self, name: &CredentialName) -> Result<Secret, CredentialError> {
        if *name == self.name {
            Ok(Secret::new(self.value.expose()))
        } else {
            Err(CredentialError::Missing { name: name.clone() })
        }
    }

    fn set(&self, _name: &CredentialName, _value: &Secret) -> Result<(), CredentialError> {
        Err(CredentialError::Unavailable(
            "this credential belongs to a platform the process started; it cannot be changed".into(),
        ))
    }

    fn delete(&self, name: &CredentialName) -> Result<(), CredentialError> {
        self.set(name, &Secret::new(""))
    }

    fn list(&self) -> Result<Vec<CredentialName>, CredentialError> {
        Ok(vec![self.name.clone()])
    }
}
