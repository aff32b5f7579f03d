//! HTTP: routes, bearer-token check, request parsing, idempotency keys and the async edge
//! (every SQLite call runs on tokio's blocking pool, see `DemoStore::read`/`write`).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use ops::conversations as talk;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::error::{ApiError, ErrorCode};
use crate::idempotency::Idempotency;
use crate::model::Address;
use crate::ops::{self, Reply};
use crate::pages::{self, SellerCenter, SettingsChange};
use crate::{ApiToken, DemoStore};

/// Requests are small JSON documents; anything bigger is refused before parsing.
const MAX_BODY: usize = 64 * 1024;
pub(crate) const IDEMPOTENCY_HEADER: &str = "idempotency-key";
pub(crate) const REPLAYED_HEADER: &str = "idempotent-replayed";

#[derive(Clone)]
struct App {
    store: DemoStore,
    token: Arc<ApiToken>,
    center: Arc<SellerCenter>,
}

pub(crate) fn router(store: DemoStore, token: ApiToken) -> Router {
    let token = Arc::new(token);
    let center = Arc::new(SellerCenter::default());
    let pages = pages::router(store.clone(), token.clone(), center.clone());
    let app = App { store, token, center };
    Router::new()
        .route("/health", get(health))
        .route("/customers/lookup", get(lookup_customer))
        .route("/customers/{customer_id}", get(customer_details))
        .route("/customers/{customer_id}/default-address", put(change_default_address))
        .route("/customers/{customer_id}/email", put(change_email))
        .route("/customers/{customer_id}/coupons", post(create_coupon))
        .route("/customers/{customer_id}/password-resets", post(send_password_reset))
        .route("/orders/{order_id}", get(order_details))
        .route("/orders/{order_id}/cancel", post(cancel_order))
        .route("/orders/{order_id}/shipping-address", put(change_shipping_address))
        .route("/orders/{order_id}/payment-method", put(change_payment_method))
        .route("/orders/{order_id}/item-modifications", post(modify_items))
        .route("/orders/{order_id}/returns", post(request_return))
        .route("/orders/{order_id}/exchanges", post(request_exchange))
        .route("/orders/{order_id}/refunds", post(partial_refund))
        .route("/products", get(list_product_types))
        .route("/products/{product_id}", get(product_details))
        .route("/conversations", get(list_conversations))
        .route("/conversations/{conversation_id}", get(conversation_details).patch(update_conversation))
        .route("/conversations/{conversation_id}/messages", post(post_message))
        .route("/buyer/messages", post(buyer_message))
        .route("/seller-center/settings", put(seller_center_settings))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(app.clone(), require_token))
        .with_state(app)
        // The web pages authenticate with their own session cookie, not the API token.
        .merge(pages)
}

/// Every route but `/health` needs `Authorization: Bearer <token>`, unknown routes too
/// (an unauthenticated caller learns nothing about what exists).
async fn require_token(State(app): State<App>, request: Request, next: Next) -> Response {
    if request.uri().path() == "/health" {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(token) if app.token.matches(token.trim()) => next.run(request).await,
        _ => {
            let mut response = ApiError::new(
                ErrorCode::Unauthorized,
                "missing or wrong API token: send `Authorization: Bearer <token>`",
            )
            .into_response();
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
    }
}

async fn health() -> Response {
    json_response(Reply { status: axum::http::StatusCode::OK, body: r#"{"status":"ok"}"#.to_owned() })
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("no such endpoint: {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(ErrorCode::MethodNotAllowed, format!("{method} is not allowed on {}", uri.path()))
}

fn json_response(reply: Reply) -> Response {
    let mut response = (reply.status, reply.body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn respond(result: Result<Reply, ApiError>) -> Response {
    match result {
        Ok(reply) => json_response(reply),
        Err(error) => error.into_response(),
    }
}

fn path_param(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    path.map(|Path(id)| id).map_err(|e| ApiError::new(ErrorCode::NotFound, format!("bad path: {e}")))
}

/// Parses a JSON body: unreadable JSON is 400 `malformed_json`; JSON of the wrong shape
/// (missing field, wrong type, unknown field) is 422 `invalid_request`.
/// The body must be a JSON object (serde would otherwise also take an array of fields).
fn parse_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    let raw: Box<RawValue> = serde_json::from_slice(body)
        .map_err(|e| ApiError::new(ErrorCode::MalformedJson, format!("malformed JSON: {e}")))?;
    if !raw.get().starts_with('{') {
        return Err(ApiError::new(ErrorCode::InvalidRequest, "invalid request: the body must be a JSON object"));
    }
    serde_json::from_str(raw.get()).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::new(ErrorCode::InvalidRequest, format!("invalid request: {e}")),
        _ => ApiError::new(ErrorCode::MalformedJson, format!("malformed JSON: {e}")),
    })
}

fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(ErrorCode::PayloadTooLarge, format!("request body is larger than {MAX_BODY} bytes"))
        } else {
            ApiError::new(ErrorCode::MalformedJson, format!("could not read body: {e}"))
        }
    })
}

