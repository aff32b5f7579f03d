//! # countersign-browser
//!
//! The browser connector: acts on a seller center's web pages, for the operations a
//! platform offers only there, inside the session an agent opened by hand.
//!
//! **Architecture invariants:**
//! - It implements [`countersign_connectors::Connector`], so the engine runs its steps like
//!   any other: the same policy, approvals, pauses and evidence. The engine does not know
//!   this crate; a face (the CLI, the desktop app, a test) builds the connector with
//!   [`connector_for_workspace`] from the workspace's `[connector] kind = "browser"`
//!   settings and hands it over through `EngineOptions::connector`. It is a crate of its
//!   own because the DevTools client (chromiumoxide and its generated protocol types) is
//!   heavy, and nothing that only speaks HTTP should compile it.
//! - It works only inside the agent's own session, in a persistent Chromium profile per
//!   platform and store (`DATA_DIR/browser-profiles/PLATFORM/STORE`). The agent signs in
//!   by hand in a visible window ([`open_login_window`], `countersign-browser-login`).
//!   The connector never types a password, never solves a captcha, never enters a
//!   one-time code: a login page or a verification page ends the step as
//!   [`ConnectorError::NeedsHuman`] with a screenshot, and a person takes over.
//! - A JavaScript dialog (`alert`, `confirm`, `prompt`, `beforeunload`) is dismissed the
//!   moment it opens, never accepted, and named in the evidence and the error: before the
//!   submit click it fails the step with nothing submitted; after the click the outcome
//!   is left to the after-state read ([`ConnectorError::Unconfirmed`]).
//! - What each action is on the pages lives in workspace configuration
//!   ([`config::PageActions`], `assets/demo/pages.toml`, documented in
//!   `docs/page-actions.md`): URL, how to recognise the page, what to read, what to
//!   fill, what to click, and what proves success. A page that does not match its
//!   description fails the step *before* anything is submitted, naming the mismatch.
//! - Right before the submit click it asks the caller's [`SubmitGate`] (the executor's
//!   pause check): a pause set while the form was being filled still stops the step.
//! - The click is made at most once per call. Where a write's form carries an
//!   idempotency token (`idempotency_field`, a form nonce the platform honours like an
//!   `Idempotency-Key`), the executor's key goes there, so the same call made again with
//!   the same key is answered with the first result and applies nothing more; where the
//!   page offers none, the platform gives no idempotency and an uncertain submit can only
//!   be read back.
//! - Every call leaves evidence: page URL and HTTP status, screenshots (PNG) and DOM
//!   snapshots (HTML, secrets such as CSRF tokens and password fields redacted) stored as
//!   content-addressed blobs through the [`BlobSink`] the engine attaches, named in the
//!   step's evidence by SHA-256; the values read and filled; the result.
//! - It is also a case source where buyer messages have no API: [`DemoMessagePages`]
//!   reads and answers the demo seller center's message pages in the same browser and
//!   profile (one Chromium per profile), with the caller's idempotency key as the form's
//!   one-time token, so a repeated post is answered with the first.
//!
//! ## Extending
//!
//! A new action is an entry in the page-actions file named like the policy's action. A
//! new kind of page check or field type is a variant in [`config`] and a line in the page
//! scripts of `chromium.rs`.

pub mod chromium;
pub mod config;
pub mod messages;
mod page;
mod process;

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use countersign_connectors::{
    BlobSink, BrowserSettings, CallRecord, Connector, ConnectorError, ExpectationError, Open, RecordedRequest, Sent,
    SubmitGate,
};
use countersign_core::decide::OrderFacts;
use countersign_core::policy::Kind;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

pub use crate::chromium::{BrowserOptions, find_chromium};
use crate::chromium::{Chromium, cdp};
pub use crate::config::{PageAction, PageActions, PagesError};
pub use crate::messages::DemoMessagePages;
use crate::page::{ReadOutcome, Stop, Trail, as_is, encode_path};

/// The browser connector (see the crate docs). Calls are serialised: one agent, one tab.
pub struct BrowserConnector {
    pages: PageActions,
    options: BrowserOptions,
    runtime: tokio::runtime::Runtime,
    browser: Mutex<Option<Chromium>>,
    blobs: Mutex<Option<Arc<dyn BlobSink>>>,
}

impl std::fmt::Debug for BrowserConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserConnector")
            .field("platform", &self.pages.platform)
            .field("base_url", &self.pages.base_url)
            .field("profile", &self.options.profile_dir(&self.pages.profile))
            .finish_non_exhaustive()
    }
}

