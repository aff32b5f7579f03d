//! A connector over a platform export on disk (`orders.json` in the tau-retail
//! layout): read-only facts for offline decisions and the demo.
//!
//! Amounts are read from the JSON text itself (`RawValue`), never through a float.
//!
//! It has no catalog and cannot act: [`Connector::call`] answers the order read
//! ([`ORDER_READ`]) from the export, in the shape of the seller center's order read
//! (ids, status, currency, `totals` as decimal strings); everything else, writes
//! included, is [`ConnectorError::Unsupported`].

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Instant;

use countersign_core::decide::OrderFacts;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::{CallRecord, Connector, ConnectorError, ExpectationError, RecordedRequest};

/// The one action the snapshot can answer, with its parameter `order_id`.
pub const ORDER_READ: &str = "get_order_details";

#[derive(Deserialize)]
struct RawOrder {
    order_id: String,
    user_id: String,
    status: String,
    payment_history: Vec<RawPayment>,
    #[serde(default)]
    items: Option<Vec<RawItem>>,
}

#[derive(Deserialize)]
struct RawItem {
    item_id: String,
}

#[derive(Deserialize)]
struct RawPayment {
    transaction_type: String,
    amount: Box<RawValue>,
}

/// Order facts loaded once from an export directory.
#[derive(Debug, Clone)]
pub struct SnapshotConnector {
    orders: BTreeMap<String, OrderFacts>,
}

impl SnapshotConnector {
    /// Load `dir/orders.json`. All amounts are US dollars in this layout.
    pub fn load(dir: &Path) -> Result<SnapshotConnector, ConnectorError> {
        let path = dir.join("orders.json");
        let shown = path.display().to_string();
        let text =
            std::fs::read_to_string(&path).map_err(|source| ConnectorError::Io { path: shown.clone(), source })?;
        let raw: BTreeMap<String, RawOrder> = serde_json::from_str(&text)
            .map_err(|e| ConnectorError::Malformed { path: shown.clone(), message: e.to_string() })?;
        let usd = countersign_core::money::Currency::try_from("USD".to_string())
            .map_err(|e| ConnectorError::Malformed { path: shown.clone(), message: e.to_string() })?;
        let mut orders = BTreeMap::new();
        for (id, o) in raw {
            let mut paid = Decimal::ZERO;
            let mut refunded = Decimal::ZERO;
            for p in &o.payment_history {
                let amount = Decimal::from_str(p.amount.get()).map_err(|e| ConnectorError::Malformed {
                    path: shown.clone(),
                    message: format!("order {id}: amount {}: {e}", p.amount.get()),
                })?;
                match p.transaction_type.as_str() {
                    "payment" => paid += amount,
                    "refund" => refunded += amount,
                    other => {
                        return Err(ConnectorError::Malformed {
                            path: shown,
                            message: format!("order {id}: unknown transaction type {other:?}"),
                        });
                    }
                }
            }
            orders.insert(
                id,
                OrderFacts {
                    order_id: o.order_id,
                    customer_id: o.user_id,
                    status: o.status,
                    currency: usd.clone(),
                    paid,
                    refunded,
                    item_ids: o.items.map(|items| items.into_iter().map(|i| i.item_id).collect()),
                },
            );
        }
        Ok(SnapshotConnector { orders })
    }

    pub fn len(&self) -> usize {
        self.orders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }
}

impl SnapshotConnector {
    fn order_read(&self, params: &Map<String, Value>) -> Result<(RecordedRequest, u16, Value), ConnectorError> {
        let unknown: Vec<String> =
            params.keys().filter(|k| *k != "order_id").map(|k| format!("unknown parameter {k:?}")).collect();
        let Some(Value::String(id)) = params.get("order_id") else {
            return Err(ConnectorError::InvalidParams { errors: vec!["order_id: a string is required".into()] });
        };
        if !unknown.is_empty() {
            return Err(ConnectorError::InvalidParams { errors: unknown });
        }
        let request = RecordedRequest {
            method: "GET".into(),
            url: format!("snapshot:orders.json#{id}"),
            headers: Default::default(),
            body: None,
        };
        let Some(o) = self.orders.get(id) else {
            return Err(ConnectorError::Rejected {
                status: 404,
                code: "order_not_found".into(),
                message: format!("no order {id} in the snapshot"),
            });
        };
        let response = json!({
            "order_id": o.order_id,
            "customer_id": o.customer_id,
            "status": o.status,
            "currency": o.currency.as_str(),
            "totals": {
                "paid": o.paid.to_string(),
                "refunded": o.refunded.to_string(),
                "refundable": (o.paid - o.refunded).to_string(),
            },
        });
        Ok((request, 200, response))
    }
}

impl Connector for SnapshotConnector {
    fn order_facts(&self, order_id: &str) -> Result<Option<OrderFacts>, ConnectorError> {
        Ok(self.orders.get(order_id).cloned())
    }

    fn call(
        &self,
        action: &str,
        params: &Map<String, Value>,
        _idempotency_key: Option<&str>,
    ) -> Result<CallRecord, ConnectorError> {
        let start = Instant::now();
        if action != ORDER_READ {
            return Err(unsupported(action));
        }
        let (request, status, response) = self.order_read(params)?;
        let duration_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        Ok(CallRecord {
            action: action.to_string(),
            request,
            status,
            response,
            duration_ms,
            attempts: 1,
            evidence: None,
        })
    }

    fn describe_call(
        &self,
        action: &str,
        params: &Map<String, Value>,
        _idempotency_key: Option<&str>,
    ) -> Result<RecordedRequest, ConnectorError> {
        if action != ORDER_READ {
            return Err(unsupported(action));
        }
        match self.order_read(params) {
            Ok((request, _, _)) => Ok(request),
            Err(ConnectorError::Rejected { .. }) => Ok(RecordedRequest {
                method: "GET".into(),
                url: format!("snapshot:orders.json#{}", params.get("order_id").and_then(Value::as_str).unwrap_or("")),
                headers: Default::default(),
                body: None,
            }),
            Err(e) => Err(e),
        }
    }

    fn read_state(&self, write_action: &str, _params: &Map<String, Value>) -> Result<Option<Value>, ConnectorError> {
        Err(unsupported(write_action))
    }

    fn check_expectation(
        &self,
        write_action: &str,
        _params: &Map<String, Value>,
        _before: Option<&Value>,
        _after: Option<&Value>,
    ) -> Result<(), ExpectationError> {
        Err(ExpectationError::Unsupported {
            what: format!("{write_action}: a snapshot is read-only, nothing is ever written through it"),
        })
    }
}

fn unsupported(action: &str) -> ConnectorError {
    ConnectorError::Unsupported {
        what: format!("{action}: a snapshot is read-only and answers only {ORDER_READ} (configure an HTTP connector)"),
    }
}
