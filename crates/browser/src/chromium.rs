//! One Chromium over the DevTools protocol: launch with the platform's persistent
//! profile, one tab, and the few page operations the connector needs. Every page
//! operation is a short script whose inputs are passed as JSON (never spliced as code).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chromiumoxide::cdp::browser_protocol::page::{
    CaptureScreenshotFormat, DialogType, EventJavascriptDialogOpening, HandleJavaScriptDialogParams,
};
use chromiumoxide::handler::HandlerConfig;
use chromiumoxide::handler::viewport::Viewport;
use chromiumoxide::page::ScreenshotParams;
use chromiumoxide::{Browser, Page};
use futures::StreamExt;
use serde_json::Value;

use countersign_connectors::ConnectorError;

use crate::process::{self, BrowserProcess, OWNER_FLAG};

/// How to start Chromium.
#[derive(Debug, Clone)]
pub struct BrowserOptions {
    /// The browser binary; `None` looks for `$COUNTERSIGN_CHROMIUM`, then `chromium`,
    /// `chromium-browser`, `google-chrome` on `PATH`.
    pub executable: Option<PathBuf>,
    /// The app's data dir: profiles live in `browser-profiles/PLATFORM/STORE` under it.
    pub data_dir: PathBuf,
    /// No window (tests, CI). The agent's own sessions use a visible window.
    pub headless: bool,
    /// `--no-sandbox` (containers and CI, where the sandbox cannot start). Off by default.
    pub no_sandbox: bool,
}

impl BrowserOptions {
    pub fn new(data_dir: impl Into<PathBuf>) -> BrowserOptions {
        BrowserOptions { executable: None, data_dir: data_dir.into(), headless: true, no_sandbox: false }
    }

    /// The profile folder of `profile` (`PLATFORM/STORE`).
    pub fn profile_dir(&self, profile: &str) -> PathBuf {
        let mut dir = self.data_dir.join("browser-profiles");
        for part in profile.split('/') {
            dir.push(part);
        }
        dir
    }
}

/// Finds the browser binary (see [`BrowserOptions::executable`]).
pub fn find_chromium(explicit: Option<&Path>) -> Result<PathBuf, ConnectorError> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("COUNTERSIGN_CHROMIUM").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(ConnectorError::Config {
        detail:
            "no Chromium-family browser found: install `chromium` (scripts/setup.sh does) or set COUNTERSIGN_CHROMIUM"
                .into(),
    })
}

/// How long Chromium may take to start, and to close when asked.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(30);
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Chromium's switches for an automated session (those chromiumoxide's own launcher
/// passes, after puppeteer's), and more: nothing phones home, nothing offers to save a
/// password.
const FLAGS: &[&str] = &[
    "disable-background-networking",
    "enable-features=NetworkService,NetworkServiceInProcess",
    "disable-background-timer-throttling",
    "disable-backgrounding-occluded-windows",
    "disable-breakpad",
    "disable-client-side-phishing-detection",
    "disable-component-extensions-with-background-pages",
    "disable-default-apps",
    "disable-dev-shm-usage",
    "disable-hang-monitor",
    "disable-ipc-flooding-protection",
    "disable-popup-blocking",
    "disable-prompt-on-repost",
    "disable-renderer-backgrounding",
    "disable-sync",
    "force-color-profile=srgb",
    "metrics-recording-only",
    "no-first-run",
    "enable-automation",
    "password-store=basic",
    "use-mock-keychain",
    "enable-blink-features=IdleDetection",
    "lang=en_US",
    "disable-extensions",
    "disable-component-update",
    "disable-domain-reliability",
    "no-default-browser-check",
    "no-pings",
    "disable-save-password-bubble",
];
const DISABLED_FEATURES: &[&str] = &[
    "TranslateUI",
    "OptimizationHints",
    "MediaRouter",
    "AutofillServerCommunication",
    "PasswordManagerOnboarding",
    "Translate",
];