impl BrowserConnector {
    /// A connector for the actions in `pages`. Chromium starts at the first call.
    pub fn new(pages: PageActions, options: BrowserOptions) -> Result<BrowserConnector, ConnectorError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("countersign-browser")
            .enable_all()
            .build()
            .map_err(|e| ConnectorError::Config { detail: format!("cannot start the browser runtime: {e}") })?;
        Ok(BrowserConnector { pages, options, runtime, browser: Mutex::new(None), blobs: Mutex::new(None) })
    }

    pub fn pages(&self) -> &PageActions {
        &self.pages
    }

    /// Starts Chromium now (rather than at the first call), so a missing or broken
    /// browser is reported at once.
    pub fn start(&self) -> Result<(), ConnectorError> {
        let mut guard = self.browser.lock().unwrap_or_else(PoisonError::into_inner);
        self.ensure(&mut guard)
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.pages.timeout_ms)
    }

    fn ensure(&self, slot: &mut Option<Chromium>) -> Result<(), ConnectorError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(ConnectorError::Config {
                detail: "the browser connector is synchronous: call it from a plain thread, not from async code".into(),
            });
        }
        if slot.is_none() {
            let launched =
                self.runtime.block_on(Chromium::launch(&self.options, &self.pages.profile, self.timeout(), false))?;
            *slot = Some(launched);
        }
        Ok(())
    }

    /// Runs `f` on the browser (started if needed) within the page timeout. A browser
    /// that stopped answering is dropped, so the next call starts a fresh one.
    fn with_browser<T>(
        &self,
        f: impl AsyncFnOnce(&Chromium) -> Result<T, ConnectorError>,
    ) -> Result<T, ConnectorError> {
        let mut guard = self.browser.lock().unwrap_or_else(PoisonError::into_inner);
        self.ensure(&mut guard)?;
        let Some(chromium) = guard.as_ref() else {
            return Err(ConnectorError::Config { detail: "the browser did not start".into() });
        };
        let result = self.runtime.block_on(f(chromium));
        if matches!(result, Err(ConnectorError::Transport(_)))
            && let Some(dead) = guard.take()
        {
            self.runtime.block_on(dead.close());
        }
        result
    }

    fn url_for(&self, action: &PageAction, params: &Map<String, Value>) -> Result<String, ConnectorError> {
        let path =
            action.url.render(params, encode_path).map_err(|e| ConnectorError::InvalidParams { errors: vec![e] })?;
        Ok(format!("{}{path}", self.pages.base_url))
    }

    fn action(&self, name: &str) -> Result<&PageAction, ConnectorError> {
        self.pages.action(name).ok_or_else(|| ConnectorError::UnknownAction { action: name.to_owned() })
    }

    fn check(&self, action: &PageAction, params: &Map<String, Value>) -> Result<(), ConnectorError> {
        let errors = action.check_params(params);
        if errors.is_empty() { Ok(()) } else { Err(ConnectorError::InvalidParams { errors }) }
    }

    fn put_blob(&self, media_type: &str, data: &[u8]) -> Value {
        let hash = hex::encode(Sha256::digest(data));
        let sink = self.blobs.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let stored = match sink.map(|s| s.put(media_type, data)) {
            Some(Ok(h)) if h == hash => json!(true),
            Some(Ok(h)) => json!(format!("the blob store named it {h}")),
            Some(Err(e)) => json!(format!("not stored: {e}")),
            None => json!("not stored: no blob store attached"),
        };
        json!({ "sha256": hash, "media_type": media_type, "bytes": data.len(), "stored": stored })
    }
}

impl Drop for BrowserConnector {
    fn drop(&mut self) {
        let browser = self.browser.get_mut().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(b) = browser
            && tokio::runtime::Handle::try_current().is_err()
        {
            self.runtime.block_on(async {
                let _ = tokio::time::timeout(Duration::from_secs(5), b.close()).await;
            });
        }
    }
}

impl Connector for BrowserConnector {
    fn order_facts(&self, order_id: &str) -> Result<Option<OrderFacts>, ConnectorError> {
        let map = self.pages.order_facts.as_ref().ok_or_else(|| ConnectorError::Unsupported {
            what: format!("order facts: {} has no [facts.order]", self.pages.file),
        })?;
        map.read(
            order_id,
            |action, params| self.quiet_read(action, params),
            |fields, field| fields.get(field).and_then(Value::as_str).map(str::to_owned),
        )
    }

