//! The store's records as they are kept (one JSON document per row) and shown over the API.
//!
//! Amounts are [`Usd`] (decimal strings); every record that carries money also says its
//! currency, so a client never has to guess.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::money::{CURRENCY, Usd};

/// A postal address (an order's shipping address or a customer's default address).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Address {
    pub address1: String,
    #[serde(default)]
    pub address2: String,
    pub city: String,
    pub state: String,
    pub country: String,
    pub zip: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonName {
    pub first_name: String,
    pub last_name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentSource {
    CreditCard,
    Paypal,
    GiftCard,
}

/// One of a customer's payment methods. Gift cards carry a balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentMethod {
    pub id: String,
    pub source: PaymentSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_four: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance: Option<Usd>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

impl PaymentMethod {
    pub fn is_gift_card(&self) -> bool {
        self.source == PaymentSource::GiftCard
    }
}

/// A customer as stored. Coupons and password resets live in their own tables and are
/// added to the API view by the database layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Customer {
    pub customer_id: String,
    pub name: PersonName,
    pub email: String,
    pub default_address: Address,
    pub payment_methods: Vec<PaymentMethod>,
    pub order_ids: Vec<String>,
}

impl Customer {
    pub fn payment_method(&self, id: &str) -> Option<&PaymentMethod> {
        self.payment_methods.iter().find(|m| m.id == id)
    }

    pub fn payment_method_mut(&mut self, id: &str) -> Option<&mut PaymentMethod> {
        self.payment_methods.iter_mut().find(|m| m.id == id)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderStatus {
    #[serde(rename = "pending")]
    Pending,
    /// Its items were modified (once, while `pending`): not yet handed to fulfilment,
    /// but no longer `pending` — it can no longer be cancelled or modified (items,
    /// address, payment), as the tau-retail tools rule.
    #[serde(rename = "pending (item modified)")]
    PendingItemModified,
    #[serde(rename = "processed")]
    Processed,
    #[serde(rename = "delivered")]
    Delivered,
    #[serde(rename = "cancelled")]
    Cancelled,
    #[serde(rename = "return requested")]
    ReturnRequested,
    #[serde(rename = "exchange requested")]
    ExchangeRequested,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::PendingItemModified => "pending (item modified)",
            OrderStatus::Processed => "processed",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::ReturnRequested => "return requested",
            OrderStatus::ExchangeRequested => "exchange requested",
        }
    }