/// The command line after the program: [`FLAGS`], the profile, the DevTools socket on a
/// free port (its address read from stderr), and who started it ([`OWNER_FLAG`]).
fn launch_args(profile: &Path, visible: bool, no_sandbox: bool) -> Vec<String> {
    let mut args: Vec<String> = FLAGS.iter().map(|f| format!("--{f}")).collect();
    args.push(format!("--disable-features={}", DISABLED_FEATURES.join(",")));
    args.push("--remote-debugging-port=0".into());
    args.push(format!("--user-data-dir={}", profile.display()));
    args.push("--window-size=1280,900".into());
    args.push(format!("--{OWNER_FLAG}={}", std::process::id()));
    if no_sandbox {
        args.extend(["--no-sandbox".into(), "--disable-setuid-sandbox".into()]);
    }
    if !visible {
        args.extend(["--headless".into(), "--hide-scrollbars".into(), "--mute-audio".into()]);
    }
    args
}

/// Chromium's own preferences for a new profile: its password manager off, so a
/// password typed at the login never lands in the profile.
const PROFILE_PREFERENCES: &str = r#"{"credentials_enable_service":false,"credentials_enable_autosignin":false,"profile":{"password_manager_enabled":false}}"#;

fn prepare_profile(dir: &Path) -> Result<(), ConnectorError> {
    let io = |e: std::io::Error| ConnectorError::Io { path: dir.display().to_string(), source: e };
    let default = dir.join("Default");
    std::fs::create_dir_all(&default).map_err(io)?;
    let prefs = default.join("Preferences");
    if !prefs.exists() {
        std::fs::write(&prefs, PROFILE_PREFERENCES).map_err(io)?;
    }
    Ok(())
}

pub(crate) fn cdp(e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Transport(format!("browser: {e}"))
}

/// A JavaScript dialog (`alert`, `confirm`, `prompt`, `beforeunload`) a page opened.
/// Chromium reports it (`Page.javascriptDialogOpening`) and the page stops until it is
/// answered; the connector dismisses each one at once and never accepts one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JsDialog {
    /// `alert`, `confirm`, `prompt` or `beforeunload`.
    pub kind: &'static str,
    pub message: String,
    /// The frame that opened it.
    pub url: String,
}

impl std::fmt::Display for JsDialog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let message: String = self.message.chars().take(300).collect();
        write!(f, "a JavaScript {} dialog {message:?} (dismissed)", self.kind)
    }
}

/// Dialogs opened since they were last taken, with when the first of them opened.
type Dialogs = Arc<Mutex<(Vec<JsDialog>, Option<Instant>)>>;

/// How long a navigation may go on after a dialog was dismissed during a submit (an
/// `alert` in a form's submit handler lets the form go ahead) before the page is taken
/// as it stands.
const AFTER_DIALOG: Duration = Duration::from_millis(1500);

/// A running Chromium with one tab.
#[derive(Debug)]
pub(crate) struct Chromium {
    browser: Browser,
    /// Killed when dropped: a browser never outlives its `Chromium`.
    process: BrowserProcess,
    pub page: Page,
    handler: tokio::task::JoinHandle<()>,
    dialogs: Dialogs,
    dialog_handler: tokio::task::JoinHandle<()>,
}

impl Chromium {
    pub async fn launch(
        options: &BrowserOptions,
        profile: &str,
        timeout: Duration,
        visible: bool,
    ) -> Result<Chromium, ConnectorError> {
        let exe = find_chromium(options.executable.as_deref())?;
        let exe = std::fs::canonicalize(&exe).unwrap_or(exe);
        let dir = options.profile_dir(profile);
        prepare_profile(&dir)?;
        process::free_profile(&dir, &exe)?;
        let args = launch_args(&dir, visible || !options.headless, options.no_sandbox);
        let failed = |e: String| ConnectorError::Config {
            detail: format!("cannot start {} with profile {}: {e}", exe.display(), dir.display()),
        };
        let (process, ws) = BrowserProcess::start(&exe, args, LAUNCH_TIMEOUT).await.map_err(failed)?;
        let config = HandlerConfig {
            ignore_https_errors: true,
            ignore_invalid_messages: true,
            viewport: Some(Viewport::default()),
            context_ids: Vec::new(),
            request_timeout: timeout,
            request_intercept: false,
            cache_enabled: true,
        };
        // On an error from here on, `process` is dropped, and the browser killed.
        let (browser, mut handler) =
            Browser::connect_with_config(ws, config).await.map_err(|e| failed(e.to_string()))?;
        // The protocol's messages flow only while the handler is polled. A message this
        // build does not know is no reason to stop listening.
        let handler = tokio::spawn(async move { while handler.next().await.is_some() {} });
        let page = browser.new_page("about:blank").await.map_err(cdp)?;
        let dialogs = Dialogs::default();
        let dialog_handler = dismiss_dialogs(&page, dialogs.clone()).await?;
        Ok(Chromium { browser, process, page, handler, dialogs, dialog_handler })
    }