    /// A page whose form names the field that carries the key (its form token): the demo
    /// seller center honours it like the API's `Idempotency-Key`.
    fn honours_idempotency(&self, action: &str) -> bool {
        self.pages.action(action).is_some_and(|a| a.idempotency_field.is_some())
    }

    fn call(&self, action: &str, params: &Map<String, Value>, key: Option<&str>) -> Result<CallRecord, ConnectorError> {
        self.call_gated(action, params, key, &Open)
    }

    fn call_gated(
        &self,
        action_name: &str,
        params: &Map<String, Value>,
        idempotency_key: Option<&str>,
        gate: &dyn SubmitGate,
    ) -> Result<CallRecord, ConnectorError> {
        let action = self.action(action_name)?;
        self.check(action, params)?;
        let request = self.describe_call(action_name, params, idempotency_key)?;
        let started = Instant::now();
        let timeout = self.timeout();
        let (status, response, trail) = self.with_browser(async |c| {
            let mut trail = Trail::default();
            let work = async {
                match action.kind {
                    Kind::Read => match self.run_read(c, action, params, &mut trail, true).await? {
                        ReadOutcome::Fields(f) => Ok((200, Value::Object(f))),
                        ReadOutcome::NotFound => Err(Stop::Error(ConnectorError::Rejected {
                            status: 404,
                            code: "not_found".into(),
                            message: format!("{action_name}: the page was not found"),
                        })),
                    },
                    Kind::Write => {
                        let (seen, response) =
                            self.run_write(c, action, params, idempotency_key, gate, &mut trail).await?;
                        Ok((seen.status, response))
                    }
                }
            };
            let outcome = tokio::time::timeout(timeout, work).await;
            match outcome {
                Err(_) if action.kind == Kind::Write => {
                    // What the page shows now (briefly: a slow page may not answer at all),
                    // and whether the submit had been clicked: the evidence of an uncertain
                    // write.
                    let look = self.look(c, &mut trail, "timed out", true);
                    if !matches!(tokio::time::timeout(Duration::from_secs(5), look).await, Ok(Ok(_))) {
                        // Still loading (its script context comes and goes): at least a
                        // screenshot of what shows.
                        let url = tokio::time::timeout(Duration::from_secs(5), c.url()).await.ok().flatten();
                        let mut page =
                            json!({ "moment": "timed out", "url": url, "note": "the page was still loading" });
                        if let Ok(Ok(png)) = tokio::time::timeout(Duration::from_secs(5), c.screenshot()).await {
                            page["screenshot"] = self.put_blob("image/png", &png);
                        }
                        trail.pages.push(page);
                    }
                    let sent = match (trail.submitted, trail.submitting) {
                        (true, _) => Sent::Yes,
                        (false, true) => Sent::Unknown,
                        (false, false) => Sent::No,
                    };
                    Err(ConnectorError::WriteLost {
                        sent,
                        detail: format!("the page did not finish within {} s", timeout.as_secs()),
                        evidence: Some(Box::new(trail.to_value("timed out"))),
                    })
                }
                Err(_) => Err(ConnectorError::Timeout),
                Ok(Ok((status, response))) => Ok((status, response, trail)),
                Ok(Err(stop)) => {
                    if matches!(stop, Stop::NeedsHuman(_))
                        || (matches!(stop, Stop::Mismatch(_))
                            && trail.pages.iter().all(|p| p.get("screenshot").is_none()))
                    {
                        // The page a person will see when they take over.
                        let _ = self.look(c, &mut trail, "stopped", true).await;
                    }
                    Err(Self::stop_to_error(stop, &trail))
                }
            }
        })?;
        Ok(CallRecord {
            action: action_name.to_owned(),
            request,
            status,
            evidence: Some(trail.to_value("done")),
            response,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            attempts: 1,
        })
    }

    fn describe_call(
        &self,
        action_name: &str,
        params: &Map<String, Value>,
        idempotency_key: Option<&str>,
    ) -> Result<RecordedRequest, ConnectorError> {
        let action = self.action(action_name)?;
        self.check(action, params)?;
        let mut fill = Vec::new();
        for f in &action.fill {
            let value = f.value.render(params, as_is).map_err(|e| ConnectorError::InvalidParams { errors: vec![e] })?;
            fill.push(json!({ "selector": f.selector, "value": value }));
        }
        // The connector clicks submit at most once per call. Where the page's form carries
        // an idempotency field, the key goes there and a call made again with the same key
        // is answered with the first result; where it has none, a submit whose outcome is
        // uncertain can only be read back.
        let body = match (action.kind, &action.idempotency_field) {
            (Kind::Read, _) => None,
            (Kind::Write, None) => Some(json!({ "fill": fill, "submit": action.submit })),
            (Kind::Write, Some(field)) => Some(json!({
                "fill": fill,
                "idempotency": { "field": field, "key": idempotency_key },
                "submit": action.submit,
            })),
        };
        Ok(RecordedRequest {
            method: match action.kind {
                Kind::Read => "PAGE".into(),
                Kind::Write => "PAGE SUBMIT".into(),
            },
            url: self.url_for(action, params)?,
            headers: Default::default(),
            body,
        })
    }

