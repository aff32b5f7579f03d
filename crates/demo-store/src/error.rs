//! Errors: [`ApiError`] is what a client sees (`{ "error": { "code", "message" } }` with a
//! 4xx/5xx status); [`DemoStoreError`] is what a caller of the library gets when opening or
//! serving fails.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Machine-readable error codes. Each code has exactly one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    // 400: the request could not be read.
    MalformedJson,
    InvalidQuery,
    InvalidIdempotencyKey,
    IdempotencyKeyRequired,
    // 401
    Unauthorized,
    // 404
    NotFound,
    CustomerNotFound,
    OrderNotFound,
    ProductNotFound,
    ConversationNotFound,
    // 405
    MethodNotAllowed,
    // 409: the object is not in a state that allows the change.
    OrderNotPending,
    OrderNotDelivered,
    ItemsAlreadyModified,
    PaymentAlreadyChanged,
    EmailInUse,
    AmbiguousCustomer,
    // 413
    PayloadTooLarge,
    // 422: the request was read but breaks a rule.
    InvalidRequest,
    InvalidReason,
    InvalidAddress,
    InvalidEmail,
    InvalidAmount,
    UnsupportedCurrency,
    ItemNotInOrder,
    VariantNotFound,
    ProductMismatch,
    SameItem,
    VariantUnavailable,
    PaymentMethodNotFound,
    SamePaymentMethod,
    RefundMethodNotAllowed,
    InsufficientGiftCardBalance,
    RefundExceedsRefundable,
    IdempotencyKeyReused,
    InvalidText,
    InvalidStatus,
    OrderNotOfBuyer,
    // 500
    Internal,
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        use ErrorCode::*;
        match self {
            MalformedJson | InvalidQuery | InvalidIdempotencyKey | IdempotencyKeyRequired => StatusCode::BAD_REQUEST,
            Unauthorized => StatusCode::UNAUTHORIZED,
            NotFound | CustomerNotFound | OrderNotFound | ProductNotFound | ConversationNotFound => {
                StatusCode::NOT_FOUND
            }
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            OrderNotPending
            | OrderNotDelivered
            | ItemsAlreadyModified
            | PaymentAlreadyChanged
            | EmailInUse
            | AmbiguousCustomer => StatusCode::CONFLICT,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            InvalidRequest
            | InvalidReason
            | InvalidAddress
            | InvalidEmail
            | InvalidAmount
            | UnsupportedCurrency
            | ItemNotInOrder
            | VariantNotFound
            | ProductMismatch
            | SameItem
            | VariantUnavailable
            | PaymentMethodNotFound
            | SamePaymentMethod
            | RefundMethodNotAllowed
            | InsufficientGiftCardBalance
            | RefundExceedsRefundable
            | IdempotencyKeyReused
            | InvalidText
            | InvalidStatus
            | OrderNotOfBuyer => StatusCode::UNPROCESSABLE_ENTITY,
            Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: ErrorCode,
    message: &'a str,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError { code, message: message.into() }
    }

    /// A server-side failure. The detail goes to the log, not to the client.
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(%detail, "demo store internal error");
        ApiError::new(ErrorCode::Internal, "the store failed to handle the request")
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// The JSON body, `{ "error": { "code": ..., "message": ... } }`.
    pub(crate) fn body_text(&self) -> String {
        let body = Body { error: Inner { code: self.code, message: &self.message } };
        serde_json::to_string(&body)
            .unwrap_or_else(|_| r#"{"error":{"code":"internal","message":"unserialisable error"}}"#.to_owned())
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> ApiError {
        ApiError::internal(format_args!("sqlite: {e}"))
    }
}

impl From<serde_json::Error> for ApiError {
    fn from(e: serde_json::Error) -> ApiError {
        ApiError::internal(format_args!("stored document: {e}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status(), self.body_text()).into_response();
        response
            .headers_mut()
            .insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static("application/json"));
        response
    }
}

/// Why the store could not be opened, seeded or served.
#[derive(Debug, thiserror::Error)]
pub enum DemoStoreError {
    #[error("database {path}: {source}")]
    Database {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("seed file {path}: {message}")]
    Seed { path: String, message: String },
    #[error("database {path}: {message}")]
    Schema { path: String, message: String },
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("the API token is empty")]
    EmptyToken,
    #[error("server task failed: {0}")]
    Server(String),
}