    /// Asks the browser to close, and kills it if it has not within a few seconds.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.browser.close()).await;
        if tokio::time::timeout(CLOSE_TIMEOUT, self.process.exited()).await.is_err() {
            self.process.kill();
            self.process.exited().await;
        }
        self.dialog_handler.abort();
        self.handler.abort();
    }

    /// Waits until the person closes the window.
    pub async fn wait_closed(mut self) {
        self.process.exited().await;
        self.dialog_handler.abort();
        self.handler.abort();
    }

    /// The JavaScript dialogs opened (and dismissed) since the last time they were taken.
    pub fn take_dialogs(&self) -> Vec<JsDialog> {
        let mut seen = self.dialogs.lock().unwrap_or_else(PoisonError::into_inner);
        seen.1 = None;
        std::mem::take(&mut seen.0)
    }

    fn dialog_since(&self) -> Option<Instant> {
        self.dialogs.lock().unwrap_or_else(PoisonError::into_inner).1
    }

    fn beforeunload_dismissed(&self) -> bool {
        self.dialogs.lock().unwrap_or_else(PoisonError::into_inner).0.iter().any(|d| d.kind == "beforeunload")
    }

    /// Opens `url` and waits for it to load. A `beforeunload` dialog on the page being
    /// left, once dismissed, cancels the navigation: that ends the wait too, on the old
    /// page, and the caller finds the dialog among [`Chromium::take_dialogs`].
    pub async fn goto(&self, url: &str) -> Result<(), ConnectorError> {
        let navigation = self.page.goto(url);
        tokio::pin!(navigation);
        loop {
            tokio::select! {
                went = &mut navigation => match went {
                    Ok(_) => break,
                    Err(_) if self.beforeunload_dismissed() => return Ok(()),
                    Err(e) => return Err(cdp(e)),
                },
                () = tokio::time::sleep(Duration::from_millis(20)) => {
                    if self.beforeunload_dismissed() {
                        return Ok(());
                    }
                }
            }
        }
        self.wait_loaded(None).await
    }

    /// Waits for the document to be loaded; with `left`, first for the page that set
    /// `left` as its marker to be gone (a navigation after a click). After a dismissed
    /// dialog, a navigation that has not come within [`AFTER_DIALOG`] is not waited for.
    pub async fn wait_loaded(&self, left: Option<&str>) -> Result<(), ConnectorError> {
        let check = match left {
            Some(marker) => format!(
                "(() => window.__countersign_marker !== {} && document.readyState === 'complete')()",
                json(&Value::String(marker.to_owned()))
            ),
            None => "(() => document.readyState === 'complete')()".to_owned(),
        };
        loop {
            // While the old page unloads, evaluation may fail: that is "not yet".
            if let Ok(Value::Bool(true)) = self.eval_raw(&check).await {
                return Ok(());
            }
            if self.dialog_since().is_some_and(|at| at.elapsed() > AFTER_DIALOG) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn eval_raw(&self, js: &str) -> Result<Value, ConnectorError> {
        let result = self.page.evaluate(js.to_owned()).await.map_err(cdp)?;
        Ok(result.value().cloned().unwrap_or(Value::Null))
    }

    /// Runs `function(arg) { … }` on the page with `arg` as JSON data.
    pub async fn call(&self, function: &str, arg: &Value) -> Result<Value, ConnectorError> {
        self.eval_raw(&format!("({function})({})", json(arg))).await
    }

    /// The tab's URL as the browser knows it (no page script: works while a page loads).
    pub async fn url(&self) -> Option<String> {
        self.page.url().await.ok().flatten()
    }

    pub async fn screenshot(&self) -> Result<Vec<u8>, ConnectorError> {
        let params = ScreenshotParams::builder().format(CaptureScreenshotFormat::Png).full_page(true).build();
        self.page.screenshot(params).await.map_err(cdp)
    }
}

/// Answers every JavaScript dialog the tab opens with "dismiss" (Cancel; OK is the only
/// answer an `alert` has), at once, and notes it for the connector, which fails the call
/// safe. A page is never allowed to wait on a dialog nobody sees, and nothing a dialog
/// asks is ever confirmed.
async fn dismiss_dialogs(page: &Page, dialogs: Dialogs) -> Result<tokio::task::JoinHandle<()>, ConnectorError> {
    let mut opening = page.event_listener::<EventJavascriptDialogOpening>().await.map_err(cdp)?;
    let tab = page.clone();
    Ok(tokio::spawn(async move {
        while let Some(event) = opening.next().await {
            let kind = match event.r#type {
                DialogType::Alert => "alert",
                DialogType::Confirm => "confirm",
                DialogType::Prompt => "prompt",
                DialogType::Beforeunload => "beforeunload",
            };
            {
                let mut seen = dialogs.lock().unwrap_or_else(PoisonError::into_inner);
                seen.0.push(JsDialog { kind, message: event.message.clone(), url: event.url.clone() });
                seen.1.get_or_insert_with(Instant::now);
            }
            if let Err(e) = tab.execute(HandleJavaScriptDialogParams::new(false)).await {
                tracing::warn!(error = %e, kind, "could not dismiss a JavaScript dialog");
            }
        }
    }))
}

