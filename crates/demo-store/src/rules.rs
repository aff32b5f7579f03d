//! The store's rules: pure functions over the records, no I/O. Each function checks
//! everything first and changes the records only when the whole change is allowed, so a
//! refused request leaves nothing half done (the caller also discards the records then).
//!
//! These functions are the one place the rules live: the JSON API (`ops.rs`) and the
//! seller center's forms (`pages/orders.rs`, through the same `ops` functions) both
//! apply them, so a page can never allow what the API refuses.
//!
//! # The tau-retail rules, and where each is enforced
//!
//! The seed data comes from the tau-bench retail domain, whose tools
//! (`cancel_pending_order`, `modify_pending_order_*`, `return_delivered_order_items`,
//! `exchange_delivered_order_items`) enforce these rules; the store enforces the same
//! ones, with its own error codes. Each rule has a test over HTTP in
//! `tests/api/rules.rs` named after its id (`rule_cancel_pending_only`, …).
//!
//! | id | rule | where | refused with |
//! |---|---|---|---|
//! | `cancel.pending-only` | only a `pending` order can be cancelled (not `pending (item modified)`, `processed`, `delivered`, `cancelled`, `return requested`, `exchange requested`) | [`cancel`] → `require_pending` | 409 `order_not_pending` |
//! | `cancel.reason` | the reason is `no longer needed` or `ordered by mistake` | [`cancel`] | 422 `invalid_reason` |
//! | `cancel.refund` | the status becomes `cancelled`; each payment method gets back what it paid, a gift card at once | [`cancel`] → `refund` | — |
//! | `modify.pending-only` | shipping address, payment method and items change only on a `pending` order | [`change_shipping_address`], [`change_payment_method`], [`modify_items`] → `require_pending` | 409 `order_not_pending` |
//! | `items.once` | items are modified once: the status becomes `pending (item modified)`, after which the order can no longer be cancelled or modified (items, address, payment) | [`modify_items`]; `require_pending` | 409 `items_already_modified` (items), `order_not_pending` (the rest) |
//! | `items.in-order` | every item to replace is in the order (an item listed twice must be there twice) | `resolve_swaps` | 422 `item_not_in_order` |
//! | `items.same-product` | a new item is a variant of the same product (no change of product type) | `resolve_swaps` | 422 `product_mismatch` |
//! | `items.other-option` | a new item has other options than the old one | `resolve_swaps` | 422 `same_item` |
//! | `items.available` | a new item is available | `resolve_swaps` | 422 `variant_unavailable` |
//! | `items.payment` | a payment method of the customer pays (or gets back) the price difference; a gift card must cover it | [`modify_items`] → `check_gift_card_covers` | 422 `payment_method_not_found`, `insufficient_gift_card_balance` |
//! | `payment.single` | the order holds exactly one payment: a pending order's payment is moved once | [`change_payment_method`] | 409 `payment_already_changed` |
//! | `payment.different` | the new method is another of the customer's methods | [`change_payment_method`] | 422 `same_payment_method`, `payment_method_not_found` |
//! | `payment.gift-card` | a gift card must cover the order's total | [`change_payment_method`] → `check_gift_card_covers` | 422 `insufficient_gift_card_balance` |
//! | `payment.refund` | the old method is refunded (a gift card at once), the new one charged; the status stays `pending` | [`change_payment_method`] | — |
//! | `return.delivered-only` | only a `delivered` order can be returned | [`request_return`] → `require_delivered` | 409 `order_not_delivered` |
//! | `return.items` | every item returned is in the order (counting repeats), at least one | [`request_return`] | 422 `item_not_in_order`, `invalid_request` |
//! | `return.refund-method` | the refund goes to the original payment method or a gift card of the customer | [`request_return`] | 422 `refund_method_not_allowed`, `payment_method_not_found` |
//! | `return.once` | the status becomes `return requested`; no further return or exchange | [`request_return`]; `require_delivered` | 409 `order_not_delivered` |
//! | `exchange.delivered-only` | only a `delivered` order can be exchanged | [`request_exchange`] → `require_delivered` | 409 `order_not_delivered` |
//! | `exchange.items` | as `items.*`: in the order, same product, other options, available | `resolve_swaps` | 422 as `items.*` |
//! | `exchange.payment` | a payment method of the customer settles the difference; a gift card must cover it | [`request_exchange`] → `check_gift_card_covers` | 422 `payment_method_not_found`, `insufficient_gift_card_balance` |
//! | `exchange.once` | the status becomes `exchange requested`; no further return or exchange | [`request_exchange`]; `require_delivered` | 409 `order_not_delivered` |
//!
//! The store's own additions, not in the dataset (a platform would have them):
//! `refund.partial-delivered-only` — a partial refund only on a `delivered` order (409
//! `order_not_delivered`), at most what is still refundable, in USD, to the original
//! payment method ([`partial_refund`]); addresses need every field but `address2`
//! ([`validate_address`]); an email is valid and unused.
//!
//! The seller center's pages offer cancel, refund and shipping-address forms; they call
//! the same operations, and `rule_items_once_on_the_pages` checks that a modified order's
//! forms are refused as the API refuses them.

