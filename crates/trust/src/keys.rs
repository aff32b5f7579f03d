//! Ed25519 keys: an admin's signing key, the public keys an installation trusts, and
//! detached signatures over a domain-separated SHA-256 digest.
//!
//! Text formats (one line each; `#` starts a comment line):
//!
//! ```text
//! countersign-ed25519-public-key <64 hex: the 32-byte public key> [label]
//! countersign-ed25519-secret-key <64 hex: the 32-byte seed>
//! ```
//!
//! A key's id is the first 16 hex digits of SHA-256 of its public key bytes. The message
//! signed is always `domain || 0x0a || SHA-256(content)`, where `domain` names what is signed
//! (`countersign/policy-pack/v1`, `countersign/release/v1`, `countersign/checkpoint/v1`), so
//! a signature made for one kind of thing can never be passed off as another.
//!
//! Private keys live in the OS keyring (key slot `admin-<name>`, see
//! [`countersign_connectors::credentials::KeyringStore::set_key`]) or in a file the admin
//! chooses (created with mode 0600, never overwritten). They are never printed, logged or
//! recorded as evidence.

use std::path::Path;

use countersign_connectors::credentials::KeyringStore;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::{Secret, TrustError};

/// First word of a public key line.
pub const PUBLIC_KEY_TAG: &str = "countersign-ed25519-public-key";
/// First word of a secret key line.
pub const SECRET_KEY_TAG: &str = "countersign-ed25519-secret-key";

/// A public key and its id.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
    /// Free text after the key on its line (or the file it came from).
    pub label: String,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({} {})", self.id(), self.label)
    }
}

impl PublicKey {
    pub fn from_bytes(bytes: &[u8; 32], label: impl Into<String>) -> Result<PublicKey, String> {
        let key = VerifyingKey::from_bytes(bytes).map_err(|e| format!("not an ed25519 public key: {e}"))?;
        Ok(PublicKey { key, label: label.into() })
    }

    /// Parse 64 hex digits.
    pub fn from_hex(hex_text: &str, label: impl Into<String>) -> Result<PublicKey, String> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_text, &mut bytes).map_err(|_| "a public key is 64 hex digits".to_string())?;
        PublicKey::from_bytes(&bytes, label)
    }

    /// The first 16 hex digits of SHA-256 of the key bytes.
    pub fn id(&self) -> String {
        key_id(self.key.as_bytes())
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.key.as_bytes())
    }

    /// `countersign-ed25519-public-key <hex> <label>`.
    pub fn to_line(&self) -> String {
        let label = self.label.replace(['\n', '\r'], " ");
        if label.is_empty() {
            format!("{PUBLIC_KEY_TAG} {}", self.to_hex())
        } else {
            format!("{PUBLIC_KEY_TAG} {} {label}", self.to_hex())
        }
    }

    /// Check `signature` over (`domain`, `digest`) with this key (strict verification:
    /// no malleable or small-order encodings).
    pub fn verify(&self, domain: &str, digest: &[u8; 32], signature: &[u8; 64]) -> bool {
        self.key.verify_strict(&message(domain, digest), &Signature::from_bytes(signature)).is_ok()
    }

    /// The key's 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.key.as_bytes()
    }

    /// Check `signature` over `message` itself (strict), for formats that sign their own
    /// text (a signed note names what it signs on its first line).
    pub(crate) fn verify_raw(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        self.key.verify_strict(message, &Signature::from_bytes(signature)).is_ok()
    }

    /// Parse every public key line of `text` (one or more; comment and blank lines skipped).
    /// Errors are `file:line:column`.
    pub fn parse_all(file: &str, text: &str) -> Result<Vec<PublicKey>, String> {
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let at = |col: usize, m: &str| format!("{file}:{}:{col}: {m}", i + 1);
            let mut words = trimmed.splitn(3, char::is_whitespace);
            let tag = words.next().unwrap_or_default();
            if tag != PUBLIC_KEY_TAG {
                let hint = if tag == SECRET_KEY_TAG { " (this is a SECRET key: never share or bundle it)" } else { "" };
                return Err(at(1, &format!("expected `{PUBLIC_KEY_TAG} <64 hex> [label]`{hint}")));
            }
            let hex_text = words.next().unwrap_or_default();
            let col = line.find(hex_text).map_or(1, |c| c + 1);
            let label = words.next().unwrap_or_default().trim().to_string();
            out.push(PublicKey::from_hex(hex_text, label).map_err(|m| at(col, &m))?);
        }
        if out.is_empty() {
            return Err(format!("{file}: no `{PUBLIC_KEY_TAG}` line"));
        }
        Ok(out)
    }
}

