//! The seller center's web pages: what an agent uses in a browser when a platform has no
//! API for an operation. Server-rendered HTML (no script, unless a dialog is switched
//! on), a login form with a session cookie, an order page, cancel / refund / address
//! forms, a confirmation page, and an optional "verify it's you" interstitial.
//!
//! Every form applies the same operation as the JSON API (`ops.rs`, hence `rules.rs`),
//! through the same writer transaction; nothing here decides what the store allows.
//! Every form carries the session's CSRF token and a one-time `form_token` (a form
//! nonce), which the store honours as the API honours an `Idempotency-Key`
//! (`idempotency.rs`, one place for both).
//!
//! Switches (`PUT /seller-center/settings`, behind the API token) exercise clients:
//! - `verify_sensitive`: opening or posting a form first asks the session to verify
//!   itself with a one-time code (written to the server log, as if sent to the owner);
//!   `verify_all`: every page does, the order page too;
//! - `layout = "changed"`: the forms come in a redesigned layout (other ids, other
//!   controls), as after a platform's redesign;
//! - `dialog = "alert" | "confirm" | "prompt"` (`"none"` to stop) with `dialog_on =
//!   "open" | "fill" | "submit"`: the forms open a JavaScript dialog when the page loads,
//!   when a field changes, or in the form's submit handler (a `confirm` or `prompt`
//!   there lets the form go only when answered yes / `CONFIRM`; an `alert` lets it go).
//!
//! - `slow_submits = N` with `slow_ms = MS`: the next N order-form submits are applied,
//!   then answered only after MS milliseconds (a slow seller center: the change is made,
//!   the answer comes too late for an impatient client).
//!
//! `end_sessions = true` ends every session (a client sees the login page again).
//!
//! This file holds what every page shares (settings, sessions, login and verification,
//! HTML helpers); `orders.rs` the order page and its forms; `messages.rs` the buyer
//! messages (inbox, thread, reply / note / status forms).

mod messages;
mod orders;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::error::{ApiError, ErrorCode};
use crate::{ApiToken, DemoStore};

const COOKIE: &str = "cs_session";

/// How the forms are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    #[default]
    Standard,
    Changed,
}

/// A JavaScript dialog the forms open (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialog {
    #[default]
    None,
    Alert,
    Confirm,
    Prompt,
}

/// When the forms open their dialog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DialogOn {
    /// While the page loads.
    #[default]
    Open,
    /// When a field changes.
    Fill,
    /// In the form's submit handler.
    Submit,
}

/// The seller center's switches (see the module docs).
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub verify_sensitive: bool,
    #[serde(default)]
    pub verify_all: bool,
    #[serde(default)]
    pub layout: Layout,
    #[serde(default)]
    pub dialog: Dialog,
    #[serde(default)]
    pub dialog_on: DialogOn,
    #[serde(default)]
    pub slow_submits: u32,
    #[serde(default)]
    pub slow_ms: u64,
}

/// A change of settings, as `PUT /seller-center/settings` takes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SettingsChange {
    verify_sensitive: Option<bool>,
    verify_all: Option<bool>,
    layout: Option<Layout>,
    dialog: Option<Dialog>,
    dialog_on: Option<DialogOn>,
    slow_submits: Option<u32>,
    slow_ms: Option<u64>,
    #[serde(default)]
    end_sessions: bool,
}

#[derive(Debug)]
struct Session {
    /// Who signed in (the author name of the messages posted from this session).
    user: String,
    csrf: String,
    verified: bool,
    /// The code the verification page last issued, if any.
    code: Option<String>,
}

/// Sessions and settings, shared by the pages and the settings endpoint.
#[derive(Debug, Default)]
pub(crate) struct SellerCenter {
    settings: Mutex<Settings>,
    sessions: Mutex<HashMap<String, Session>>,
}

impl SellerCenter {
    pub(crate) fn change(&self, change: SettingsChange) -> Settings {
        if change.end_sessions {
            self.sessions.lock().unwrap_or_else(PoisonError::into_inner).clear();
        }
        let mut s = self.settings.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(v) = change.verify_sensitive {
            s.verify_sensitive = v;
        }
        if let Some(v) = change.verify_all {
            s.verify_all = v;
        }
        if let Some(l) = change.layout {
            s.layout = l;
        }
        if let Some(d) = change.dialog {
            s.dialog = d;
        }
        if let Some(n) = change.slow_submits {
            s.slow_submits = n;
        }
        if let Some(ms) = change.slow_ms {
            s.slow_ms = ms;
        }
        if let Some(d) = change.dialog_on {
            s.dialog_on = d;
        }
        s.clone()
    }