/// The `Idempotency-Key` of a write, with a fingerprint of the request it came with.
fn idempotency(headers: &HeaderMap, method: &Method, uri: &Uri, body: &[u8]) -> Result<Option<Idempotency>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_HEADER) else {
        return Ok(None);
    };
    // A header that is not text is no valid key either: `from_header` refuses the empty one.
    let key = value.to_str().unwrap_or_default();
    Idempotency::from_header(key, method.as_str(), uri.path(), body).map(Some)
}

/// Whether a write may be sent without an `Idempotency-Key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Optional,
    /// Posting a message twice cannot be undone: such writes must carry a key.
    Required,
}

/// Runs a write: parses the body, then applies `op` in one transaction with its
/// idempotency record.
async fn write<T, F>(
    app: &App,
    (method, uri, headers): (Method, Uri, HeaderMap),
    key: Key,
    body: Result<Bytes, BytesRejection>,
    op: F,
) -> Response
where
    T: DeserializeOwned + Send + 'static,
    F: FnOnce(&rusqlite::Connection, T) -> Result<Reply, ApiError> + Send + 'static,
{
    let prepared = body_bytes(body).and_then(|body| {
        let idem = idempotency(&headers, &method, &uri, &body)?;
        if idem.is_none() && key == Key::Required {
            return Err(ApiError::new(
                ErrorCode::IdempotencyKeyRequired,
                format!("{method} {} needs an Idempotency-Key header (a new key for each new message)", uri.path()),
            ));
        }
        let request: T = parse_body(&body)?;
        Ok((idem, request))
    });
    let (idem, request) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => return error.into_response(),
    };
    match app.store.write(idem, move |conn| op(conn, request)).await {
        Ok((reply, replayed)) => {
            let mut response = json_response(reply);
            if replayed {
                response.headers_mut().insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
            }
            response
        }
        Err(error) => error.into_response(),
    }
}

// ---------------------------------------------------------------- read handlers

async fn lookup_customer(State(app): State<App>, query: Result<Query<ops::LookupQuery>, QueryRejection>) -> Response {
    let query = match query {
        Ok(Query(q)) => q,
        Err(e) => {
            return ApiError::new(ErrorCode::InvalidQuery, format!("bad query: {e}")).into_response();
        }
    };
    respond(app.store.read(move |conn| ops::lookup_customer(conn, &query)).await)
}

/// A read of the one thing the path names (its id made canonical by `normalize`).
async fn read_by_id(
    app: App,
    id: Result<Path<String>, PathRejection>,
    normalize: fn(&str) -> String,
    op: fn(&rusqlite::Connection, &str) -> Result<Reply, ApiError>,
) -> Response {
    let id = match path_param(id) {
        Ok(id) => normalize(&id),
        Err(e) => return e.into_response(),
    };
    respond(app.store.read(move |conn| op(conn, &id)).await)
}

async fn customer_details(State(app): State<App>, id: Result<Path<String>, PathRejection>) -> Response {
    read_by_id(app, id, as_is, ops::customer_details).await
}

async fn order_details(State(app): State<App>, id: Result<Path<String>, PathRejection>) -> Response {
    read_by_id(app, id, ops::normalize_order_id, ops::order_details).await
}

async fn product_details(State(app): State<App>, id: Result<Path<String>, PathRejection>) -> Response {
    read_by_id(app, id, as_is, ops::product_details).await
}

async fn list_product_types(State(app): State<App>) -> Response {
    respond(app.store.read(ops::list_product_types).await)
}