use crate::error::{ApiError, ErrorCode};
use crate::model::{
    Address, ConversationStatus, Customer, ExchangeRequest, ItemSwap, Order, OrderStatus, Product, ReturnRequest,
    Transaction, TransactionType, Variant,
};
use crate::money::{CURRENCY, Usd};

/// The reasons a customer may give for cancelling a pending order.
pub const CANCEL_REASONS: [&str; 2] = ["no longer needed", "ordered by mistake"];

const MAX_TEXT: usize = 200;

/// `cancel.pending-only`, `modify.pending-only`, `items.once`: exactly `pending`.
fn require_pending(order: &Order, action: &str) -> Result<(), ApiError> {
    if order.status.is_pending() {
        return Ok(());
    }
    let why = if order.status == OrderStatus::PendingItemModified {
        "; its items were modified, after which an order can no longer be cancelled or modified"
    } else {
        ""
    };
    Err(ApiError::new(
        ErrorCode::OrderNotPending,
        format!("order {} is {}; only a pending order can be {action}{why}", order.order_id, order.status.as_str()),
    ))
}

fn require_delivered(order: &Order, action: &str) -> Result<(), ApiError> {
    if order.status == OrderStatus::Delivered {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::OrderNotDelivered,
        format!("order {} is {}; only a delivered order can be {action}", order.order_id, order.status.as_str()),
    ))
}

fn payment_method_of<'a>(customer: &'a Customer, id: &str) -> Result<&'a crate::model::PaymentMethod, ApiError> {
    customer.payment_method(id).ok_or_else(|| {
        ApiError::new(
            ErrorCode::PaymentMethodNotFound,
            format!("customer {} has no payment method {id}", customer.customer_id),
        )
    })
}

/// Fails when `method_id` is a gift card whose balance (plus `credited_first`, money this
/// same change returns to it before charging) does not cover `charge`.
fn check_gift_card_covers(
    customer: &Customer,
    method_id: &str,
    charge: Usd,
    credited_first: Usd,
) -> Result<(), ApiError> {
    let method = payment_method_of(customer, method_id)?;
    if !method.is_gift_card() || !charge.is_positive() {
        return Ok(());
    }
    let balance = method.balance.unwrap_or(Usd::ZERO) + credited_first;
    if balance < charge {
        return Err(ApiError::new(
            ErrorCode::InsufficientGiftCardBalance,
            format!(
                "gift card {method_id} has a balance of {balance} {CURRENCY}, less than the {charge} {CURRENCY} to charge"
            ),
        ));
    }
    Ok(())
}

/// Adds `delta` to a gift card's balance (negative to spend); other methods are untouched.
fn adjust_gift_card(customer: &mut Customer, method_id: &str, delta: Usd) {
    if let Some(method) = customer.payment_method_mut(method_id)
        && method.is_gift_card()
    {
        method.balance = Some(method.balance.unwrap_or(Usd::ZERO) + delta);
    }
}