    fn settings(&self) -> Settings {
        self.settings.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// How long to hold the answer to the submit just applied (`slow_submits`: one fewer).
    fn take_slowness(&self) -> Option<std::time::Duration> {
        let mut s = self.settings.lock().unwrap_or_else(PoisonError::into_inner);
        (s.slow_submits > 0).then(|| {
            s.slow_submits -= 1;
            std::time::Duration::from_millis(s.slow_ms)
        })
    }

    fn with_session<T>(&self, id: &str, f: impl FnOnce(&mut Session) -> T) -> Option<T> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner).get_mut(id).map(f)
    }
}

#[derive(Clone)]
struct Pages {
    store: DemoStore,
    token: Arc<ApiToken>,
    center: Arc<SellerCenter>,
}

pub(crate) fn router(store: DemoStore, token: Arc<ApiToken>, center: Arc<SellerCenter>) -> Router {
    let pages = Pages { store, token, center };
    let router = Router::new()
        .route("/seller/home", get(home))
        .route("/seller/login", get(login_page).post(login))
        .route("/seller/logout", axum::routing::post(logout))
        .route("/seller/verify", get(verify_page).post(verify));
    messages::routes(orders::routes(router)).with_state(pages)
}

// ---------------------------------------------------------------- HTML helpers

/// Escapes text for HTML content and attribute values.
/// The hidden fields every form of these pages carries: the session's CSRF token and the
/// one-time form token (honoured as an idempotency key).
#[derive(Debug, Deserialize)]
struct Common {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    form_token: String,
}

fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} · Demo Seller Center</title></head>\n<body>\n<header><a href=\"/seller/login\">Demo Seller Center</a></header>\n{body}\n</body></html>\n",
        esc(title)
    );
    let mut response = (status, html).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn redirect(to: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

fn error_page(error: &ApiError) -> Response {
    let code = serde_json::to_value(error.code).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    page(
        error.status(),
        "Not done",
        &format!(
            "<main id=\"refused\"><h1>Not done</h1><p id=\"error-message\">{}</p><p id=\"error-code\">{}</p></main>",
            esc(&error.message),
            esc(&code)
        ),
    )
}

fn hidden_csrf(csrf: &str) -> String {
    format!("<input type=\"hidden\" name=\"csrf_token\" value=\"{}\">", esc(csrf))
}

/// A form's one-time `form_token`: a fresh nonce the page issues, which the client may
/// replace with its own idempotency key (see `Idempotency::from_form`).
fn hidden_form_token(token: &str) -> String {
    format!("<input type=\"hidden\" name=\"form_token\" value=\"{}\">", esc(token))
}

fn random_hex(bytes: usize) -> Result<String, ApiError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(ApiError::internal)?;
    Ok(hex::encode(buf))
}

// ---------------------------------------------------------------- sessions

fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

/// What a page needs of the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// A session (the verification pages themselves).
    Session,
    /// A session, verified if `verify_all` is on (pages that show something).
    Read,
    /// A session, verified if `verify_sensitive` or `verify_all` is on (forms).
    Change,
}

/// What a page handler gets from a request: the session, or the response to send
/// instead (the login page, or the verification interstitial).
enum Access {
    Granted { sid: String, csrf: String },
    Denied(Response),
}

fn login_redirect(next: &str) -> Response {
    redirect(&format!("/seller/login?next={}", encode_query(next)))
}

fn encode_query(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Pages {
    fn access(&self, headers: &HeaderMap, here: &str, need: Need) -> Access {
        let Some(sid) = session_id(headers) else {
            return Access::Denied(login_redirect(here));
        };
        let settings = self.center.settings();
        let verify = match need {
            Need::Session => false,
            Need::Read => settings.verify_all,
            Need::Change => settings.verify_all || settings.verify_sensitive,
        };
        match self.center.with_session(&sid, |s| (s.csrf.clone(), s.verified)) {
            None => Access::Denied(login_redirect(here)),
            Some((_, false)) if verify => {
                Access::Denied(redirect(&format!("/seller/verify?next={}", encode_query(here))))
            }
            Some((csrf, _)) => Access::Granted { sid, csrf },
        }
    }
}

/// The user name the session signed in with.
fn session_user(pages: &Pages, sid: &str) -> Option<String> {
    pages.center.with_session(sid, |s| s.user.clone())
}

fn csrf_ok(pages: &Pages, sid: &str, presented: &str) -> bool {
    pages.center.with_session(sid, |s| ApiToken(s.csrf.clone()).matches(presented)).unwrap_or(false)
}

// ---------------------------------------------------------------- login and verification

#[derive(Debug, Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// Only a local path is a place to go back to (never another site).
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with("/seller/") && !n.starts_with("//") => n,
        _ => "/seller/login",
    }
}