/// The id of a raw public key.
pub fn key_id(public: &[u8; 32]) -> String {
    hex::encode(&Sha256::digest(public)[..8])
}

/// The signed message: `domain || '\n' || digest`.
fn message(domain: &str, digest: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(domain.len() + 33);
    m.extend_from_slice(domain.as_bytes());
    m.push(b'\n');
    m.extend_from_slice(digest);
    m
}

/// An ed25519 signing key (zeroed on drop; never printed).
pub struct SecretKey(SigningKey);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({} [redacted])", self.public("").id())
    }
}

impl SecretKey {
    /// A fresh key from the OS's random source.
    pub fn generate() -> Result<SecretKey, TrustError> {
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut_slice())
            .map_err(|e| TrustError::System { message: format!("no randomness for a key: {e}") })?;
        Ok(SecretKey(SigningKey::from_bytes(&seed)))
    }

    pub fn public(&self, label: &str) -> PublicKey {
        PublicKey { key: self.0.verifying_key(), label: label.to_string() }
    }

    /// Sign (`domain`, `digest`).
    pub fn sign(&self, domain: &str, digest: &[u8; 32]) -> [u8; 64] {
        self.0.sign(&message(domain, digest)).to_bytes()
    }

    /// Sign `message` itself (see [`PublicKey::verify_raw`]).
    pub(crate) fn sign_raw(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }

    /// A key from its 32-byte seed.
    pub fn from_seed(seed: &[u8; 32]) -> SecretKey {
        SecretKey(SigningKey::from_bytes(seed))
    }

    /// The secret line, as a [`Secret`] (for the keyring or a key file).
    fn to_secret(&self) -> Secret {
        let seed = zeroize::Zeroizing::new(hex::encode(self.0.to_bytes()));
        Secret::new(format!("{SECRET_KEY_TAG} {}", seed.as_str()))
    }

    fn from_secret(what: &str, secret: &Secret) -> Result<SecretKey, TrustError> {
        let bad = || TrustError::BadInput {
            message: format!("{what}: not a Countersign secret key (`{SECRET_KEY_TAG} <64 hex>`)"),
        };
        let line = secret.expose().lines().find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
        let rest = line.and_then(|l| l.trim().strip_prefix(SECRET_KEY_TAG)).ok_or_else(bad)?;
        let mut seed = zeroize::Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(rest.trim(), seed.as_mut_slice()).map_err(|_| bad())?;
        Ok(SecretKey(SigningKey::from_bytes(&seed)))
    }

    /// Write the key to a new file (mode 0600 on Unix). An existing file is never replaced.
    pub fn write_file(&self, path: &Path) -> Result<(), TrustError> {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(path).map_err(|e| TrustError::io(path, e))?;
        let body = zeroize::Zeroizing::new(format!(
            "# Countersign ed25519 SECRET key {}. Keep it offline; never share or commit it.\n{}\n",
            self.public("").id(),
            self.to_secret().expose()
        ));
        f.write_all(body.as_bytes()).and_then(|()| f.sync_all()).map_err(|e| TrustError::io(path, e))
    }

    pub fn read_file(path: &Path) -> Result<SecretKey, TrustError> {
        let text = Secret::new(std::fs::read_to_string(path).map_err(|e| TrustError::io(path, e))?);
        SecretKey::from_secret(&path.display().to_string(), &text)
    }

    /// Store the key in keyring slot `slot`; refuses to replace a key already there.
    pub fn store_in_keyring(&self, keyring: &KeyringStore, slot: &str) -> Result<(), TrustError> {
        if keyring.get_key(slot)?.is_some() {
            return Err(TrustError::Conflict {
                message: format!("the OS keyring already holds a key named {slot:?}; pick another name"),
            });
        }
        keyring.set_key(slot, &self.to_secret())?;
        Ok(())
    }

    pub fn from_keyring(keyring: &KeyringStore, slot: &str) -> Result<Option<SecretKey>, TrustError> {
        match keyring.get_key(slot)? {
            None => Ok(None),
            Some(s) => SecretKey::from_secret(&format!("keyring key {slot:?}"), &s).map(Some),
        }
    }
}