/// JSON text of a value, safe to embed in a script (`</script>` cannot end it, U+2028
/// cannot end a line).
fn json(v: &Value) -> String {
    serde_json::to_string(v)
        .unwrap_or_else(|_| "null".into())
        .replace('<', "\\u003c")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

// ---------------------------------------------------------------- page scripts

/// `{url, title, status}` of the page now shown.
pub(crate) const OBSERVE: &str = r#"function() {
  const nav = performance.getEntriesByType('navigation')[0];
  return { url: location.href, title: document.title, status: (nav && nav.responseStatus) || 0 };
}"#;

/// Does the page ask for a person? `{login, verification, dialog}` each the first
/// matching selector (and a dialog's text) or null.
pub(crate) const SESSION: &str = r#"function(spec) {
  const first = (list) => list.find((s) => document.querySelector(s)) || null;
  const dialog = first(spec.dialogs);
  return {
    login: first(spec.login),
    verification: first(spec.verification),
    dialog: dialog && (dialog + ': ' + document.querySelector(dialog).textContent.trim().slice(0, 200)),
  };
}"#;

/// The first way the page differs from its description, or null.
pub(crate) const RECOGNISE: &str = r#"function(spec) {
  for (const s of spec.selectors) {
    if (!document.querySelector(s)) return 'expected element ' + s + ' is missing';
  }
  for (const t of spec.text) {
    const el = document.querySelector(t.selector);
    if (!el) return 'expected element ' + t.selector + ' is missing';
    const text = el.textContent.replace(/\s+/g, ' ').trim();
    if (t.equals !== null && text !== t.equals) return t.selector + ' reads ' + JSON.stringify(text) + ', expected ' + JSON.stringify(t.equals);
    if (t.contains !== null && !text.includes(t.contains)) return t.selector + ' reads ' + JSON.stringify(text) + ', expected it to contain ' + JSON.stringify(t.contains);
  }
  return null;
}"#;

/// `{field: text | null}` for each `{field, selector, attribute}`.
pub(crate) const READ: &str = r#"function(fields) {
  const out = {};
  for (const f of fields) {
    const el = document.querySelector(f.selector);
    if (!el) { out[f.field] = null; continue; }
    const v = f.attribute ? el.getAttribute(f.attribute) : el.textContent;
    out[f.field] = v === null ? null : v.replace(/\s+/g, ' ').trim();
  }
  return out;
}"#;

