//! The seller center's web pages: what an agent uses in a browser when a platform has no
//! API for an operation. Server-rendered HTML (no script, unless a dialog is switched
//! on), a login form with a session cookie, an order page, cancel / refund / address
//! forms, a confirmation page, and an optional "verify it's you" interstitial.
//!
//! Every form applies the same operation as the JSON API (`ops.rs`, hence `rules.rs`),
//! through the same writer transaction; nothing here decides what the store allows.
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
//! `end_sessions = true` ends every session (a client sees the login page again).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::error::{ApiError, ErrorCode};
use crate::model::{Address, Order};
use crate::ops::{self, Reply};
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
    #[serde(default)]
    end_sessions: bool,
}

#[derive(Debug)]
struct Session {
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
        if let Some(d) = change.dialog_on {
            s.dialog_on = d;
        }
        s.clone()
    }

    fn settings(&self) -> Settings {
        self.settings.lock().unwrap_or_else(PoisonError::into_inner).clone()
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
    Router::new()
        .route("/seller/home", get(home))
        .route("/seller/login", get(login_page).post(login))
        .route("/seller/logout", axum::routing::post(logout))
        .route("/seller/verify", get(verify_page).post(verify))
        .route("/seller/orders/{order_id}", get(order_page))
        .route("/seller/orders/{order_id}/cancel", get(cancel_page).post(cancel))
        .route("/seller/orders/{order_id}/refund", get(refund_page).post(refund))
        .route("/seller/orders/{order_id}/address", get(address_page).post(address))
        .with_state(pages)
}

// ---------------------------------------------------------------- HTML helpers

/// Escapes text for HTML content and attribute values.
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