/// Records a refund on the order; a gift card gets the money back at once.
fn refund(order: &mut Order, customer: &mut Customer, method_id: &str, amount: Usd, why: &str) {
    order.payment_history.push(Transaction::new(TransactionType::Refund, amount, method_id, why));
    adjust_gift_card(customer, method_id, amount);
}

fn charge(order: &mut Order, customer: &mut Customer, method_id: &str, amount: Usd, why: &str) {
    order.payment_history.push(Transaction::new(TransactionType::Payment, amount, method_id, why));
    adjust_gift_card(customer, method_id, -amount);
}

fn check_owner(order: &Order, customer: &Customer) -> Result<(), ApiError> {
    if order.customer_id == customer.customer_id {
        Ok(())
    } else {
        Err(ApiError::internal(format_args!("order {} loaded with customer {}", order.order_id, customer.customer_id)))
    }
}

/// Cancels a pending order: every payment method gets back what it paid (gift cards at
/// once) and the status becomes `cancelled`.
pub fn cancel(order: &mut Order, customer: &mut Customer, reason: &str) -> Result<(), ApiError> {
    check_owner(order, customer)?;
    if !CANCEL_REASONS.contains(&reason) {
        return Err(ApiError::new(
            ErrorCode::InvalidReason,
            format!(
                "cancellation reason must be \"{}\" or \"{}\", not {reason:?}",
                CANCEL_REASONS[0], CANCEL_REASONS[1]
            ),
        ));
    }
    require_pending(order, "cancelled")?;
    for (method, net) in order.net_paid_by_method() {
        refund(order, customer, &method, net, "cancellation");
    }
    order.status = OrderStatus::Cancelled;
    order.cancel_reason = Some(reason.to_owned());
    Ok(())
}

/// Trims and checks an address: every field but `address2` is required.
pub fn validate_address(address: Address) -> Result<Address, ApiError> {
    let clean = |field: &str, value: String, required: bool| -> Result<String, ApiError> {
        let value = value.trim().to_owned();
        if required && value.is_empty() {
            return Err(ApiError::new(ErrorCode::InvalidAddress, format!("address field `{field}` must not be empty")));
        }
        if value.chars().count() > MAX_TEXT || value.chars().any(char::is_control) {
            return Err(ApiError::new(
                ErrorCode::InvalidAddress,
                format!("address field `{field}` must be at most {MAX_TEXT} printable characters"),
            ));
        }
        Ok(value)
    };
    Ok(Address {
        address1: clean("address1", address.address1, true)?,
        address2: clean("address2", address.address2, false)?,
        city: clean("city", address.city, true)?,
        state: clean("state", address.state, true)?,
        country: clean("country", address.country, true)?,
        zip: clean("zip", address.zip, true)?,
    })
}

pub fn change_shipping_address(order: &mut Order, address: Address) -> Result<(), ApiError> {
    let address = validate_address(address)?;
    require_pending(order, "re-addressed")?;
    order.shipping_address = address;
    Ok(())
}

/// Moves what a pending order has paid to another of the customer's payment methods:
/// the old methods are refunded (gift cards at once) and the new one charged.
pub fn change_payment_method(order: &mut Order, customer: &mut Customer, new_method: &str) -> Result<(), ApiError> {
    check_owner(order, customer)?;
    require_pending(order, "changed")?;
    payment_method_of(customer, new_method)?;
    // The dataset's tool wants exactly one payment on the order, so a pending order's
    // payment moves once (a change leaves a payment, a refund and a payment).
    let single = matches!(order.payment_history.as_slice(), [t] if t.transaction_type == TransactionType::Payment);
    if !single {
        return Err(ApiError::new(
            ErrorCode::PaymentAlreadyChanged,
            format!(
                "order {} no longer holds exactly one payment ({} transactions): its payment method was already \
                 changed, and a pending order's payment can be changed once",
                order.order_id,
                order.payment_history.len()
            ),
        ));
    }
    let nets = order.net_paid_by_method();
    if nets.iter().all(|(method, _)| method == new_method) {
        return Err(ApiError::new(
            ErrorCode::SamePaymentMethod,
            format!("order {} is already paid with {new_method}; choose a different payment method", order.order_id),
        ));
    }
    let total: Usd = nets.iter().map(|(_, net)| *net).sum();
    let credited_first: Usd = nets.iter().filter(|(method, _)| method == new_method).map(|(_, net)| *net).sum();
    check_gift_card_covers(customer, new_method, total, credited_first)?;
    for (method, net) in nets {
        refund(order, customer, &method, net, "payment method change");
    }
    charge(order, customer, new_method, total, "payment method change");
    Ok(())
}