/// Fills each `{selector, value}`; returns the first problem or null. A select must
/// offer the value, a radio group must have it, and every control must hold the value
/// afterwards: a page that silently drops input is a page that changed.
pub(crate) const FILL: &str = r#"function(fills) {
  for (const f of fills) {
    const el = document.querySelector(f.selector);
    if (!el) return 'expected element ' + f.selector + ' is missing';
    if (el.disabled || el.readOnly) return f.selector + ' cannot be filled (disabled or read-only)';
    if (el.tagName === 'SELECT' && ![...el.options].some((o) => o.value === f.value)) {
      return f.selector + ' offers no option ' + JSON.stringify(f.value);
    }
    if (!['INPUT', 'SELECT', 'TEXTAREA'].includes(el.tagName) || ['radio', 'checkbox', 'submit', 'button', 'hidden', 'file'].includes(el.type)) {
      return f.selector + ' is not a text field or a list (' + el.tagName.toLowerCase() + (el.type ? ' ' + el.type : '') + ')';
    }
    el.focus();
    el.value = f.value;
    el.dispatchEvent(new Event('input', { bubbles: true }));
    el.dispatchEvent(new Event('change', { bubbles: true }));
    if (el.value !== f.value) return f.selector + ' did not take the value ' + JSON.stringify(f.value);
  }
  return null;
}"#;

/// Puts the idempotency key into the form's key field (`arg.selector`, often a hidden
/// input): an `input` the submit control's form sends (enabled, in that form), holding
/// the key afterwards. Returns the first problem or null.
pub(crate) const FILL_KEY: &str = r#"function(arg) {
  const el = document.querySelector(arg.selector);
  if (!el) return 'expected element ' + arg.selector + ' is missing';
  if (el.tagName !== 'INPUT' || ['checkbox', 'radio', 'submit', 'button', 'image', 'reset', 'file'].includes(el.type)) {
    return arg.selector + ' cannot carry the idempotency key (' + el.tagName.toLowerCase() + (el.type ? ' ' + el.type : '') + ')';
  }
  if (el.disabled) return arg.selector + ' is disabled: the form would not send the idempotency key';
  const submit = document.querySelector(arg.submit);
  if (!el.form || !submit || submit.form !== el.form) return arg.selector + ' is not in the form ' + arg.submit + ' submits';
  el.value = arg.key;
  if (el.value !== arg.key) return arg.selector + ' did not take the idempotency key';
  return null;
}"#;

/// Marks the current page (to notice when it is gone), then clicks the submit control.
pub(crate) const SUBMIT: &str = r#"function(arg) {
  const el = document.querySelector(arg.selector);
  if (!el) return 'expected element ' + arg.selector + ' is missing';
  window.__countersign_marker = arg.marker;
  el.click();
  return null;
}"#;

/// The page's DOM as HTML with the current values of form controls, and the value of
/// every element matching a redaction selector replaced by `[redacted]`.
pub(crate) const SNAPSHOT: &str = r#"function(redact) {
  const live = [...document.querySelectorAll('input, textarea, select')];
  const root = document.documentElement.cloneNode(true);
  const copies = [...root.querySelectorAll('input, textarea, select')];
  live.forEach((el, i) => {
    const c = copies[i];
    if (!c) return;
    if (el.tagName === 'TEXTAREA') c.textContent = el.value;
    else if (el.tagName === 'SELECT') [...c.options].forEach((o, j) => { if (el.options[j] && el.options[j].selected) o.setAttribute('selected', ''); else o.removeAttribute('selected'); });
    else if (el.type === 'checkbox' || el.type === 'radio') { if (el.checked) c.setAttribute('checked', ''); else c.removeAttribute('checked'); }
    else if (el.type !== 'password') c.setAttribute('value', el.value);
  });
  for (const c of root.querySelectorAll('input[type=password]')) c.setAttribute('value', '[redacted]');
  for (const sel of redact) {
    for (const c of root.querySelectorAll(sel)) {
      if (c.hasAttribute('value')) c.setAttribute('value', '[redacted]');
      if (c.tagName === 'TEXTAREA') c.textContent = '[redacted]';
    }
  }
  return '<!doctype html>\n' + root.outerHTML;
}"#;