/// The path segment for an order id (without its `#`, which a URL would have to encode).
fn order_path(order_id: &str) -> String {
    format!("/seller/orders/{}", order_id.trim_start_matches('#'))
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
        .insert(sid.clone(), Session { csrf, verified: false, code: None });
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
        "<main id=\"home\"><h1>You are signed in</h1><p>Open an order at /seller/orders/ORDER_ID.</p><form method=\"post\" action=\"/seller/logout\"><button type=\"submit\" id=\"logout\">Sign out</button></form></main>",
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

// ---------------------------------------------------------------- orders

async fn load_order(pages: &Pages, raw_id: &str) -> Result<Order, ApiError> {
    let id = ops::normalize_order_id(raw_id);
    pages
        .store
        .read(move |conn| {
            crate::db::order(conn, &id)?
                .ok_or_else(|| ApiError::new(ErrorCode::OrderNotFound, format!("no order with id {id:?}")))
        })
        .await
}

fn address_text(a: &Address) -> String {
    [&a.address1, &a.address2, &a.city, &a.state, &a.zip, &a.country]
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

async fn order_page(State(pages): State<Pages>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let here = order_path(&id);
    if let Access::Denied(r) = pages.access(&headers, &here, Need::Read) {
        return r;
    }
    let order = match load_order(&pages, &id).await {
        Ok(o) => o,
        Err(e) => return error_page(&e),
    };
    let view = order.view();
    let mut items = String::new();
    for i in &order.items {
        let _ = write!(
            items,
            "<tr><td class=\"item-id\">{}</td><td>{}</td><td class=\"price\">{}</td></tr>",
            esc(&i.item_id),
            esc(&i.name),
            i.price
        );
    }
    let base = order_path(&order.order_id);
    let body = format!(
        "<main id=\"order\" data-order-id=\"{id}\"><h1>Order {id}</h1>\n<dl class=\"facts\">\n<dt>Status</dt><dd id=\"order-status\">{status}</dd>\n<dt>Customer</dt><dd id=\"order-customer\">{customer}</dd>\n<dt>Currency</dt><dd id=\"order-currency\">{currency}</dd>\n<dt>Paid</dt><dd id=\"order-paid\">{paid}</dd>\n<dt>Refunded</dt><dd id=\"order-refunded\">{refunded}</dd>\n<dt>Refundable</dt><dd id=\"order-refundable\">{refundable}</dd>\n<dt>Ship to</dt><dd id=\"order-address\">{address}</dd>\n</dl>\n<table id=\"order-items\"><thead><tr><th>Item</th><th>Name</th><th>Price</th></tr></thead><tbody>{items}</tbody></table>\n<nav id=\"order-actions\"><a href=\"{base}/cancel\">Cancel order</a> <a href=\"{base}/refund\">Refund</a> <a href=\"{base}/address\">Change shipping address</a></nav></main>",
        id = esc(&order.order_id),
        status = esc(order.status.as_str()),
        customer = esc(&order.customer_id),
        currency = esc(view.currency),
        paid = view.totals.paid,
        refunded = view.totals.refunded,
        refundable = view.totals.refundable,
        address = esc(&address_text(&order.shipping_address)),
    );
    page(StatusCode::OK, &format!("Order {}", order.order_id), &body)
}

/// Opens a form page: session (and verification), the order, then `render`.
async fn form_page(
    pages: &Pages,
    headers: &HeaderMap,
    id: &str,
    what: &str,
    render: impl FnOnce(&Order, &str, Layout) -> (String, String),
) -> Response {
    let here = format!("{}/{what}", order_path(id));
    let csrf = match pages.access(headers, &here, Need::Change) {
        Access::Granted { csrf, .. } => csrf,
        Access::Denied(r) => return r,
    };
    match load_order(pages, id).await {
        Ok(order) => {
            let settings = pages.center.settings();
            let (title, body) = render(&order, &csrf, settings.layout);
            page(StatusCode::OK, &title, &format!("{body}{}", dialog_script(&settings)))
        }
        Err(e) => error_page(&e),
    }
}

/// The script that opens the form's JavaScript dialog, if one is switched on.
fn dialog_script(settings: &Settings) -> String {
    let (open, message) = match settings.dialog {
        Dialog::None => return String::new(),
        Dialog::Alert => ("alert(M)", "Heads up: changes made here are final."),
        Dialog::Confirm => ("confirm(M)", "Are you sure? This cannot be undone."),
        Dialog::Prompt => ("prompt(M, '')", "Type CONFIRM to go ahead."),
    };
    let script = match (settings.dialog_on, settings.dialog) {
        (DialogOn::Open, _) => format!("{open};"),
        (DialogOn::Fill, _) => format!("form.addEventListener('change', () => {{ {open}; }}, {{ once: true }});"),
        (DialogOn::Submit, Dialog::Alert) => format!("form.addEventListener('submit', () => {{ {open}; }});"),
        (DialogOn::Submit, Dialog::Confirm) => {
            format!("form.addEventListener('submit', (e) => {{ if (!{open}) e.preventDefault(); }});")
        }
        (DialogOn::Submit, _) => {
            format!("form.addEventListener('submit', (e) => {{ if ({open} !== 'CONFIRM') e.preventDefault(); }});")
        }
    };
    let message = serde_json::to_string(message).unwrap_or_default();
    format!("\n<script>const M = {message}; const form = document.querySelector('main form'); {script}</script>")
}

/// Applies a posted form: session, verification and CSRF checks, then the API's own
/// operation in the store's writer transaction, then the confirmation (or refusal) page.
async fn submit<F>(pages: &Pages, headers: &HeaderMap, id: &str, what: &str, csrf: &str, done: &str, op: F) -> Response
where
    F: FnOnce(&rusqlite::Connection, &str) -> Result<Reply, ApiError> + Send + 'static,
{
    let here = format!("{}/{what}", order_path(id));
    let sid = match pages.access(headers, &here, Need::Change) {
        Access::Granted { sid, .. } => sid,
        Access::Denied(r) => return r,
    };
    if !csrf_ok(pages, &sid, csrf) {
        return error_page(&ApiError::new(ErrorCode::InvalidRequest, "the form expired: open it again"));
    }
    let order_id = ops::normalize_order_id(id);
    let oid = order_id.clone();
    let reply = match pages.store.write(None, move |conn| op(conn, &oid)).await {
        Ok((reply, _)) => reply,
        Err(e) => return error_page(&e),
    };
    if !reply.status.is_success() {
        let parsed: serde_json::Value = serde_json::from_str(&reply.body).unwrap_or_default();
        let code = parsed["error"]["code"].as_str().unwrap_or("internal").to_owned();
        let message = parsed["error"]["message"].as_str().unwrap_or("the store refused the change").to_owned();
        let body = format!(
            "<main id=\"refused\"><h1>Not done</h1><p id=\"error-message\">{}</p><p id=\"error-code\">{}</p><p><a href=\"{}\">Back to the order</a></p></main>",
            esc(&message),
            esc(&code),
            order_path(&order_id)
        );
        return page(reply.status, "Not done", &body);
    }
    let status = match load_order(pages, &order_id).await {
        Ok(o) => o.status.as_str().to_owned(),
        Err(e) => return error_page(&e),
    };
    let body = format!(
        "<main id=\"confirmation\"><h1>Done</h1><p id=\"confirmation-message\">Order {} {done}.</p><dl><dt>Status</dt><dd id=\"order-status\">{}</dd></dl><p><a href=\"{}\">Back to the order</a></p></main>",
        esc(&order_id),
        esc(&status),
        order_path(&order_id)
    );
    page(StatusCode::OK, "Done", &body)
}

fn hidden_csrf(csrf: &str) -> String {
    format!("<input type=\"hidden\" name=\"csrf_token\" value=\"{}\">", esc(csrf))
}

// ---------------------------------------------------------------- cancel

async fn cancel_page(State(pages): State<Pages>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    form_page(&pages, &headers, &id, "cancel", |order, csrf, layout| {
        let action = format!("{}/cancel", order_path(&order.order_id));
        let oid = esc(&order.order_id);
        let body = match layout {
            Layout::Standard => {
                let options: String =
                    crate::CANCEL_REASONS.iter().map(|r| format!("<option value=\"{0}\">{0}</option>", esc(r))).collect();
                format!(
                    "<main id=\"cancel\"><h1>Cancel order {oid}</h1>\n<form id=\"cancel-form\" method=\"post\" action=\"{action}\">{}\n<label>Reason <select name=\"reason\" id=\"cancel-reason\"><option value=\"\">Choose a reason</option>{options}</select></label>\n<button type=\"submit\" id=\"cancel-submit\">Cancel order</button>\n</form></main>",
                    hidden_csrf(csrf)
                )
            }
            Layout::Changed => {
                let options: String = crate::CANCEL_REASONS
                    .iter()
                    .map(|r| format!("<label><input type=\"radio\" name=\"reason\" value=\"{0}\"> {0}</label>", esc(r)))
                    .collect();
                format!(
                    "<main id=\"cancellation\"><h1>Request a cancellation</h1><p>Order {oid}</p>\n<form id=\"cancellation-request\" method=\"post\" action=\"{action}\">{}\n<fieldset><legend>Why?</legend>{options}</fieldset>\n<button type=\"submit\" id=\"request-cancellation\">Request cancellation</button>\n</form></main>",
                    hidden_csrf(csrf)
                )
            }
        };
        (format!("Cancel order {}", order.order_id), body)
    })
    .await
}

#[derive(Debug, Deserialize)]
struct CancelForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    reason: String,
}

async fn cancel(
    State(pages): State<Pages>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CancelForm>,
) -> Response {
    let request = ops::CancelRequest { reason: form.reason };
    submit(&pages, &headers, &id, "cancel", &form.csrf_token, "was cancelled", move |conn, oid| {
        ops::cancel_order(conn, oid, request)
    })
    .await
}

// ---------------------------------------------------------------- refund

async fn refund_page(State(pages): State<Pages>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    form_page(&pages, &headers, &id, "refund", |order, csrf, layout| {
        let action = format!("{}/refund", order_path(&order.order_id));
        let oid = esc(&order.order_id);
        let refundable = order.refundable();
        let body = match layout {
            Layout::Standard => format!(
                "<main id=\"refund\"><h1>Refund order {oid}</h1><p>Refundable: <span id=\"refund-refundable\">{refundable}</span> USD</p>\n<form id=\"refund-form\" method=\"post\" action=\"{action}\">{}\n<label>Amount (USD) <input name=\"amount\" id=\"refund-amount\" inputmode=\"decimal\"></label>\n<label>Reason <input name=\"reason\" id=\"refund-reason\"></label>\n<button type=\"submit\" id=\"refund-submit\">Refund</button>\n</form></main>",
                hidden_csrf(csrf)
            ),
            Layout::Changed => format!(
                "<main id=\"refund-v2\"><h1>Issue a refund</h1><p>Order {oid}</p>\n<form id=\"refund-request\" method=\"post\" action=\"{action}\">{}\n<label>How much? <input name=\"amount\" id=\"amount\"></label>\n<textarea name=\"reason\" id=\"note\"></textarea>\n<button type=\"submit\" id=\"issue-refund\">Issue refund</button>\n</form></main>",
                hidden_csrf(csrf)
            ),
        };
        (format!("Refund order {}", order.order_id), body)
    })
    .await
}

#[derive(Debug, Deserialize)]
struct RefundForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    reason: String,
}

