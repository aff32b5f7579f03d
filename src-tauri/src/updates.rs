//! Signed app updates, through `tauri-plugin-updater`.
//!
//! - **The key** that signs updates (a minisign key made with `npx tauri signer generate`)
//!   is built into the app: `plugins.updater.pubkey` in `tauri.conf.json`, which whoever
//!   builds the installer sets (`npx tauri build --config …`). The repository's own config
//!   leaves it empty: such a build verifies no update and says so.
//! - **The endpoint** is a managed setting: the signed policy pack's `update_endpoint`,
//!   else the installer's `plugins.updater.endpoints`. Nothing in the app changes either.
//! - **Order**: the update is downloaded, its signature checked against the built-in key,
//!   and the version it was signed for against the version the endpoint announced
//!   (`requireSignedVersion`, so an old signed package cannot be offered as a new one);
//!   only bytes that pass reach the installer. A refused update installs nothing.
//! - **The webview never says what to install**: [`check`] keeps the update it found in
//!   [`Pending`], and [`install_pending`] installs that one, and only if it is the version
//!   the agent was shown.

use std::sync::Mutex;
use std::time::Duration;

use tauri::{AppHandle, Runtime, Url};
use tauri_plugin_updater::{Config, Error as UpdaterError, Update, UpdaterExt};

use crate::dto::{AppError, ErrorCode, UpdateCheck, UpdateOffer};

/// How long one request to the update endpoint may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

/// Where updates come from, and who chose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub endpoints: Vec<Url>,
    pub chosen_by: &'static str,
}

/// The update found by the last check, waiting for the agent to install it.
#[derive(Default)]
pub struct Pending(Mutex<Option<Update>>);

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let version = self.0.lock().ok().and_then(|p| p.as_ref().map(|u| u.version.clone()));
        f.debug_tuple("Pending").field(&version).finish()
    }
}

fn error(code: ErrorCode, message: String) -> AppError {
    AppError::new(code, message)
}

/// The updater configuration this build carries (`plugins.updater` in tauri.conf.json).
pub fn installer_config<R: Runtime>(app: &AppHandle<R>) -> Result<Config, AppError> {
    let raw = app.config().plugins.0.get("updater").cloned().unwrap_or_default();
    serde_json::from_value(raw).map_err(|e| {
        error(
            ErrorCode::UpdateNotConfigured,
            format!("this build's updater configuration (plugins.updater) is invalid: {e}"),
        )
    })
}

/// The pack's endpoint if it names one, else the installer's. Refuses when this build has
/// no updater key (it could verify nothing) or no endpoint is set anywhere.
pub fn source(pack_endpoint: Option<&str>, installer: &Config) -> Result<Source, AppError> {
    if installer.pubkey.trim().is_empty() {
        return Err(error(
            ErrorCode::UpdateNotConfigured,
            "this build has no updater public key (plugins.updater.pubkey is empty), so it can verify no update".into(),
        ));
    }
    if let Some(text) = pack_endpoint {
        let url = Url::parse(text).map_err(|e| {
            error(
                ErrorCode::UpdateNotConfigured,
                format!("the policy pack's update_endpoint {text:?} is not a URL: {e}"),
            )
        })?;
        return Ok(Source { endpoints: vec![url], chosen_by: "the signed policy pack" });
    }
    if installer.endpoints.is_empty() {
        return Err(error(
            ErrorCode::UpdateNotConfigured,
            "no update endpoint: neither the policy pack (settings.update_endpoint) nor this installer \
             (plugins.updater.endpoints) names one"
                .into(),
        ));
    }
    Ok(Source { endpoints: installer.endpoints.clone(), chosen_by: "the installer" })
}

/// A URL as shown: without its query or fragment (which could hold an access token).
fn shown(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    // The `{{variables}}` read better unescaped.
    u.to_string().replace("%7B%7B", "{{").replace("%7D%7D", "}}")
}

