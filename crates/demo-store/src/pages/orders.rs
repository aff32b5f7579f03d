//! The order page and its forms (cancel, refund, shipping address): each posted form
//! applies the JSON API's own operation.
//!
//! Each form carries a one-time `form_token`, as real seller centers carry a form nonce:
//! the page fills in a fresh random one, and a client that must be able to retry puts its
//! own idempotency key there (the browser connector puts the step's). A posted token is
//! honoured exactly as the API's `Idempotency-Key` (`Idempotency::from_form`, in the
//! store's one writer transaction): the same token with the same form and fields applies
//! once and answers the first result again (the confirmation, or the refusal, rendered
//! from the stored outcome, `data-replayed="true"`); the same token with another form or
//! other fields is refused (`idempotency_key_reused`). A form posted without a token is
//! applied each time, like an API write without the header.

use std::fmt::Write as _;

use axum::Router;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use super::{
    Access, Common, Dialog, DialogOn, Layout, Need, Pages, Settings, csrf_ok, error_page, esc, hidden_csrf,
    hidden_form_token, page, random_hex,
};
use crate::error::{ApiError, ErrorCode};
use crate::idempotency::Idempotency;
use crate::model::{Address, Order};
use crate::ops::{self, Reply};

/// The order pages' routes.
pub(super) fn routes(router: Router<Pages>) -> Router<Pages> {
    router
        .route("/seller/orders/{order_id}", get(order_page))
        .route("/seller/orders/{order_id}/cancel", get(cancel_page).post(cancel))
        .route("/seller/orders/{order_id}/refund", get(refund_page).post(refund))
        .route("/seller/orders/{order_id}/address", get(address_page).post(address))
}