async fn login_page(Query(q): Query<NextQuery>) -> Response {
    let next = safe_next(q.next.as_deref());
    page(
        StatusCode::OK,
        "Sign in",
        &format!(
            "<main id=\"sign-in\"><h1>Sign in to your seller center</h1>\n<form id=\"login\" method=\"post\" action=\"/seller/login\">\n<input type=\"hidden\" name=\"next\" value=\"{}\">\n<label>User <input name=\"user\" id=\"login-user\" autocomplete=\"username\"></label>\n<label>Password <input type=\"password\" name=\"password\" id=\"login-password\" autocomplete=\"current-password\"></label>\n<button type=\"submit\" id=\"login-submit\">Sign in</button>\n</form></main>",
            esc(next)
        ),
    )
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

/// Any user name with the store's password (its API token) opens a session.
async fn login(State(pages): State<Pages>, Form(form): Form<LoginForm>) -> Response {
    if form.user.trim().is_empty() || !pages.token.matches(form.password.trim()) {
        return page(
            StatusCode::UNAUTHORIZED,
            "Sign in",
            "<main id=\"sign-in\"><h1>Sign in to your seller center</h1><p id=\"error-message\">Wrong user or password.</p><p><a href=\"/seller/login\">Try again</a></p></main>",
        );
    }
    let (sid, csrf) = match (random_hex(32), random_hex(16)) {
        (Ok(sid), Ok(csrf)) => (sid, csrf),
        (Err(e), _) | (_, Err(e)) => return error_page(&e),
    };
    pages
        .center
        .sessions
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(sid.clone(), Session { user: form.user.trim().to_owned(), csrf, verified: false, code: None });
    let next = safe_next(form.next.as_deref());
    let next = if next == "/seller/login" { "/seller/home" } else { next };
    let mut response = redirect(next);
    if let Ok(v) =
        HeaderValue::from_str(&format!("{COOKIE}={sid}; Path=/seller; Max-Age=28800; HttpOnly; SameSite=Strict"))
    {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

async fn home(State(pages): State<Pages>, headers: HeaderMap) -> Response {
    if let Access::Denied(r) = pages.access(&headers, "/seller/home", Need::Read) {
        return r;
    }
    page(
        StatusCode::OK,
        "Seller center",
        "<main id=\"home\"><h1>You are signed in</h1><p>Open an order at /seller/orders/ORDER_ID.</p><p><a href=\"/seller/messages\" id=\"messages-link\">Buyer messages</a></p><form method=\"post\" action=\"/seller/logout\"><button type=\"submit\" id=\"logout\">Sign out</button></form></main>",
    )
}

async fn logout(State(pages): State<Pages>, headers: HeaderMap) -> Response {
    if let Some(sid) = session_id(&headers) {
        pages.center.sessions.lock().unwrap_or_else(PoisonError::into_inner).remove(&sid);
    }
    redirect("/seller/login")
}

async fn verify_page(State(pages): State<Pages>, headers: HeaderMap, Query(q): Query<NextQuery>) -> Response {
    let next = safe_next(q.next.as_deref()).to_owned();
    let Access::Granted { sid, csrf } = pages.access(&headers, &next, Need::Session) else {
        return login_redirect(&next);
    };
    let code = match getrandom::u32() {
        Ok(n) => format!("{:06}", n % 1_000_000),
        Err(e) => return error_page(&ApiError::internal(e)),
    };
    // Demo only: the code goes to the server log, as a real platform would text it.
    tracing::info!(%code, "seller center verification code");
    pages.center.with_session(&sid, |s| s.code = Some(code));
    page(
        StatusCode::OK,
        "Verify it's you",
        &format!(
            "<main id=\"verify\"><h1>Verify it's you</h1>\n<p>We sent a 6-digit code to the account owner. Enter it to continue.</p>\n<form id=\"verify-form\" method=\"post\" action=\"/seller/verify\">\n<input type=\"hidden\" name=\"csrf_token\" value=\"{}\">\n<input type=\"hidden\" name=\"next\" value=\"{}\">\n<label>Code <input name=\"code\" id=\"verify-code\" inputmode=\"numeric\" autocomplete=\"one-time-code\"></label>\n<button type=\"submit\" id=\"verify-submit\">Verify</button>\n</form></main>",
            esc(&csrf),
            esc(&next)
        ),
    )
}

#[derive(Debug, Deserialize)]
struct VerifyForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    code: String,
    next: Option<String>,
}

async fn verify(State(pages): State<Pages>, headers: HeaderMap, Form(form): Form<VerifyForm>) -> Response {
    let next = safe_next(form.next.as_deref()).to_owned();
    let Access::Granted { sid, .. } = pages.access(&headers, &next, Need::Session) else {
        return login_redirect(&next);
    };
    if !csrf_ok(&pages, &sid, &form.csrf_token) {
        return error_page(&ApiError::new(ErrorCode::InvalidRequest, "the form expired: open it again"));
    }
    let ok = pages
        .center
        .with_session(&sid, |s| {
            let ok = s.code.as_deref().is_some_and(|c| ApiToken(c.to_owned()).matches(form.code.trim()));
            s.code = None;
            s.verified |= ok;
            ok
        })
        .unwrap_or(false);
    if ok { redirect(&next) } else { redirect(&format!("/seller/verify?next={}", encode_query(&next))) }
}