/// Why the updater failed, as an error the UI branches on. Signature problems are
/// `UpdateRefused`: nothing was installed, and the file must not be installed by hand.
fn updater_error(e: UpdaterError, what: &str) -> AppError {
    use minisign_verify::Error as M;
    let refused = |m: String| error(ErrorCode::UpdateRefused, m);
    match e {
        UpdaterError::Minisign(M::UnexpectedKeyId) => refused(format!(
            "{what} is signed by a key this installation does not trust (it installs only updates signed with \
             the updater key it was built with); nothing was installed"
        )),
        UpdaterError::Minisign(M::InvalidSignature) => refused(format!(
            "{what}: the signature does not verify: the file was changed after it was signed; nothing was installed"
        )),
        UpdaterError::Minisign(_) | UpdaterError::Base64(_) | UpdaterError::SignatureUtf8(_) => refused(format!(
            "{what}: its signature (or this build's updater key) cannot be read: {e}; nothing was installed"
        )),
        UpdaterError::SignedVersionMismatch { signed, announced } => refused(format!(
            "{what}: the endpoint announced version {announced}, but the file was signed as version {signed}; \
             nothing was installed"
        )),
        UpdaterError::MissingSignedVersion => refused(format!(
            "{what}: its signature does not say which version it was signed for; nothing was installed"
        )),
        UpdaterError::EmptyEndpoints | UpdaterError::InsecureTransportProtocol => {
            error(ErrorCode::UpdateNotConfigured, format!("{what}: {e}"))
        }
        // Without the URL: its query could hold an access token.
        UpdaterError::Reqwest(e) => {
            let e = e.without_url();
            let cause = std::error::Error::source(&e).map(|c| format!(": {c}")).unwrap_or_default();
            error(ErrorCode::UpdateFailed, format!("{what}: {e}{cause}"))
        }
        other => error(ErrorCode::UpdateFailed, format!("{what}: {other}")),
    }
}

/// Ask the endpoint whether a newer signed version exists. `None`: up to date.
pub async fn find<R: Runtime>(app: &AppHandle<R>, source: &Source) -> Result<Option<Update>, AppError> {
    let what = format!("checking {}", source.endpoints.iter().map(shown).collect::<Vec<_>>().join(", "));
    let updater = app
        .updater_builder()
        .endpoints(source.endpoints.clone())
        .and_then(|b| b.timeout(CHECK_TIMEOUT).build())
        .map_err(|e| updater_error(e, &what))?;
    updater.check().await.map_err(|e| updater_error(e, &what))
}

/// Download `update`, check its signature, and only then hand the bytes to `install`
/// (on a blocking thread: installing may wait for the OS to ask for a password).
pub async fn download_and_install<F>(update: &Update, install: F) -> Result<(), AppError>
where
    F: FnOnce(Vec<u8>) -> Result<(), UpdaterError> + Send + 'static,
{
    let what = format!("the update to version {} from {}", update.version, shown(&update.download_url));
    let bytes = update.download(|_, _| {}, || {}).await.map_err(|e| updater_error(e, &what))?;
    tracing::info!(version = %update.version, bytes = bytes.len(), "update signature verified; installing");
    match tauri::async_runtime::spawn_blocking(move || install(bytes)).await {
        Ok(result) => result.map_err(|e| updater_error(e, &what)),
        Err(e) => Err(error(ErrorCode::Internal, format!("installing {what}: {e}"))),
    }
}

/// The `update_check` command: find an update and keep it for [`install_pending`].
pub async fn check<R: Runtime>(
    app: &AppHandle<R>,
    pack_endpoint: Option<&str>,
    pending: &Pending,
) -> Result<UpdateCheck, AppError> {
    let source = source(pack_endpoint, &installer_config(app)?)?;
    let found = find(app, &source).await;
    if let Err(e) = &found {
        tracing::warn!(code = ?e.code, message = %e.message, "update check failed");
    }
    let found = found?;
    let offer = found.as_ref().map(|u| UpdateOffer {
        version: u.version.clone(),
        // As the endpoint wrote it (the plugin checked that it is RFC 3339).
        date: u.date.and(u.raw_json.get("pub_date").and_then(|d| d.as_str()).map(String::from)),
        notes: u.body.clone(),
    });
    if let Ok(mut p) = pending.0.lock() {
        *p = found;
    }
    Ok(UpdateCheck {
        current_version: app.package_info().version.to_string(),
        endpoint: source.endpoints.first().map(shown).unwrap_or_default(),
        chosen_by: source.chosen_by.into(),
        available: offer,
    })
}