/// Pairs each swap with the order line it replaces and the new variant, checking that
/// the line exists (counting repeats), the variant belongs to the same product, differs
/// from the old one and is available.
fn resolve_swaps<'p>(
    order: &Order,
    swaps: &[ItemSwap],
    products: &'p [Product],
) -> Result<Vec<(usize, &'p Variant)>, ApiError> {
    if swaps.is_empty() {
        return Err(ApiError::new(ErrorCode::InvalidRequest, "`items` must list at least one item to replace"));
    }
    let mut used = vec![false; order.items.len()];
    let mut resolved = Vec::with_capacity(swaps.len());
    for swap in swaps {
        let Some(index) = order.items.iter().enumerate().position(|(i, item)| !used[i] && item.item_id == swap.item_id)
        else {
            return Err(ApiError::new(
                ErrorCode::ItemNotInOrder,
                format!(
                    "item {} is not in order {} (or is listed more times than the order holds it)",
                    swap.item_id, order.order_id
                ),
            ));
        };
        used[index] = true;
        let old = &order.items[index];
        let product = products
            .iter()
            .find(|p| p.product_id == old.product_id)
            .ok_or_else(|| ApiError::internal(format_args!("product {} missing", old.product_id)))?;
        let Some(variant) = product.variant(&swap.new_item_id) else {
            return Err(ApiError::new(
                ErrorCode::ProductMismatch,
                format!(
                    "item {} is not a variant of {} ({}); an item can only be replaced by another variant of the same product",
                    swap.new_item_id, product.name, product.product_id
                ),
            ));
        };
        if variant.item_id == old.item_id {
            return Err(ApiError::new(
                ErrorCode::SameItem,
                format!("new item {} is the item already ordered; choose another variant", swap.new_item_id),
            ));
        }
        if !variant.available {
            return Err(ApiError::new(
                ErrorCode::VariantUnavailable,
                format!("item {} ({}) is not available", variant.item_id, product.name),
            ));
        }
        resolved.push((index, variant));
    }
    Ok(resolved)
}

fn price_difference(order: &Order, resolved: &[(usize, &Variant)]) -> Usd {
    resolved.iter().map(|(index, variant)| variant.price - order.items[*index].price).sum()
}

/// Replaces items of a pending order with other available variants of the same products,
/// once. The price difference is charged to (or refunded to) `payment_method_id` now.
pub fn modify_items(
    order: &mut Order,
    customer: &mut Customer,
    swaps: &[ItemSwap],
    payment_method_id: &str,
    products: &[Product],
) -> Result<(), ApiError> {
    check_owner(order, customer)?;
    if order.status == OrderStatus::PendingItemModified {
        return Err(ApiError::new(
            ErrorCode::ItemsAlreadyModified,
            format!("the items of order {} were already modified once; they cannot be modified again", order.order_id),
        ));
    }
    require_pending(order, "modified")?;
    let resolved = resolve_swaps(order, swaps, products)?;
    payment_method_of(customer, payment_method_id)?;
    let difference = price_difference(order, &resolved);
    check_gift_card_covers(customer, payment_method_id, difference, Usd::ZERO)?;

    let updates: Vec<(usize, Variant)> =
        resolved.into_iter().map(|(index, variant)| (index, variant.clone())).collect();
    for (index, variant) in updates {
        let item = &mut order.items[index];
        item.item_id = variant.item_id;
        item.price = variant.price;
        item.options = variant.options;
    }
    if difference.is_positive() {
        charge(order, customer, payment_method_id, difference, "item modification");
    } else if !difference.is_zero() {
        refund(order, customer, payment_method_id, difference.abs(), "item modification");
    }
    order.status = OrderStatus::PendingItemModified;
    Ok(())
}