/// Switches of the seller center's web pages (see `pages.rs`); answers the settings now in force.
async fn seller_center_settings(State(app): State<App>, body: Result<Bytes, BytesRejection>) -> Response {
    let change = match body_bytes(body).and_then(|b| parse_body::<SettingsChange>(&b)) {
        Ok(change) => change,
        Err(e) => return e.into_response(),
    };
    let settings = app.center.change(change);
    respond(Reply::json(axum::http::StatusCode::OK, &settings))
}

// ---------------------------------------------------------------- write handlers

/// Declares a write handler: `name, path parameter normaliser, body type, operation`, then
/// optionally whether the key is required and what is done to the body's bytes first.
macro_rules! write_handler {
    ($name:ident, $normalize:expr, $body:ty, $op:expr) => {
        write_handler!($name, $normalize, $body, $op, Key::Optional);
    };
    ($name:ident, $normalize:expr, $body:ty, $op:expr, $key:expr) => {
        write_handler!($name, $normalize, $body, $op, $key, std::convert::identity);
    };
    ($name:ident, $normalize:expr, $body:ty, $op:expr, $key:expr, $prepare:expr) => {
        async fn $name(
            State(app): State<App>,
            id: Result<Path<String>, PathRejection>,
            method: Method,
            uri: Uri,
            headers: HeaderMap,
            body: Result<Bytes, BytesRejection>,
        ) -> Response {
            let id: String = match path_param(id) {
                Ok(id) => $normalize(&id),
                Err(e) => return e.into_response(),
            };
            let body = $prepare(body);
            write(&app, (method, uri, headers), $key, body, move |conn, request: $body| $op(conn, &id, request)).await
        }
    };
}

fn as_is(id: &str) -> String {
    id.to_owned()
}

write_handler!(cancel_order, ops::normalize_order_id, ops::CancelRequest, ops::cancel_order);
write_handler!(change_shipping_address, ops::normalize_order_id, Address, ops::change_shipping_address);
write_handler!(change_payment_method, ops::normalize_order_id, ops::PaymentMethodRequest, ops::change_payment_method);
write_handler!(modify_items, ops::normalize_order_id, ops::SwapRequest, ops::modify_items);
write_handler!(request_return, ops::normalize_order_id, ops::ReturnRequestBody, ops::request_return);
write_handler!(request_exchange, ops::normalize_order_id, ops::SwapRequest, ops::request_exchange);
write_handler!(partial_refund, ops::normalize_order_id, ops::RefundRequest, ops::partial_refund);
write_handler!(change_default_address, as_is, Address, ops::change_default_address);
write_handler!(change_email, as_is, ops::EmailRequest, ops::change_email);
write_handler!(create_coupon, as_is, ops::CouponRequest, ops::create_coupon);

/// A password reset takes no parameters: the body may be empty or `{}`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParameters {}

/// An empty body (or white space only) reads as `{}`.
fn empty_as_object(body: Result<Bytes, BytesRejection>) -> Result<Bytes, BytesRejection> {
    body.map(|b| if b.iter().all(u8::is_ascii_whitespace) { Bytes::from_static(b"{}") } else { b })
}

write_handler!(
    send_password_reset,
    as_is,
    NoParameters,
    |conn, id: &str, _| ops::send_password_reset(conn, id),
    Key::Optional,
    empty_as_object
);

// ---------------------------------------------------------------- buyer messages

async fn list_conversations(State(app): State<App>, query: Result<Query<talk::ListQuery>, QueryRejection>) -> Response {
    let query = match query {
        Ok(Query(q)) => q,
        Err(e) => {
            return ApiError::new(ErrorCode::InvalidQuery, format!("bad query (`since`, `limit`): {e}"))
                .into_response();
        }
    };
    respond(app.store.read(move |conn| talk::list_changed(conn, &query)).await)
}

async fn conversation_details(State(app): State<App>, id: Result<Path<String>, PathRejection>) -> Response {
    let id = match path_param(id) {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    respond(app.store.read(move |conn| talk::conversation_details(conn, &id)).await)
}

write_handler!(post_message, as_is, talk::PostMessage, talk::post_message, Key::Required);
write_handler!(update_conversation, as_is, talk::UpdateConversation, talk::update_conversation);

/// What a buyer's app sends: the buyer is named in the body.
async fn buyer_message(
    State(app): State<App>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    write(&app, (method, uri, headers), Key::Required, body, talk::buyer_message).await
}