/// Where an admin's signing key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A secret key file.
    File(std::path::PathBuf),
    /// An admin key in the OS keyring, by name (`countersign admin keygen --name`).
    Keyring(String),
}

/// The keyring slot of admin key `name`.
pub fn admin_slot(name: &str) -> String {
    format!("admin-{name}")
}

impl KeySource {
    /// Read the key (`keyring` is where [`KeySource::Keyring`] looks).
    pub fn load(&self, keyring: &KeyringStore) -> Result<SecretKey, TrustError> {
        match self {
            KeySource::File(p) => SecretKey::read_file(p),
            KeySource::Keyring(name) => SecretKey::from_keyring(keyring, &admin_slot(name))?
                .ok_or_else(|| TrustError::NotFound {
                    message: format!(
                        "no admin key named {name:?} in the OS keyring (make one with `countersign admin keygen --name {name}`)"
                    ),
                }),
        }
    }
}

/// What `admin keygen` made: the public key (the secret went to the keyring or a file).
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeygenReport {
    pub key_id: String,
    pub public_key: String,
    /// The public key line, for `assets/trusted-keys/NAME.pub`.
    pub public_line: String,
    /// Where the secret key went: `keyring:admin-NAME` or the file path.
    pub secret_stored_in: String,
}

/// Make an admin key pair; the secret goes to `dest` (a [`KeySource::Keyring`] name in
/// `keyring`), the public key is returned.
pub fn keygen(dest: &KeySource, label: &str, keyring: &KeyringStore) -> Result<KeygenReport, TrustError> {
    let key = SecretKey::generate()?;
    let stored = match dest {
        KeySource::File(p) => {
            key.write_file(p)?;
            p.display().to_string()
        }
        KeySource::Keyring(name) => {
            let slot = admin_slot(name);
            key.store_in_keyring(keyring, &slot)?;
            format!("keyring:{slot}")
        }
    };
    let public = key.public(label);
    Ok(KeygenReport {
        key_id: public.id(),
        public_key: public.to_hex(),
        public_line: public.to_line(),
        secret_stored_in: stored,
    })
}

/// The public keys an installation trusts to sign packs and releases.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: Vec<PublicKey>,
}

mod bundled {
    // `(file name, contents)` of every `*.pub` in `assets/trusted-keys/` (or the directory
    // `COUNTERSIGN_TRUSTED_KEYS_DIR` named) when this crate was built.
    include!(concat!(env!("OUT_DIR"), "/trusted_keys.rs"));
}

impl TrustedKeys {
    pub fn new(keys: Vec<PublicKey>) -> TrustedKeys {
        TrustedKeys { keys }
    }

    /// The keys this build was installed with (`assets/trusted-keys/*.pub` at build time).
    /// A file that does not parse is skipped here and reported by [`TrustedKeys::bundled_errors`].
    pub fn bundled() -> TrustedKeys {
        let mut keys = Vec::new();
        for (name, text) in bundled::FILES {
            if let Ok(mut k) = PublicKey::parse_all(name, text) {
                for key in &mut k {
                    if key.label.is_empty() {
                        key.label = (*name).to_string();
                    }
                }
                keys.extend(k);
            }
        }
        TrustedKeys { keys }
    }

    /// Problems with the bundled key files (a build with none of them usable trusts nothing).
    pub fn bundled_errors() -> Vec<String> {
        bundled::FILES.iter().filter_map(|(name, text)| PublicKey::parse_all(name, text).err()).collect()
    }

    /// Also trust the keys in `file` (the CLI's `--trust`, for checking before bundling).
    pub fn add_file(&mut self, file: &Path) -> Result<(), TrustError> {
        let text = std::fs::read_to_string(file).map_err(|e| TrustError::io(file, e))?;
        let keys = PublicKey::parse_all(&file.display().to_string(), &text)
            .map_err(|message| TrustError::BadInput { message })?;
        self.keys.extend(keys);
        Ok(())
    }

    pub fn get(&self, id: &str) -> Option<&PublicKey> {
        self.keys.iter().find(|k| k.id() == id)
    }

    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }
}

/// A detached signature file (`pack.sig`, `SHA256SUMS.sig`): which key, what signature.
///
/// ```toml
/// format = "countersign-signature/1"
/// domain = "countersign/policy-pack/v1"
/// key_id = "0123456789abcdef"
/// signature = "<128 hex>"
/// ```
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureFile {
    pub format: String,
    pub domain: String,
    pub key_id: String,
    pub signature: String,
}