/// Requests the return of delivered items. The refund (the items' price, capped at what
/// is still refundable) will go to the original payment method or a gift card of the
/// customer once the items arrive back.
pub fn request_return(
    order: &mut Order,
    customer: &Customer,
    item_ids: &[String],
    refund_method: &str,
) -> Result<(), ApiError> {
    check_owner(order, customer)?;
    require_delivered(order, "returned")?;
    if item_ids.is_empty() {
        return Err(ApiError::new(ErrorCode::InvalidRequest, "`item_ids` must list at least one item to return"));
    }
    let mut used = vec![false; order.items.len()];
    let mut total = Usd::ZERO;
    for item_id in item_ids {
        let Some(index) = order.items.iter().enumerate().position(|(i, item)| !used[i] && item.item_id == *item_id)
        else {
            return Err(ApiError::new(
                ErrorCode::ItemNotInOrder,
                format!(
                    "item {item_id} is not in order {} (or is listed more times than the order holds it)",
                    order.order_id
                ),
            ));
        };
        used[index] = true;
        total = total + order.items[index].price;
    }
    let method = payment_method_of(customer, refund_method)?;
    if order.original_payment_method() != Some(refund_method) && !method.is_gift_card() {
        return Err(ApiError::new(
            ErrorCode::RefundMethodNotAllowed,
            format!(
                "a return is refunded to the original payment method ({}) or to a gift card of the customer, not to {refund_method}",
                order.original_payment_method().unwrap_or("none")
            ),
        ));
    }
    let refund_amount = total.min(order.refundable());
    order.return_request = Some(ReturnRequest {
        item_ids: item_ids.to_vec(),
        refund_payment_method_id: refund_method.to_owned(),
        refund_amount,
        currency: CURRENCY.to_owned(),
    });
    order.status = OrderStatus::ReturnRequested;
    Ok(())
}

/// Requests an exchange of delivered items for other available variants of the same
/// products. The price difference will be settled with `payment_method_id` when the
/// exchange is processed; a gift card must already cover it.
pub fn request_exchange(
    order: &mut Order,
    customer: &Customer,
    swaps: &[ItemSwap],
    payment_method_id: &str,
    products: &[Product],
) -> Result<(), ApiError> {
    check_owner(order, customer)?;
    require_delivered(order, "exchanged")?;
    let resolved = resolve_swaps(order, swaps, products)?;
    payment_method_of(customer, payment_method_id)?;
    let difference = price_difference(order, &resolved);
    check_gift_card_covers(customer, payment_method_id, difference, Usd::ZERO)?;
    order.exchange_request = Some(ExchangeRequest {
        items: swaps.to_vec(),
        payment_method_id: payment_method_id.to_owned(),
        price_difference: difference,
        currency: CURRENCY.to_owned(),
    });
    order.status = OrderStatus::ExchangeRequested;
    Ok(())
}