/// The `update_install` command: install the update the last check found, if it is
/// `version`. Returns the version installed; the app runs it after a restart.
pub async fn install_pending(pending: &Pending, version: &str) -> Result<String, AppError> {
    let update = pending.0.lock().ok().and_then(|p| p.clone()).filter(|u| u.version == version).ok_or_else(|| {
        error(ErrorCode::NotFound, format!("no update to version {version} is waiting; check for updates again"))
    })?;
    let installer = update.clone();
    let result = download_and_install(&update, move |bytes| installer.install(bytes)).await;
    match &result {
        Ok(()) => tracing::info!(version, "update installed"),
        Err(e) => tracing::warn!(code = ?e.code, message = %e.message, "update not installed"),
    }
    result.map(|()| update.version)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    //! The plugin's real check, download and signature check, in a mock app, against a
    //! real HTTP server on loopback that serves `latest.json` manifests and artifacts. Key
    //! pairs are made here (minisign, as the Tauri signer writes them); none is committed.

    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use axum::response::IntoResponse;
    use base64::Engine as _;
    use tauri::test::{MockRuntime, mock_builder, mock_context, noop_assets};

    use super::*;

    /// A minisign key pair, and its public key as tauri.conf.json carries it: base64 of
    /// the public key file (what `npx tauri signer generate` writes to KEY.pub).
    struct Keys {
        pair: minisign::KeyPair,
        pubkey: String,
    }

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    fn keys() -> Keys {
        let pair = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
        let pubkey = b64(&pair.pk.to_box().unwrap().to_string());
        Keys { pair, pubkey }
    }

    /// A signature as the Tauri CLI writes it: base64 of the minisign signature file, with
    /// the file name and the version in the trusted comment.
    fn sign(keys: &Keys, bytes: &[u8], version: &str) -> String {
        let trusted = format!("timestamp:1767225600\tfile:Countersign_{version}_amd64.deb\tversion:{version}");
        let sig = minisign::sign(Some(&keys.pair.pk), &keys.pair.sk, bytes, Some(&trusted), None).unwrap();
        b64(&sig.to_string())
    }

    /// Path → (content type, body).
    type Routes = HashMap<String, (&'static str, Vec<u8>)>;

    /// A real HTTP server on 127.0.0.1 (for the rest of the test run) serving the routes
    /// `fill` makes from the server's base URL. Returns the base URL.
    fn serve(fill: impl FnOnce(&str) -> Routes) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let routes = Arc::new(fill(&base));
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
                    let found = routes.get(uri.path()).cloned();
                    async move {
                        match found {
                            Some((kind, body)) => ([(axum::http::header::CONTENT_TYPE, kind)], body).into_response(),
                            None => axum::http::StatusCode::NOT_FOUND.into_response(),
                        }
                    }
                });
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        base
    }

    /// A static `latest.json` announcing `version` at `url` with `signature`, for this
    /// machine's updater target (`linux-x86_64`, …).
    fn manifest(version: &str, url: &str, signature: &str) -> Vec<u8> {
        let target = tauri_plugin_updater::target().unwrap();
        serde_json::to_vec(&serde_json::json!({
            "version": version,
            "notes": "signed test release",
            "pub_date": "2026-01-01T00:00:00Z",
            "platforms": { target: { "url": url, "signature": signature } }
        }))
        .unwrap()
    }

    /// The updater configuration as tauri.conf.json carries it, trusting `pubkey`; plain
    /// HTTP allowed, for the loopback server only.
    fn config(pubkey: &str) -> serde_json::Value {
        serde_json::json!({"pubkey": pubkey, "requireSignedVersion": true, "dangerousInsecureTransportProtocol": true})
    }

    /// A mock app (version 0.1.0) with the updater plugin configured by `updater`.
    fn app(updater: serde_json::Value) -> tauri::App<MockRuntime> {
        let mut context = mock_context(noop_assets());
        context.config_mut().plugins.0.insert("updater".into(), updater);
        mock_builder().plugin(tauri_plugin_updater::Builder::new().build()).build(context).unwrap()
    }

    /// Through the app's own functions: the pack names `endpoint`; check it, then download
    /// and install with an installer that only records the bytes it was given. Returns the
    /// version found (none: up to date) or the error, and what reached the installer.
    fn check_and_install(
        app: &tauri::App<MockRuntime>,
        endpoint: &str,
    ) -> (Result<Option<String>, AppError>, Option<Vec<u8>>) {
        let installed = Arc::new(Mutex::new(None));
        let seen = installed.clone();
        let result = tauri::async_runtime::block_on(async {
            let source = source(Some(endpoint), &installer_config(app.handle())?)?;
            assert_eq!(source.chosen_by, "the signed policy pack");
            let Some(update) = find(app.handle(), &source).await? else { return Ok(None) };
            assert_eq!(update.current_version, "0.1.0");
            download_and_install(&update, move |bytes| {
                *seen.lock().unwrap() = Some(bytes);
                Ok(())
            })
            .await
            .map(|()| Some(update.version.clone()))
        });
        let got = installed.lock().unwrap().take();
        (result, got)
    }

    #[test]
    fn only_an_update_signed_by_the_built_in_key_reaches_the_installer() {
        let trusted = keys();
        let other = keys();
        let artifact: Vec<u8> = (0..64 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let mut tampered = artifact.clone();
        tampered[40_000] ^= 0x01;
        let good_sig = sign(&trusted, &artifact, "0.2.0");
        let other_sig = sign(&other, &artifact, "0.2.0");
        let base = serve(|base| {
            let deb = "application/vnd.debian.binary-package";
            let mut routes = Routes::new();
            routes.insert("/files/good.deb".into(), (deb, artifact.clone()));
            routes.insert("/files/tampered.deb".into(), (deb, tampered));
            for (name, file, sig, version) in [
                ("good", "good.deb", &good_sig, "0.2.0"),
                ("tampered", "tampered.deb", &good_sig, "0.2.0"),
                ("other-key", "good.deb", &other_sig, "0.2.0"),
                // The signed 0.2.0 announced as 0.3.0: the version it was signed for must match.
                ("relabelled", "good.deb", &good_sig, "0.3.0"),
                // No newer than the running 0.1.0.
                ("current", "good.deb", &good_sig, "0.1.0"),
            ] {
                let url = format!("{base}/files/{file}");
                routes.insert(format!("/{name}/latest.json"), ("application/json", manifest(version, &url, sig)));
            }
            routes
        });
        let app = app(config(&trusted.pubkey));
        let at = |name: &str| format!("{base}/{name}/latest.json");

        let (result, installed) = check_and_install(&app, &at("good"));
        assert_eq!(result.unwrap(), Some("0.2.0".into()), "a correctly signed update is accepted");
        assert_eq!(installed.as_deref(), Some(artifact.as_slice()), "the installer gets exactly the signed bytes");

        for (name, says) in [
            ("tampered", "the signature does not verify"),
            ("other-key", "signed by a key this installation does not trust"),
            ("relabelled", "announced version 0.3.0, but the file was signed as version 0.2.0"),
        ] {
            let (result, installed) = check_and_install(&app, &at(name));
            let err = result.unwrap_err();
            assert_eq!(err.code, ErrorCode::UpdateRefused, "{name}: {err:?}");
            assert!(err.message.contains(says), "{name}: {}", err.message);
            assert!(installed.is_none(), "{name}: a refused update never reaches the installer");
        }

        let (result, installed) = check_and_install(&app, &at("current"));
        assert_eq!(result.unwrap(), None, "a release no newer than the running version is no update");
        assert!(installed.is_none());

        let (result, _) = check_and_install(&app, &format!("{base}/nowhere/latest.json"));
        assert_eq!(result.unwrap_err().code, ErrorCode::UpdateFailed, "an endpoint with no manifest");
    }

    #[test]
    #[cfg(unix)]
    fn the_commands_keep_what_they_found_and_install_nothing_that_fails_its_check() {
        let trusted = keys();
        let artifact = b"a package that will be changed on the way".to_vec();
        let sig = sign(&trusted, &artifact, "0.2.0");
        let mut changed = artifact.clone();
        changed[2] ^= 0x20;
        let base = serve(|base| {
            let mut routes = Routes::new();
            routes.insert("/files/changed.deb".into(), ("application/octet-stream", changed));
            let url = format!("{base}/files/changed.deb");
            routes.insert("/latest.json".into(), ("application/json", manifest("0.2.0", &url, &sig)));
            routes
        });
        let app = app(config(&trusted.pubkey));
        let exe = std::env::current_exe().unwrap();
        let stat = |p: &std::path::Path| {
            let m = std::fs::metadata(p).unwrap();
            (std::os::unix::fs::MetadataExt::ino(&m), m.len(), m.modified().unwrap())
        };
        let before = stat(&exe);
        let pending = Pending::default();
        tauri::async_runtime::block_on(async {
            let found = check(app.handle(), Some(&format!("{base}/latest.json")), &pending).await.unwrap();
            assert_eq!(found.current_version, "0.1.0");
            assert_eq!(found.chosen_by, "the signed policy pack");
            let offer = found.available.expect("0.2.0 is offered");
            assert_eq!((offer.version.as_str(), offer.date.as_deref()), ("0.2.0", Some("2026-01-01T00:00:00Z")));

            let err = install_pending(&pending, "0.3.0").await.unwrap_err();
            assert_eq!(err.code, ErrorCode::NotFound, "only the version the agent was shown: {err:?}");
            // The real installer is behind the check: a changed file never reaches it.
            let err = install_pending(&pending, "0.2.0").await.unwrap_err();
            assert_eq!(err.code, ErrorCode::UpdateRefused, "{err:?}");
            assert!(err.message.contains("nothing was installed"), "{}", err.message);
        });
        assert_eq!(stat(&exe), before, "the running executable (what an install replaces) was not touched");
    }

    #[test]
    fn the_pack_chooses_the_endpoint_and_a_build_without_a_key_updates_nothing() {
        let k = keys();
        let with_endpoint =
            app(serde_json::json!({"pubkey": k.pubkey, "endpoints": ["https://installer.example/latest.json"]}));
        let installer = installer_config(with_endpoint.handle()).unwrap();
        let s = source(None, &installer).unwrap();
        assert_eq!((s.endpoints[0].as_str(), s.chosen_by), ("https://installer.example/latest.json", "the installer"));
        let s = source(Some("https://pack.example/{{target}}/{{current_version}}"), &installer).unwrap();
        assert_eq!(s.chosen_by, "the signed policy pack", "the pack's endpoint wins over the installer's");
        assert_eq!(shown(&s.endpoints[0]), "https://pack.example/{{target}}/{{current_version}}");
        assert_eq!(
            shown(&Url::parse("https://u.example/latest.json?token=abc#x").unwrap()),
            "https://u.example/latest.json"
        );

        let no_endpoint = installer_config(app(serde_json::json!({"pubkey": k.pubkey})).handle()).unwrap();
        let err = source(None, &no_endpoint).unwrap_err();
        assert_eq!(err.code, ErrorCode::UpdateNotConfigured);
        assert!(err.message.contains("update_endpoint"), "{}", err.message);

        // The repository's own tauri.conf.json: no key, so nothing can be verified or installed.
        let conf: serde_json::Value =
            serde_json::from_str(include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tauri.conf.json"))).unwrap();
        let unkeyed = installer_config(app(conf["plugins"]["updater"].clone()).handle()).unwrap();
        let err = source(Some("https://pack.example/latest.json"), &unkeyed).unwrap_err();
        assert_eq!(err.code, ErrorCode::UpdateNotConfigured);
        assert!(err.message.contains("no updater public key"), "{}", err.message);
        assert!(unkeyed.require_signed_version, "the app's config requires the signed version to match");
    }

    #[test]
    fn version_and_help_name_the_product_before_tauri_starts() {
        use clap::CommandFactory;
        let conf: serde_json::Value =
            serde_json::from_str(include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tauri.conf.json"))).unwrap();
        assert_eq!(conf["productName"], crate::PRODUCT_NAME);
        assert!(conf.get("version").is_none(), "the version comes from Cargo.toml only, so --version cannot drift");
        let cmd = crate::Args::command();
        assert_eq!(cmd.render_version().trim(), format!("Countersign {}", env!("CARGO_PKG_VERSION")));
    }
}