/// The path segment for an order id (without its `#`, which a URL would have to encode).
fn order_path(order_id: &str) -> String {
    format!("/seller/orders/{}", order_id.trim_start_matches('#'))
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

/// Opens a form page: session (and verification), the order, then `render`, which gets
/// the form's hidden fields (the session's CSRF token and a fresh `form_token`).
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
    let token = match random_hex(16) {
        Ok(t) => t,
        Err(e) => return error_page(&e),
    };
    let hidden = format!("{}{}", hidden_csrf(&csrf), hidden_form_token(&token));
    match load_order(pages, id).await {
        Ok(order) => {
            let settings = pages.center.settings();
            let (title, body) = render(&order, &hidden, settings.layout);
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
/// operation in the store's writer transaction, under the form's token if it carries one
/// (`fields`: what the form asks for, the token's fingerprint), then the confirmation
/// (or refusal) page, rendered from the operation's answer, which is what the store
/// keeps under the token: a replay shows the same page.
async fn submit<F>(
    pages: &Pages,
    headers: &HeaderMap,
    (id, what): (&str, &str),
    common: &Common,
    fields: &[&str],
    done: &str,
    op: F,
) -> Response
where
    F: FnOnce(&rusqlite::Connection, &str) -> Result<Reply, ApiError> + Send + 'static,
{
    let here = format!("{}/{what}", order_path(id));
    let sid = match pages.access(headers, &here, Need::Change) {
        Access::Granted { sid, .. } => sid,
        Access::Denied(r) => return r,
    };
    if !csrf_ok(pages, &sid, &common.csrf_token) {
        return error_page(&ApiError::new(ErrorCode::InvalidRequest, "the form expired: open it again"));
    }
    // Each field on a line of its own, its line breaks escaped: two different forms
    // never make the same text.
    let request: Vec<String> = fields.iter().map(|f| f.replace('\\', "\\\\").replace('\n', "\\n")).collect();
    let idem = match Idempotency::from_form(&common.form_token, &here, &request.join("\n")) {
        Ok(idem) => idem,
        Err(e) => return error_page(&e),
    };
    let order_id = ops::normalize_order_id(id);
    let oid = order_id.clone();
    let (reply, replayed) = match pages.store.write(idem, move |conn| op(conn, &oid)).await {
        Ok(done) => done,
        Err(e) => return error_page(&e),
    };
    // A slow seller center: the change is made; the answer comes late.
    if let Some(wait) = pages.center.take_slowness() {
        tokio::time::sleep(wait).await;
    }
    let answer: serde_json::Value = serde_json::from_str(&reply.body).unwrap_or_default();
    if !reply.status.is_success() {
        let code = answer["error"]["code"].as_str().unwrap_or("internal");
        let message = answer["error"]["message"].as_str().unwrap_or("the store refused the change");
        let body = format!(
            "<main id=\"refused\" data-replayed=\"{replayed}\"><h1>Not done</h1><p id=\"error-message\">{}</p><p id=\"error-code\">{}</p><p><a href=\"{}\">Back to the order</a></p></main>",
            esc(message),
            esc(code),
            order_path(&order_id)
        );
        return page(reply.status, "Not done", &body);
    }
    // The order as the operation left it (on a replay, as the first submit left it).
    let order = &answer["order"];
    let text = |v: &serde_json::Value| esc(v.as_str().unwrap_or_default());
    let body = format!(
        "<main id=\"confirmation\" data-replayed=\"{replayed}\"><h1>Done</h1><p id=\"confirmation-message\">Order {} {done}.</p><dl><dt>Status</dt><dd id=\"order-status\">{}</dd><dt>Refunded</dt><dd id=\"order-refunded\">{}</dd></dl><p><a href=\"{}\">Back to the order</a></p></main>",
        esc(&order_id),
        text(&order["status"]),
        text(&order["totals"]["refunded"]),
        order_path(&order_id)
    );
    page(StatusCode::OK, "Done", &body)
}

// ---------------------------------------------------------------- cancel

async fn cancel_page(State(pages): State<Pages>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    form_page(&pages, &headers, &id, "cancel", |order, hidden, layout| {
        let action = format!("{}/cancel", order_path(&order.order_id));
        let oid = esc(&order.order_id);
        let body = match layout {
            Layout::Standard => {
                let options: String =
                    crate::CANCEL_REASONS.iter().map(|r| format!("<option value=\"{0}\">{0}</option>", esc(r))).collect();
                format!(
                    "<main id=\"cancel\"><h1>Cancel order {oid}</h1>\n<form id=\"cancel-form\" method=\"post\" action=\"{action}\">{hidden}\n<label>Reason <select name=\"reason\" id=\"cancel-reason\"><option value=\"\">Choose a reason</option>{options}</select></label>\n<button type=\"submit\" id=\"cancel-submit\">Cancel order</button>\n</form></main>"
                )
            }
            Layout::Changed => {
                let options: String = crate::CANCEL_REASONS
                    .iter()
                    .map(|r| format!("<label><input type=\"radio\" name=\"reason\" value=\"{0}\"> {0}</label>", esc(r)))
                    .collect();
                format!(
                    "<main id=\"cancellation\"><h1>Request a cancellation</h1><p>Order {oid}</p>\n<form id=\"cancellation-request\" method=\"post\" action=\"{action}\">{hidden}\n<fieldset><legend>Why?</legend>{options}</fieldset>\n<button type=\"submit\" id=\"request-cancellation\">Request cancellation</button>\n</form></main>"
                )
            }
        };
        (format!("Cancel order {}", order.order_id), body)
    })
    .await
}

#[derive(Debug, Deserialize)]
struct CancelForm {
    #[serde(flatten)]
    common: Common,
    #[serde(default)]
    reason: String,
}

async fn cancel(
    State(pages): State<Pages>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CancelForm>,
) -> Response {
    let fields = [form.reason.as_str()];
    let request = ops::CancelRequest { reason: form.reason.clone() };
    submit(&pages, &headers, (&id, "cancel"), &form.common, &fields, "was cancelled", move |conn, oid| {
        ops::cancel_order(conn, oid, request)
    })
    .await
}

// ---------------------------------------------------------------- refund

async fn refund_page(State(pages): State<Pages>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    form_page(&pages, &headers, &id, "refund", |order, hidden, layout| {
        let action = format!("{}/refund", order_path(&order.order_id));
        let oid = esc(&order.order_id);
        let refundable = order.refundable();
        let body = match layout {
            Layout::Standard => format!(
                "<main id=\"refund\"><h1>Refund order {oid}</h1><p>Refundable: <span id=\"refund-refundable\">{refundable}</span> USD</p>\n<form id=\"refund-form\" method=\"post\" action=\"{action}\">{hidden}\n<label>Amount (USD) <input name=\"amount\" id=\"refund-amount\" inputmode=\"decimal\"></label>\n<label>Reason <input name=\"reason\" id=\"refund-reason\"></label>\n<button type=\"submit\" id=\"refund-submit\">Refund</button>\n</form></main>"
            ),
            Layout::Changed => format!(
                "<main id=\"refund-v2\"><h1>Issue a refund</h1><p>Order {oid}</p>\n<form id=\"refund-request\" method=\"post\" action=\"{action}\">{hidden}\n<label>How much? <input name=\"amount\" id=\"amount\"></label>\n<textarea name=\"reason\" id=\"note\"></textarea>\n<button type=\"submit\" id=\"issue-refund\">Issue refund</button>\n</form></main>"
            ),
        };
        (format!("Refund order {}", order.order_id), body)
    })
    .await
}

#[derive(Debug, Deserialize)]
struct RefundForm {
    #[serde(flatten)]
    common: Common,
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
    let fields = [form.amount.as_str(), form.reason.as_str()];
    let reason = Some(form.reason.clone()).filter(|r| !r.trim().is_empty());
    let request = ops::RefundRequest { amount, currency: crate::money::CURRENCY.to_owned(), reason };
    submit(&pages, &headers, (&id, "refund"), &form.common, &fields, "was refunded", move |conn, oid| {
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
    form_page(&pages, &headers, &id, "address", |order, hidden, layout| {
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
            "<main id=\"address\"><h1>Change the shipping address of order {oid}</h1>\n<p>Now: <span id=\"address-current\">{}</span></p>\n<form id=\"{form_id}\" method=\"post\" action=\"{action}\">{hidden}\n{fields}{button}\n</form></main>",
            esc(&address_text(&order.shipping_address)),
        );
        (format!("Change address of order {}", order.order_id), body)
    })
    .await
}

#[derive(Debug, Deserialize)]
struct AddressForm {
    #[serde(flatten)]
    common: Common,
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
    let AddressForm { common, address1, address2, city, state, country, zip } = form;
    let new = Address { address1, address2, city, state, country, zip };
    let fields = [&new.address1, &new.address2, &new.city, &new.state, &new.country, &new.zip].map(String::as_str);
    let done = "has a new shipping address";
    let change = new.clone();
    submit(&pages, &headers, (&id, "address"), &common, &fields, done, move |conn, oid| {
        ops::change_shipping_address(conn, oid, change)
    })
    .await
}