/// Refunds part of a delivered order to its original payment method (a gift card at
/// once). Never more than was paid minus what was already refunded.
pub fn partial_refund(
    order: &mut Order,
    customer: &mut Customer,
    amount: Usd,
    currency: &str,
    reason: Option<&str>,
) -> Result<(), ApiError> {
    check_owner(order, customer)?;
    if currency != CURRENCY {
        return Err(ApiError::new(
            ErrorCode::UnsupportedCurrency,
            format!("currency must be {CURRENCY}, not {currency:?}"),
        ));
    }
    require_delivered(order, "partially refunded")?;
    let refundable = order.refundable();
    if amount > refundable {
        return Err(ApiError::new(
            ErrorCode::RefundExceedsRefundable,
            format!(
                "refund of {amount} {CURRENCY} exceeds the {refundable} {CURRENCY} still refundable on order {} (paid {} minus refunded {})",
                order.order_id,
                order.paid(),
                order.refunded()
            ),
        ));
    }
    let method = order
        .original_payment_method()
        .ok_or_else(|| ApiError::internal(format_args!("order {} has no payment", order.order_id)))?
        .to_owned();
    let why = match reason {
        Some(reason) => format!("partial refund: {reason}"),
        None => "partial refund".to_owned(),
    };
    refund(order, customer, &method, amount, &why);
    Ok(())
}

pub fn change_default_address(customer: &mut Customer, address: Address) -> Result<(), ApiError> {
    customer.default_address = validate_address(address)?;
    Ok(())
}

/// A plain, conservative email check: one `@`, a non-empty local part, a dotted domain,
/// no spaces or control characters.
pub fn validate_email(email: &str) -> Result<String, ApiError> {
    let email = email.trim();
    let invalid = || ApiError::new(ErrorCode::InvalidEmail, format!("{email:?} is not a valid email address"));
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid());
    }
    let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
    let labels_ok = domain.split('.').count() >= 2
        && domain.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    if local.is_empty() || local.len() > 64 || !labels_ok {
        return Err(invalid());
    }
    Ok(email.to_owned())
}

/// A required free-text field (a reason): trimmed, non-empty, bounded.
pub fn required_text(field: &str, value: &str) -> Result<String, ApiError> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > MAX_TEXT {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("`{field}` must be between 1 and {MAX_TEXT} characters"),
        ));
    }
    Ok(value.to_owned())
}

// ---------------------------------------------------------------- buyer messages

/// The longest message text the store takes, in characters.
pub const MAX_MESSAGE_TEXT: usize = 5000;

/// A message's text: trimmed, non-empty, at most [`MAX_MESSAGE_TEXT`] characters.
pub fn message_text(text: &str) -> Result<String, ApiError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ApiError::new(ErrorCode::InvalidText, "`text` is empty: a message needs some text"));
    }
    if text.chars().count() > MAX_MESSAGE_TEXT {
        return Err(ApiError::new(
            ErrorCode::InvalidText,
            format!("`text` is longer than {MAX_MESSAGE_TEXT} characters"),
        ));
    }
    Ok(text.to_owned())
}

/// A conversation status as a client names it.
pub fn conversation_status(text: &str) -> Result<ConversationStatus, ApiError> {
    ConversationStatus::parse(text).ok_or_else(|| {
        let known: Vec<&str> = ConversationStatus::ALL.iter().map(|s| s.as_str()).collect();
        ApiError::new(
            ErrorCode::InvalidStatus,
            format!("unknown conversation status {text:?}; use one of {}", known.join(", ")),
        )
    })
}

/// After the seller replies it is the buyer's turn, unless the conversation is resolved.
pub fn status_after_reply(status: ConversationStatus) -> ConversationStatus {
    match status {
        ConversationStatus::Resolved => ConversationStatus::Resolved,
        ConversationStatus::Open | ConversationStatus::Waiting => ConversationStatus::Waiting,
    }
}

/// A buyer's message (re)opens the conversation: it is the seller's turn.
pub fn status_after_buyer_message(_status: ConversationStatus) -> ConversationStatus {
    ConversationStatus::Open
}

/// A buyer may write about no order or about one of their own orders. `owner` is who
/// placed the order (`None`: no such order, answered the same way so a buyer learns
/// nothing about other buyers' orders).
pub fn check_buyer_order(buyer_id: &str, order_id: &str, owner: Option<&str>) -> Result<(), ApiError> {
    if owner == Some(buyer_id) {
        return Ok(());
    }
    Err(ApiError::new(ErrorCode::OrderNotOfBuyer, format!("order {order_id} is not one of {buyer_id}'s orders")))
}