/// The `format` of a signature file.
pub const SIGNATURE_FORMAT: &str = "countersign-signature/1";

/// Why a detached signature does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureProblem {
    /// There is no signature file.
    Missing,
    /// The signature file cannot be read as one (`file:line:column: …`).
    Malformed(String),
    /// The key that signed is not one this installation trusts.
    UnknownKey(String),
    /// The signature does not verify with the trusted key it names: the signed content
    /// was changed after signing (or the signature was).
    BadSignature(String),
}

impl SignatureFile {
    pub fn make(domain: &str, digest: &[u8; 32], key: &SecretKey) -> SignatureFile {
        SignatureFile {
            format: SIGNATURE_FORMAT.into(),
            domain: domain.into(),
            key_id: key.public("").id(),
            signature: hex::encode(key.sign(domain, digest)),
        }
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// Read the signature file at `path` and check it signs (`domain`, `digest`) with a
    /// trusted key. Returns the key that signed.
    pub fn check(
        path: &Path,
        domain: &str,
        digest: &[u8; 32],
        trusted: &TrustedKeys,
    ) -> Result<PublicKey, SignatureProblem> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(SignatureProblem::Missing),
            Err(e) => return Err(SignatureProblem::Malformed(format!("{}: {e}", path.display()))),
        };
        let file = path.display().to_string();
        let sig: SignatureFile =
            toml::from_str(&text).map_err(|e| SignatureProblem::Malformed(crate::located_message(&file, &text, &e)))?;
        if sig.format != SIGNATURE_FORMAT {
            return Err(SignatureProblem::Malformed(format!("{file}: unknown format {:?}", sig.format)));
        }
        if sig.domain != domain {
            return Err(SignatureProblem::Malformed(format!("{file}: signs a {:?}, not a {domain:?}", sig.domain)));
        }
        let mut bytes = [0u8; 64];
        hex::decode_to_slice(&sig.signature, &mut bytes)
            .map_err(|_| SignatureProblem::Malformed(format!("{file}: the signature is not 128 hex digits")))?;
        let key = trusted.get(&sig.key_id).ok_or_else(|| SignatureProblem::UnknownKey(sig.key_id.clone()))?;
        if !key.verify(domain, digest, &bytes) {
            return Err(SignatureProblem::BadSignature(sig.key_id.clone()));
        }
        Ok(key.clone())
    }
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_binds_key_domain_and_digest() {
        let k = SecretKey::generate().unwrap();
        let d = sha256(b"content");
        let sig = k.sign("countersign/policy-pack/v1", &d);
        let p = k.public("");
        assert!(p.verify("countersign/policy-pack/v1", &d, &sig));
        assert!(!p.verify("countersign/release/v1", &d, &sig), "a pack signature is not a release signature");
        assert!(!p.verify("countersign/policy-pack/v1", &sha256(b"contenu"), &sig));
        let other = SecretKey::generate().unwrap().public("");
        assert!(!other.verify("countersign/policy-pack/v1", &d, &sig));
    }

    #[test]
    fn key_lines_round_trip_and_errors_are_located() {
        let k = SecretKey::generate().unwrap().public("ops admin");
        let parsed = PublicKey::parse_all("k.pub", &format!("# c\n{}\n", k.to_line())).unwrap();
        assert_eq!(parsed, vec![k.clone()]);
        let err = PublicKey::parse_all("k.pub", &format!("{PUBLIC_KEY_TAG} zz\n")).unwrap_err();
        assert!(err.starts_with("k.pub:1:32:"), "{err}");
        let err = PublicKey::parse_all("k.pub", &format!("\n{SECRET_KEY_TAG} 00\n")).unwrap_err();
        assert!(err.starts_with("k.pub:2:1:") && err.contains("SECRET"), "{err}");
        assert!(format!("{:?}", SecretKey::generate().unwrap()).contains("[redacted]"));
    }

    #[test]
    fn the_build_bundles_at_least_one_usable_key() {
        assert!(TrustedKeys::bundled_errors().is_empty(), "{:?}", TrustedKeys::bundled_errors());
        assert!(!TrustedKeys::bundled().keys().is_empty(), "assets/trusted-keys/ holds the admin keys to trust");
    }
}
