//! A connector over a platform export on disk (`orders.json` in the tau-retail
//! layout): read-only facts for offline decisions and the demo.
//!
//! Amounts are read from the JSON text itself (`RawValue`), never through a float.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use countersign_core::decide::OrderFacts;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::{Connector, ConnectorError};

#[derive(Deserialize)]
struct RawOrder {
    order_id: String,
    user_id: String,
    status: String,
    payment_history: Vec<RawPayment>,
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

impl Connector for SnapshotConnector {
    fn order_facts(&self, order_id: &str) -> Result<Option<OrderFacts>, ConnectorError> {
        Ok(self.orders.get(order_id).cloned())
    }
}
