//! One function per API operation: load the records, apply a rule from `rules.rs`, save,
//! and build the response body (the resulting state of every record touched). Each runs
//! on a connection inside the caller's transaction; none knows about HTTP framing.
//! Buyer messages are in `ops/conversations.rs`.

pub mod conversations;

use axum::http::StatusCode;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::db;
use crate::error::{ApiError, ErrorCode};
use crate::model::{Address, Coupon, Customer, CustomerView, ItemSwap, Order, OrderView, PasswordReset, Product};
use crate::money::{AmountError, CURRENCY, Usd};
use crate::rules;

/// A response ready to send (and to store under an idempotency key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: StatusCode,
    pub body: String,
}

impl Reply {
    pub fn json(status: StatusCode, value: &impl Serialize) -> Result<Reply, ApiError> {
        Ok(Reply { status, body: serde_json::to_string(value)? })
    }
}

/// The order ids in the data start with `#` (which a URL must send as `%23`); a path may
/// also leave it out.
pub fn normalize_order_id(raw: &str) -> String {
    if raw.starts_with('#') { raw.to_owned() } else { format!("#{raw}") }
}

fn customer_or_404(conn: &Connection, id: &str) -> Result<Customer, ApiError> {
    db::customer(conn, id)?
        .ok_or_else(|| ApiError::new(ErrorCode::CustomerNotFound, format!("no customer with id {id:?}")))
}

fn order_or_404(conn: &Connection, id: &str) -> Result<Order, ApiError> {
    db::order(conn, id)?.ok_or_else(|| ApiError::new(ErrorCode::OrderNotFound, format!("no order with id {id:?}")))
}

fn product_or_404(conn: &Connection, id: &str) -> Result<Product, ApiError> {
    db::product(conn, id)?
        .ok_or_else(|| ApiError::new(ErrorCode::ProductNotFound, format!("no product with id {id:?}")))
}

// ---------------------------------------------------------------- reads

/// How to find a customer: by email, or by first name, last name and zip code.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LookupQuery {
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub zip: Option<String>,
}

pub fn lookup_customer(conn: &Connection, q: &LookupQuery) -> Result<Reply, ApiError> {
    let ids = match q {
        LookupQuery { email: Some(email), first_name: None, last_name: None, zip: None } => {
            db::customer_id_by_email(conn, email)?.into_iter().collect()
        }
        LookupQuery { email: None, first_name: Some(first), last_name: Some(last), zip: Some(zip) } => {
            db::customer_ids_by_name_zip(conn, first, last, zip)?
        }
        _ => {
            return Err(ApiError::new(
                ErrorCode::InvalidQuery,
                "look a customer up by `email`, or by `first_name`, `last_name` and `zip` together",
            ));
        }
    };
    match ids.as_slice() {
        [] => Err(ApiError::new(ErrorCode::CustomerNotFound, "no customer matches the lookup")),
        [id] => customer_details(conn, id),
        _ => Err(ApiError::new(
            ErrorCode::AmbiguousCustomer,
            format!("{} customers match ({}); look up by email instead", ids.len(), ids.join(", ")),
        )),
    }
}

pub fn customer_details(conn: &Connection, id: &str) -> Result<Reply, ApiError> {
    let customer = customer_or_404(conn, id)?;
    Reply::json(StatusCode::OK, &db::customer_view(conn, customer)?)
}

pub fn order_details(conn: &Connection, id: &str) -> Result<Reply, ApiError> {
    let order = order_or_404(conn, id)?;
    Reply::json(StatusCode::OK, &order.view())
}

pub fn product_details(conn: &Connection, id: &str) -> Result<Reply, ApiError> {
    Reply::json(StatusCode::OK, &product_or_404(conn, id)?)
}

#[derive(Serialize)]
struct ProductTypeSummary {
    product_id: String,
    name: String,
    variants: usize,
    available_variants: usize,
}

#[derive(Serialize)]
struct ProductTypes {
    product_types: Vec<ProductTypeSummary>,
}

