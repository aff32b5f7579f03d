//! Reads the tau-retail files (`users.json`, `orders.json`, `products.json`) into the
//! store's records. Prices and balances are taken from their exact JSON text ([`Usd`]'s
//! deserializer reads the raw number), never through `f64`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::DemoStoreError;
use crate::model::{
    Address, Customer, Fulfillment, Order, OrderItem, OrderStatus, PaymentMethod, PaymentSource, PersonName, Product,
    Transaction, TransactionType, Variant,
};
use crate::money::{CURRENCY, Usd};

/// Everything the store starts with.
#[derive(Debug)]
pub struct Seed {
    pub customers: Vec<Customer>,
    pub orders: Vec<Order>,
    pub products: Vec<Product>,
}

#[derive(Deserialize)]
struct SeedUser {
    name: PersonName,
    address: Address,
    email: String,
    payment_methods: BTreeMap<String, SeedPaymentMethod>,
    orders: Vec<String>,
}

#[derive(Deserialize)]
struct SeedPaymentMethod {
    source: PaymentSource,
    id: String,
    brand: Option<String>,
    last_four: Option<String>,
    balance: Option<Usd>,
}

#[derive(Deserialize)]
struct SeedOrder {
    order_id: String,
    user_id: String,
    address: Address,
    items: Vec<OrderItem>,
    fulfillments: Vec<SeedFulfillment>,
    status: OrderStatus,
    payment_history: Vec<SeedTransaction>,
}

#[derive(Deserialize)]
struct SeedFulfillment {
    tracking_id: Vec<String>,
    item_ids: Vec<String>,
}

#[derive(Deserialize)]
struct SeedTransaction {
    transaction_type: TransactionType,
    amount: Usd,
    payment_method_id: String,
}

#[derive(Deserialize)]
struct SeedProduct {
    name: String,
    product_id: String,
    variants: BTreeMap<String, Variant>,
}

fn read<T: DeserializeOwned>(dir: &Path, file: &str) -> Result<T, DemoStoreError> {
    let path = dir.join(file);
    let seed_error = |message: String| DemoStoreError::Seed { path: path.display().to_string(), message };
    let text = std::fs::read_to_string(&path).map_err(|e| seed_error(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| seed_error(e.to_string()))
}

impl Seed {
    /// Loads and checks the three files in `dir`.
    pub fn load(dir: &Path) -> Result<Seed, DemoStoreError> {
        let users: BTreeMap<String, SeedUser> = read(dir, "users.json")?;
        let orders: BTreeMap<String, SeedOrder> = read(dir, "orders.json")?;
        let products: BTreeMap<String, SeedProduct> = read(dir, "products.json")?;

        let customers = users
            .into_iter()
            .map(|(customer_id, u)| Customer {
                customer_id,
                name: u.name,
                email: u.email,
                default_address: u.address,
                payment_methods: u
                    .payment_methods
                    .into_values()
                    .map(|m| PaymentMethod {
                        currency: m.balance.map(|_| CURRENCY.to_owned()),
                        id: m.id,
                        source: m.source,
                        brand: m.brand,
                        last_four: m.last_four,
                        balance: m.balance,
                    })
                    .collect(),
                order_ids: u.orders,
            })
            .collect();
        let orders = orders
            .into_values()
            .map(|o| Order {
                order_id: o.order_id,
                customer_id: o.user_id,
                status: o.status,
                shipping_address: o.address,
                items: o.items,
                fulfillments: o
                    .fulfillments
                    .into_iter()
                    .map(|f| Fulfillment { tracking_ids: f.tracking_id, item_ids: f.item_ids })
                    .collect(),
                payment_history: o
                    .payment_history
                    .into_iter()
                    .map(|t| Transaction {
                        transaction_type: t.transaction_type,
                        amount: t.amount,
                        currency: CURRENCY.to_owned(),
                        payment_method_id: t.payment_method_id,
                        reason: None,
                    })
                    .collect(),
                cancel_reason: None,
                return_request: None,
                exchange_request: None,
            })
            .collect();
        let products = products
            .into_values()
            .map(|p| Product {
                product_id: p.product_id,
                name: p.name,
                currency: CURRENCY.to_owned(),
                variants: p.variants.into_values().collect(),
            })
            .collect();
        Ok(Seed { customers, orders, products })
    }
}

/// The platform of the sample cases the demo store's conversations are seeded from.
const SEED_PLATFORM: &str = "demo_seller_center";

/// A conversation to seed, read from a sample case (`assets/demo/cases/*.json`).
#[derive(Debug)]
pub struct SeedConversation {
    /// The case file, for messages about it.
    pub source: String,
    pub buyer_id: String,
    pub order_ids: Vec<String>,
    pub messages: Vec<SeedMessage>,
}

#[derive(Debug, Deserialize)]
pub struct SeedMessage {
    /// `customer` (the buyer) or `agent` (the seller).
    pub from: String,
    pub text: String,
    pub at: String,
}

#[derive(Deserialize)]
struct SeedCase {
    platform: String,
    customer: Option<SeedCaseCustomer>,
    #[serde(default)]
    messages: Vec<SeedMessage>,
    #[serde(default)]
    order_ids: Vec<String>,
}

#[derive(Deserialize)]
struct SeedCaseCustomer {
    id: String,
}

/// Reads the sample cases in `dir` (every `*.json`, by file name; a case with its plan or a
/// bare case) that happen on the demo seller center and name their customer; the rest are
/// skipped.
pub fn load_cases(dir: &Path) -> Result<Vec<SeedConversation>, DemoStoreError> {
    let dir_error =
        |e: std::io::Error| DemoStoreError::Seed { path: dir.display().to_string(), message: e.to_string() };
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(dir_error)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(dir_error)?;
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    files.sort();
    let mut conversations = Vec::new();
    for path in files {
        let Some(file) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else { continue };
        // As the engine reads a sample case: a case with its plan (`{"case": …}`), or a
        // bare case.
        let mut value: serde_json::Value = read(dir, &file)?;
        let case = value.get_mut("case").map(serde_json::Value::take).unwrap_or(value);
        let SeedCase { platform, customer, messages, order_ids } = serde_json::from_value(case).map_err(|e| {
            DemoStoreError::Seed { path: dir.join(&file).display().to_string(), message: format!("the case: {e}") }
        })?;
        match customer {
            Some(customer) if platform == SEED_PLATFORM && !messages.is_empty() => {
                conversations.push(SeedConversation { source: file, buyer_id: customer.id, order_ids, messages });
            }
            _ => {}
        }
    }
    Ok(conversations)
}