    fn read_state(&self, write_action: &str, params: &Map<String, Value>) -> Result<Option<Value>, ConnectorError> {
        let action = self.action(write_action)?;
        let state = action
            .state
            .as_ref()
            .ok_or_else(|| ConnectorError::Unsupported { what: format!("{write_action} has no state read") })?;
        let mut read_params = Map::new();
        for (read_param, write_param) in &state.params {
            if let Some(v) = params.get(write_param) {
                read_params.insert(read_param.clone(), v.clone());
            }
        }
        Ok(self.quiet_read(&state.action, &read_params)?.map(Value::Object))
    }

    fn check_expectation(
        &self,
        write_action: &str,
        params: &Map<String, Value>,
        before: Option<&Value>,
        after: Option<&Value>,
    ) -> Result<(), ExpectationError> {
        countersign_connectors::expect::check_write(
            write_action,
            self.pages.expectations(write_action),
            params,
            before,
            after,
        )
    }

    fn attach_blobs(&self, sink: Arc<dyn BlobSink>) {
        *self.blobs.lock().unwrap_or_else(PoisonError::into_inner) = Some(sink);
    }
}

/// The browser connector a workspace names (`[connector] kind = "browser"`), its profile
/// under `data_dir` (the engine's data dir for that workspace). This is what every face
/// (the CLI, the desktop app) calls before opening the engine, and hands over as
/// `EngineOptions::connector`; the engine never builds it. Chromium starts at the first
/// call. An error in the page-actions file names its `file:line:column`.
pub fn connector_for_workspace(
    settings: &BrowserSettings,
    data_dir: &Path,
) -> Result<BrowserConnector, ConnectorError> {
    let (pages, options) = workspace_pages(settings, data_dir)?;
    BrowserConnector::new(pages, options)
}

/// [`open_login_window`] on the profile a workspace's browser connector uses (see
/// [`connector_for_workspace`]): how the agent signs in for that workspace.
pub fn open_login_window_for_workspace(settings: &BrowserSettings, data_dir: &Path) -> Result<(), ConnectorError> {
    let (pages, options) = workspace_pages(settings, data_dir)?;
    open_login_window(&pages, &options)
}

/// The page actions (with the workspace's base URL and profile, if it gives them) and the
/// browser options of a workspace's browser connector.
fn workspace_pages(
    settings: &BrowserSettings,
    data_dir: &Path,
) -> Result<(PageActions, BrowserOptions), ConnectorError> {
    let config = |detail: String| ConnectorError::Config { detail };
    let mut pages = PageActions::load(&settings.pages).map_err(|e| config(e.to_string()))?;
    if let Some(url) = &settings.base_url {
        pages = pages.with_base_url(url).map_err(|m| config(format!("base_url {m}")))?;
    }
    if let Some(profile) = &settings.profile {
        pages = pages.with_profile(profile).map_err(config)?;
    }
    let options = BrowserOptions {
        executable: settings.executable.clone(),
        data_dir: data_dir.to_path_buf(),
        headless: settings.headless,
        no_sandbox: settings.no_sandbox,
    };
    Ok((pages, options))
}

/// Opens a visible browser window on the platform's login page, in the profile the
/// connector uses, and returns when the person closes it. This is how an agent signs in
/// (and passes any verification): by hand. While a connector's browser runs on the same
/// profile (Chromium locks a profile to one process), it is refused, naming that browser;
/// one a crashed run left there is closed first.
pub fn open_login_window(pages: &PageActions, options: &BrowserOptions) -> Result<(), ConnectorError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| ConnectorError::Config { detail: format!("cannot start the browser runtime: {e}") })?;
    runtime.block_on(async {
        let chromium = Chromium::launch(options, &pages.profile, Duration::from_millis(pages.timeout_ms), true).await?;
        chromium.page.goto(format!("{}{}", pages.base_url, pages.session.login_url)).await.map_err(cdp)?;
        chromium.wait_closed().await;
        Ok(())
    })
}