    /// Exactly `pending`: the only status in which an order may be cancelled or modified.
    /// `pending (item modified)` is not: the one item modification closed the order to
    /// every further change.
    pub fn is_pending(self) -> bool {
        self == OrderStatus::Pending
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItem {
    pub item_id: String,
    pub product_id: String,
    pub name: String,
    pub price: Usd,
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fulfillment {
    pub tracking_ids: Vec<String>,
    pub item_ids: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransactionType {
    Payment,
    Refund,
}

/// One movement of money on an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    pub transaction_type: TransactionType,
    pub amount: Usd,
    pub currency: String,
    pub payment_method_id: String,
    /// Why the store moved the money (absent for the seed data's own transactions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Transaction {
    pub fn new(kind: TransactionType, amount: Usd, method: &str, reason: &str) -> Transaction {
        Transaction {
            transaction_type: kind,
            amount,
            currency: CURRENCY.to_owned(),
            payment_method_id: method.to_owned(),
            reason: Some(reason.to_owned()),
        }
    }
}

/// An item to be replaced by another variant of the same product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemSwap {
    pub item_id: String,
    pub new_item_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnRequest {
    pub item_ids: Vec<String>,
    pub refund_payment_method_id: String,
    /// What will be refunded when the items arrive back (never more than is refundable).
    pub refund_amount: Usd,
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeRequest {
    pub items: Vec<ItemSwap>,
    pub payment_method_id: String,
    /// New items minus old items: positive is charged, negative refunded, when the
    /// exchange is processed.
    pub price_difference: Usd,
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub order_id: String,
    pub customer_id: String,
    pub status: OrderStatus,
    pub shipping_address: Address,
    pub items: Vec<OrderItem>,
    pub fulfillments: Vec<Fulfillment>,
    pub payment_history: Vec<Transaction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_request: Option<ReturnRequest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchange_request: Option<ExchangeRequest>,
}

impl Order {
    pub fn items_total(&self) -> Usd {
        self.items.iter().map(|i| i.price).sum()
    }

    fn sum_of(&self, kind: TransactionType) -> Usd {
        self.payment_history.iter().filter(|t| t.transaction_type == kind).map(|t| t.amount).sum()
    }

    pub fn paid(&self) -> Usd {
        self.sum_of(TransactionType::Payment)
    }

    pub fn refunded(&self) -> Usd {
        self.sum_of(TransactionType::Refund)
    }

    /// Paid minus already refunded: the most that can still go back to the customer.
    pub fn refundable(&self) -> Usd {
        self.paid() - self.refunded()
    }

    /// What each payment method holds of this order (payments minus refunds), in the
    /// order the methods were first used. Methods that hold nothing are left out.
    pub fn net_paid_by_method(&self) -> Vec<(String, Usd)> {
        let mut nets: Vec<(String, Usd)> = Vec::new();
        for t in &self.payment_history {
            let signed = match t.transaction_type {
                TransactionType::Payment => t.amount,
                TransactionType::Refund => -t.amount,
            };
            match nets.iter_mut().find(|(id, _)| *id == t.payment_method_id) {
                Some((_, net)) => *net = *net + signed,
                None => nets.push((t.payment_method_id.clone(), signed)),
            }
        }
        nets.retain(|(_, net)| net.is_positive());
        nets
    }

    /// The method of the order's first payment.
    pub fn original_payment_method(&self) -> Option<&str> {
        self.payment_history
            .iter()
            .find(|t| t.transaction_type == TransactionType::Payment)
            .map(|t| t.payment_method_id.as_str())
    }

    /// The API view: the stored order plus its currency and money totals.
    pub fn view(&self) -> OrderView<'_> {
        OrderView {
            order: self,
            currency: CURRENCY,
            totals: Totals {
                items_total: self.items_total(),
                paid: self.paid(),
                refunded: self.refunded(),
                refundable: self.refundable(),
            },
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Totals {
    pub items_total: Usd,
    pub paid: Usd,
    pub refunded: Usd,
    pub refundable: Usd,
}

#[derive(Debug, Serialize)]
pub struct OrderView<'a> {
    #[serde(flatten)]
    pub order: &'a Order,
    pub currency: &'static str,
    pub totals: Totals,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variant {
    pub item_id: String,
    pub options: BTreeMap<String, String>,
    pub available: bool,
    pub price: Usd,
}

/// A product type and its variants (each variant is an item id that can be ordered).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub product_id: String,
    pub name: String,
    pub currency: String,
    pub variants: Vec<Variant>,
}

impl Product {
    pub fn variant(&self, item_id: &str) -> Option<&Variant> {
        self.variants.iter().find(|v| v.item_id == item_id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coupon {
    pub code: String,
    pub customer_id: String,
    pub amount: Usd,
    pub currency: String,
    pub reason: String,
    pub created_at: String,
}

/// A record that a password-reset message was sent. Holds no secret: the reset link
/// itself would go only to the customer's mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordReset {
    pub reference: String,
    pub customer_id: String,
    pub sent_to: String,
    pub created_at: String,
}

/// The API view of a customer: the stored record plus its coupons and password resets.
#[derive(Debug, Serialize)]
pub struct CustomerView {
    #[serde(flatten)]
    pub customer: Customer,
    pub coupons: Vec<Coupon>,
    pub password_resets: Vec<PasswordReset>,
}

/// Where a conversation stands: `open` (the buyer waits for the seller), `waiting` (the
/// seller replied; the buyer's turn) or `resolved`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationStatus {
    Open,
    Waiting,
    Resolved,
}

impl ConversationStatus {
    pub const ALL: [ConversationStatus; 3] =
        [ConversationStatus::Open, ConversationStatus::Waiting, ConversationStatus::Resolved];

    pub fn as_str(self) -> &'static str {
        match self {
            ConversationStatus::Open => "open",
            ConversationStatus::Waiting => "waiting",
            ConversationStatus::Resolved => "resolved",
        }
    }

    pub fn parse(text: &str) -> Option<ConversationStatus> {
        ConversationStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Author {
    Buyer,
    Seller,
}

impl Author {
    pub fn as_str(self) -> &'static str {
        match self {
            Author::Buyer => "buyer",
            Author::Seller => "seller",
        }
    }
}

/// A message the buyer sees, or a note internal to the seller (never shown to the buyer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    Message,
    Note,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Message => "message",
            MessageKind::Note => "note",
        }
    }
}

/// The buyer of a conversation: the customer account that wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Buyer {
    pub user_id: String,
    pub name: String,
}

/// A conversation as listed: everything but its messages. `cursor` is its `change_seq`
/// as a string (a client passes it back as `since`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConversationSummary {
    pub id: String,
    pub buyer: Buyer,
    pub order_id: Option<String>,
    pub status: ConversationStatus,
    pub assignee: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub last_message_at: String,
    pub message_count: i64,
    pub cursor: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    pub id: String,
    pub author: Author,
    pub kind: MessageKind,
    /// The buyer's name, or the seller agent's id.
    pub author_name: String,
    pub text: String,
    pub created_at: String,
}

/// A conversation with its messages, oldest first.
#[derive(Debug, Serialize)]
pub struct ConversationThread {
    #[serde(flatten)]
    pub conversation: ConversationSummary,
    pub messages: Vec<Message>,
}