pub fn list_product_types(conn: &Connection) -> Result<Reply, ApiError> {
    let product_types = db::products(conn)?
        .into_iter()
        .map(|p| ProductTypeSummary {
            available_variants: p.variants.iter().filter(|v| v.available).count(),
            variants: p.variants.len(),
            product_id: p.product_id,
            name: p.name,
        })
        .collect();
    Reply::json(StatusCode::OK, &ProductTypes { product_types })
}

// ---------------------------------------------------------------- order writes

#[derive(Serialize)]
struct OrderChange<'a> {
    order: OrderView<'a>,
    customer: CustomerView,
}

/// Loads an order and its customer, applies `change`, saves both and replies with both.
fn change_order(
    conn: &Connection,
    order_id: &str,
    change: impl FnOnce(&mut Order, &mut Customer) -> Result<(), ApiError>,
) -> Result<Reply, ApiError> {
    let mut order = order_or_404(conn, order_id)?;
    let mut customer = customer_or_404(conn, &order.customer_id)?;
    change(&mut order, &mut customer)?;
    db::save_order(conn, &order)?;
    db::save_customer(conn, &customer)?;
    Reply::json(StatusCode::OK, &OrderChange { order: order.view(), customer: db::customer_view(conn, customer)? })
}

/// The product records of an order's items.
fn products_of(conn: &Connection, order: &Order) -> Result<Vec<Product>, ApiError> {
    let mut ids: Vec<&str> = order.items.iter().map(|i| i.product_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    ids.into_iter().map(|id| product_or_404(conn, id)).collect()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    pub reason: String,
}

pub fn cancel_order(conn: &Connection, id: &str, req: CancelRequest) -> Result<Reply, ApiError> {
    change_order(conn, id, |order, customer| rules::cancel(order, customer, &req.reason))
}

pub fn change_shipping_address(conn: &Connection, id: &str, address: Address) -> Result<Reply, ApiError> {
    change_order(conn, id, |order, _| rules::change_shipping_address(order, address))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentMethodRequest {
    pub payment_method_id: String,
}

pub fn change_payment_method(conn: &Connection, id: &str, req: PaymentMethodRequest) -> Result<Reply, ApiError> {
    change_order(conn, id, |order, customer| rules::change_payment_method(order, customer, &req.payment_method_id))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwapRequest {
    pub items: Vec<ItemSwap>,
    pub payment_method_id: String,
}

pub fn modify_items(conn: &Connection, id: &str, req: SwapRequest) -> Result<Reply, ApiError> {
    change_order(conn, id, |order, customer| {
        let products = products_of(conn, order)?;
        rules::modify_items(order, customer, &req.items, &req.payment_method_id, &products)
    })
}

pub fn request_exchange(conn: &Connection, id: &str, req: SwapRequest) -> Result<Reply, ApiError> {
    change_order(conn, id, |order, customer| {
        let products = products_of(conn, order)?;
        rules::request_exchange(order, customer, &req.items, &req.payment_method_id, &products)
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReturnRequestBody {
    pub item_ids: Vec<String>,
    pub payment_method_id: String,
}

pub fn request_return(conn: &Connection, id: &str, req: ReturnRequestBody) -> Result<Reply, ApiError> {
    change_order(conn, id, |order, customer| {
        rules::request_return(order, customer, &req.item_ids, &req.payment_method_id)
    })
}

fn amount_error(e: AmountError) -> ApiError {
    ApiError::new(ErrorCode::InvalidAmount, format!("`amount`: {e}"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    /// A decimal string (`"12.50"`); a JSON number is read digit for digit.
    pub amount: Box<RawValue>,
    pub currency: String,
    #[serde(default)]
    pub reason: Option<String>,
}

pub fn partial_refund(conn: &Connection, id: &str, req: RefundRequest) -> Result<Reply, ApiError> {
    let amount = Usd::positive_input(&req.amount).map_err(amount_error)?;
    let reason = req.reason.as_deref().map(|r| rules::required_text("reason", r)).transpose()?;
    change_order(conn, id, |order, customer| {
        rules::partial_refund(order, customer, amount, &req.currency, reason.as_deref())
    })
}

// ---------------------------------------------------------------- customer writes

#[derive(Serialize)]
struct CustomerChange {
    customer: CustomerView,
}

fn change_customer(
    conn: &Connection,
    id: &str,
    change: impl FnOnce(&mut Customer) -> Result<(), ApiError>,
) -> Result<Reply, ApiError> {
    let mut customer = customer_or_404(conn, id)?;
    change(&mut customer)?;
    db::save_customer(conn, &customer)?;
    Reply::json(StatusCode::OK, &CustomerChange { customer: db::customer_view(conn, customer)? })
}

pub fn change_default_address(conn: &Connection, id: &str, address: Address) -> Result<Reply, ApiError> {
    change_customer(conn, id, |customer| rules::change_default_address(customer, address))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailRequest {
    pub email: String,
}

pub fn change_email(conn: &Connection, id: &str, req: EmailRequest) -> Result<Reply, ApiError> {
    let email = rules::validate_email(&req.email)?;
    change_customer(conn, id, |customer| {
        if let Some(owner) = db::customer_id_by_email(conn, &email)?
            && owner != customer.customer_id
        {
            return Err(ApiError::new(
                ErrorCode::EmailInUse,
                format!("{email} is already the email of another customer"),
            ));
        }
        customer.email = email;
        Ok(())
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CouponRequest {
    pub amount: Box<RawValue>,
    #[serde(default)]
    pub currency: Option<String>,
    pub reason: String,
}

#[derive(Serialize)]
struct CouponCreated {
    coupon: Coupon,
    customer: CustomerView,
}

/// A random reference such as `GW-7K2M9QX4TB`: unguessable, with no ambiguous letters.
fn reference(prefix: &str) -> Result<String, ApiError> {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut bytes = [0u8; 10];
    getrandom::fill(&mut bytes).map_err(ApiError::internal)?;
    let code: String = bytes.iter().map(|b| char::from(ALPHABET[usize::from(b % 32)])).collect();
    Ok(format!("{prefix}-{code}"))
}

pub fn create_coupon(conn: &Connection, id: &str, req: CouponRequest) -> Result<Reply, ApiError> {
    let amount = Usd::positive_input(&req.amount).map_err(amount_error)?;
    if let Some(currency) = req.currency.as_deref()
        && currency != CURRENCY
    {
        return Err(ApiError::new(
            ErrorCode::UnsupportedCurrency,
            format!("currency must be {CURRENCY}, not {currency:?}"),
        ));
    }
    let reason = rules::required_text("reason", &req.reason)?;
    let customer = customer_or_404(conn, id)?;
    let coupon = Coupon {
        code: reference("GW")?,
        customer_id: customer.customer_id.clone(),
        amount,
        currency: CURRENCY.to_owned(),
        reason,
        created_at: db::now(),
    };
    db::insert_coupon(conn, &coupon)?;
    Reply::json(StatusCode::CREATED, &CouponCreated { coupon, customer: db::customer_view(conn, customer)? })
}

#[derive(Serialize)]
struct PasswordResetSent {
    password_reset: PasswordReset,
    customer: CustomerView,
}

pub fn send_password_reset(conn: &Connection, id: &str) -> Result<Reply, ApiError> {
    let customer = customer_or_404(conn, id)?;
    let reset = PasswordReset {
        reference: reference("PR")?,
        customer_id: customer.customer_id.clone(),
        sent_to: customer.email.clone(),
        created_at: db::now(),
    };
    db::insert_password_reset(conn, &reset)?;
    Reply::json(
        StatusCode::CREATED,
        &PasswordResetSent { password_reset: reset, customer: db::customer_view(conn, customer)? },
    )
}
