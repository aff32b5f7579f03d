//! Release verification: a directory of artifacts (installers, updater bundles, the CLI),
//! a `SHA256SUMS` in the format `sha256sum` writes and checks (`<64 hex>  <name>`), and
//! `SHA256SUMS.sig`, a detached signature (see [`crate::keys::SignatureFile`]) over
//! `"countersign/release/v1\n" || SHA-256(SHA256SUMS)` by an admin key.
//!
//! [`verify_release`] checks the signature against the trusted admin keys, then every
//! listed file's SHA-256, and refuses files in the directory that the sums do not list
//! (so nothing can be slipped in beside a signed release).

use std::path::Path;

use serde::Serialize;

use crate::TrustError;
use crate::keys::{SecretKey, SignatureFile, SignatureProblem, TrustedKeys, sha256};

pub const SUMS_FILE: &str = "SHA256SUMS";
pub const SUMS_SIG_FILE: &str = "SHA256SUMS.sig";
/// What a release signature signs.
pub const RELEASE_DOMAIN: &str = "countersign/release/v1";

/// One artifact of a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReleaseFile {
    pub name: String,
    pub sha256: String,
    /// `ok`, `mismatch`, `missing` or `unlisted`.
    pub status: &'static str,
}

/// What verifying (or signing) a release found.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseReport {
    pub ok: bool,
    /// The trusted key that signed the sums.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    pub files: Vec<ReleaseFile>,
    /// Every problem found, most fundamental first: `code: message`.
    pub problems: Vec<String>,
}

fn artifacts(dir: &Path) -> Result<Vec<String>, TrustError> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| TrustError::io(dir, e))? {
        let entry = entry.map_err(|e| TrustError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == SUMS_FILE || name == SUMS_SIG_FILE {
            continue;
        }
        let kind = entry.file_type().map_err(|e| TrustError::io(&entry.path(), e))?;
        if !kind.is_file() {
            return Err(TrustError::BadInput {
                message: format!("{}: a release directory holds files only", entry.path().display()),
            });
        }
        names.push(name);
    }
    names.sort();
    Ok(names)
}

fn file_sha256(path: &Path) -> Result<String, TrustError> {
    use sha2::Digest;
    let mut f = std::fs::File::open(path).map_err(|e| TrustError::io(path, e))?;
    let mut h = sha2::Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(|e| TrustError::io(path, e))?;
    Ok(hex::encode(h.finalize()))
}

/// Write `SHA256SUMS` over every file in `dir` and sign it with `key`. Refuses a directory
/// that already has sums or a signature.
pub fn sign_release(dir: &Path, key: &SecretKey) -> Result<ReleaseReport, TrustError> {
    for f in [SUMS_FILE, SUMS_SIG_FILE] {
        if dir.join(f).exists() {
            return Err(TrustError::Conflict { message: format!("{}: already signed ({f} exists)", dir.display()) });
        }
    }
    let names = artifacts(dir)?;
    if names.is_empty() {
        return Err(TrustError::BadInput { message: format!("{}: no artifacts to sign", dir.display()) });
    }
    let mut sums = String::new();
    for name in &names {
        if name.contains(['\n', '\\']) {
            return Err(TrustError::BadInput { message: format!("{name:?}: a file name with a newline or backslash") });
        }
        sums.push_str(&format!("{}  {name}\n", file_sha256(&dir.join(name))?));
    }
    let write = |name: &str, bytes: &[u8]| -> Result<(), TrustError> {
        use std::io::Write;
        let path = dir.join(name);
        let mut f = std::fs::File::create_new(&path).map_err(|e| TrustError::io(&path, e))?;
        f.write_all(bytes).and_then(|()| f.sync_all()).map_err(|e| TrustError::io(&path, e))
    };
    write(SUMS_FILE, sums.as_bytes())?;
    write(SUMS_SIG_FILE, SignatureFile::make(RELEASE_DOMAIN, &sha256(sums.as_bytes()), key).to_toml().as_bytes())?;
    verify_release(dir, &TrustedKeys::new(vec![key.public("the signing key")]))
}

/// Check a release directory against its signed sums and the trusted keys.
pub fn verify_release(dir: &Path, trusted: &TrustedKeys) -> Result<ReleaseReport, TrustError> {
    let sums_path = dir.join(SUMS_FILE);
    let mut report = ReleaseReport { ok: false, key_id: None, files: Vec::new(), problems: Vec::new() };
    let sums = match std::fs::read(&sums_path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            report.problems.push(format!("no_sums: {} is missing", sums_path.display()));
            return Ok(report);
        }
        Err(e) => return Err(TrustError::io(&sums_path, e)),
    };
    let sig_path = dir.join(SUMS_SIG_FILE);
    match SignatureFile::check(&sig_path, RELEASE_DOMAIN, &sha256(&sums), trusted) {
        Ok(key) => report.key_id = Some(key.id()),
        Err(p) => report.problems.push(match p {
            SignatureProblem::Missing => format!("unsigned: {} is missing", sig_path.display()),
            SignatureProblem::Malformed(m) => format!("malformed: {m}"),
            SignatureProblem::UnknownKey(id) => {
                format!("unknown_key: {SUMS_FILE} is signed by key {id}, which is not a trusted admin key")
            }
            SignatureProblem::BadSignature(id) => format!(
                "bad_signature: the signature by key {id} does not verify: {SUMS_FILE} was changed after signing"
            ),
        }),
    }
    let text = String::from_utf8_lossy(&sums);
    let mut listed = std::collections::BTreeSet::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        // `sha256sum` writes "<hex>  <name>" (text mode) or "<hex> *<name>" (binary mode).
        let parsed = line.split_at_checked(64).and_then(|(hex_text, rest)| {
            let name = rest.strip_prefix("  ").or_else(|| rest.strip_prefix(" *"))?;
            let valid = hex_text.bytes().all(|b| b.is_ascii_hexdigit()) && !name.is_empty();
            valid.then(|| (hex_text.to_ascii_lowercase(), name.to_string()))
        });
        let Some((want, name)) = parsed else {
            report.problems.push(format!(
                "malformed: {}:{}:1: expected `<64 hex>  <file name>`",
                sums_path.display(),
                i + 1
            ));
            continue;
        };
        if name.contains(['/', '\\']) || name == ".." || name == "." {
            report.problems.push(format!(
                "malformed: {}:{}: {name:?} is not a plain file name",
                sums_path.display(),
                i + 1
            ));
            continue;
        }
        listed.insert(name.clone());
        let path = dir.join(&name);
        if !path.is_file() {
            report.problems.push(format!("missing_file: {name} is listed in {SUMS_FILE} but missing"));
            report.files.push(ReleaseFile { name, sha256: want, status: "missing" });
            continue;
        }
        let found = file_sha256(&path)?;
        if found == want {
            report.files.push(ReleaseFile { name, sha256: found, status: "ok" });
        } else {
            report.problems.push(format!("mismatch: {name}: SHA-256 is {found}, {SUMS_FILE} says {want}"));
            report.files.push(ReleaseFile { name, sha256: found, status: "mismatch" });
        }
    }
    for name in artifacts(dir)? {
        if !listed.contains(&name) {
            report.problems.push(format!("unlisted_file: {name} is not in {SUMS_FILE}"));
            report.files.push(ReleaseFile { sha256: file_sha256(&dir.join(&name))?, name, status: "unlisted" });
        }
    }
    if listed.is_empty() && report.problems.is_empty() {
        report.problems.push(format!("malformed: {SUMS_FILE} lists no files"));
    }
    report.ok = report.problems.is_empty();
    Ok(report)
}