async fn refund(
    State(pages): State<Pages>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<RefundForm>,
) -> Response {
    // The amount goes to the API's operation as the JSON string it would get there.
    let amount = match serde_json::value::to_raw_value(form.amount.trim()) {
        Ok(raw) => raw,
        Err(e) => return error_page(&ApiError::internal(e)),
    };
    let reason = Some(form.reason).filter(|r| !r.trim().is_empty());
    let request = ops::RefundRequest { amount, currency: crate::money::CURRENCY.to_owned(), reason };
    submit(&pages, &headers, &id, "refund", &form.csrf_token, "was refunded", move |conn, oid| {
        ops::partial_refund(conn, oid, request)
    })
    .await
}

// ---------------------------------------------------------------- address

const ADDRESS_FIELDS: [(&str, &str); 6] = [
    ("address1", "Address line 1"),
    ("address2", "Address line 2"),
    ("city", "City"),
    ("state", "State"),
    ("country", "Country"),
    ("zip", "ZIP"),
];

async fn address_page(State(pages): State<Pages>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    form_page(&pages, &headers, &id, "address", |order, csrf, layout| {
        let action = format!("{}/address", order_path(&order.order_id));
        let oid = esc(&order.order_id);
        let (form_id, prefix, button) = match layout {
            Layout::Standard => ("address-form", "address-", "<button type=\"submit\" id=\"address-submit\">Save address</button>"),
            Layout::Changed => ("shipping-update", "ship-", "<button type=\"submit\" id=\"update-shipping\">Update shipping</button>"),
        };
        let fields: String = ADDRESS_FIELDS
            .iter()
            .map(|(name, label)| format!("<label>{label} <input name=\"{name}\" id=\"{prefix}{name}\"></label>\n"))
            .collect();
        let body = format!(
            "<main id=\"address\"><h1>Change the shipping address of order {oid}</h1>\n<p>Now: <span id=\"address-current\">{}</span></p>\n<form id=\"{form_id}\" method=\"post\" action=\"{action}\">{}\n{fields}{button}\n</form></main>",
            esc(&address_text(&order.shipping_address)),
            hidden_csrf(csrf)
        );
        (format!("Change address of order {}", order.order_id), body)
    })
    .await
}

#[derive(Debug, Deserialize)]
struct AddressForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    address1: String,
    #[serde(default)]
    address2: String,
    #[serde(default)]
    city: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    country: String,
    #[serde(default)]
    zip: String,
}

async fn address(
    State(pages): State<Pages>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<AddressForm>,
) -> Response {
    let AddressForm { csrf_token, address1, address2, city, state, country, zip } = form;
    let new = Address { address1, address2, city, state, country, zip };
    submit(&pages, &headers, &id, "address", &csrf_token, "has a new shipping address", move |conn, oid| {
        ops::change_shipping_address(conn, oid, new)
    })
    .await
}
