//! The catalog file as written: TOML, every table closed to unknown keys, with
//! source spans kept on the values that later checks point at.

use std::collections::BTreeMap;

use countersign_core::policy::Kind;
use serde::Deserialize;
use serde_spanned::Spanned;

use super::{Encode, HttpMethod, Location};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCatalog {
    pub platform: RawPlatform,
    /// JSON Schema definitions shared by every action's schema (`{ "$ref" = "#/$defs/NAME" }`).
    #[serde(default)]
    pub defs: Option<Spanned<toml::Table>>,
    #[serde(default)]
    pub facts: RawFacts,
    #[serde(default)]
    pub actions: BTreeMap<String, Spanned<RawAction>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPlatform {
    pub name: Spanned<String>,
    pub base_url: Spanned<String>,
    pub credential: Spanned<String>,
    #[serde(default)]
    pub connect_timeout_ms: Option<Spanned<u64>>,
    #[serde(default)]
    pub timeout_ms: Option<Spanned<u64>>,
    #[serde(default)]
    pub max_retries: Option<Spanned<u32>>,
    #[serde(default)]
    pub backoff_ms: Option<Spanned<u64>>,
    #[serde(default)]
    pub max_retry_after_ms: Option<Spanned<u64>>,
    #[serde(default)]
    pub not_secret: Vec<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFacts {
    #[serde(default)]
    pub order: Option<Spanned<RawOrderFacts>>,
    #[serde(default)]
    pub customer: Option<Spanned<RawCustomerFacts>>,
    #[serde(default)]
    pub lookup: Option<Spanned<RawLookupFacts>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCustomerFacts {
    pub action: Spanned<String>,
    pub param: Spanned<String>,
    pub customer_id: Spanned<String>,
    /// The list of payment methods, and where each one's id is inside it.
    pub payment_methods: Spanned<String>,
    pub payment_method_id: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLookupFacts {
    /// Where an identity look-up's answer names the account it found.
    pub customer_id: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOrderFacts {
    pub action: Spanned<String>,
    pub param: Spanned<String>,
    pub order_id: Spanned<String>,
    pub customer_id: Spanned<String>,
    pub status: Spanned<String>,
    pub currency: Spanned<String>,
    pub paid: Spanned<String>,
    pub refunded: Spanned<String>,
    /// The list of the order's items, and where each one's id is inside it.
    #[serde(default)]
    pub items: Option<Spanned<String>>,
    #[serde(default)]
    pub item_id: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAction {
    pub kind: Kind,
    pub method: Spanned<HttpMethod>,
    pub path: Spanned<String>,
    #[serde(default)]
    pub reversible: Option<bool>,
    #[serde(default)]
    pub idempotent: Option<bool>,
    #[serde(default)]
    pub params: BTreeMap<String, Spanned<RawBinding>>,
    #[serde(default)]
    pub schema: Option<Spanned<toml::Value>>,
    #[serde(default)]
    pub state: Option<Spanned<RawState>>,
    #[serde(default)]
    pub expect: Option<Spanned<Vec<Spanned<RawExpect>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBinding {
    #[serde(rename = "in")]
    pub location: Location,
    #[serde(default)]
    pub name: Option<Spanned<String>>,
    #[serde(default)]
    pub encode: Option<Encode>,
    #[serde(default)]
    pub currency_name: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawState {
    pub action: Spanned<String>,
    #[serde(default)]
    pub params: BTreeMap<String, Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExpect {
    pub path: Spanned<String>,
    #[serde(default)]
    pub equals: Option<toml::Value>,
    #[serde(default)]
    pub equals_param: Option<Spanned<String>>,
    #[serde(default)]
    pub includes_param: Option<Spanned<String>>,
    #[serde(default)]
    pub increased_by_param: Option<Spanned<String>>,
    #[serde(default)]
    pub changed: Option<Spanned<bool>>,
    #[serde(default)]
    pub grew_by: Option<Spanned<u64>>,
}
