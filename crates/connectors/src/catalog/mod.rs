//! The action catalog: how each action of the policy is carried out on a platform's API.
//!
//! A catalog is workspace configuration (`assets/demo/catalog.toml`), not code: for each
//! action it gives the HTTP method and path template, where each parameter goes (path,
//! query or JSON body, renamed to the API's field names), the JSON Schema its parameters
//! must satisfy before any request is sent, whether it reads or writes, whether it can be
//! undone and whether the platform honours an `Idempotency-Key` for it, and for writes the
//! read that fetches the object's state before and after and what the after-state must
//! show. The format and the expectation language are documented at the top of the demo
//! catalog file.
//!
//! Parsing is strict, like the policy's: unknown keys, unknown names and entries that
//! could never work (a path placeholder naming no parameter, a state read that is not a
//! read) are errors, reported as `file:line:column: message`.
//!
//! To add an encoding: add the raw field (`raw.rs`), check it in `compile_*` (including
//! the ways it could never work), encode it, document it in the catalog file's header and
//! add a test. Expectations are the connectors' shared contract ([`crate::expect`]): a new
//! kind is added there, then parsed here and in the browser's page actions.

// The file as written (closed tables, spans kept), compiling it into the checked form
// below (every check of what could never work), and turning a call into a request.
mod compile;
mod raw;
mod request;

pub(crate) use compile::check_base_url;
pub use request::EncodedRequest;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use countersign_core::policy::{Kind, Layer, Policy};
use reqwest::Url;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::credentials::CredentialName;
pub use crate::expect::{Check, Expectation, ExpectationError};

/// An HTTP method a catalog entry may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl HttpMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
        }
    }
}

impl fmt::Display for HttpMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a parameter goes in the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Location {
    Path,
    Query,
    Body,
}

/// How a parameter's value is written into the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encode {
    /// The value as it is.
    #[default]
    Value,
    /// Money (`"10.50 USD"` or `{"amount": "10.50", "currency": "USD"}`) as two fields:
    /// the amount text under the binding's name and the currency under `currency_name`.
    Money,
    /// An object's fields become fields of the body itself.
    Spread,
}

/// Where a parameter's value lands: a field, or one field of each element of a list of
/// objects (`items[].item_id`: element *i* of the parameter goes to `items[i].item_id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Plain(String),
    Each { list: String, field: String },
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Plain(name) => f.write_str(name),
            Field::Each { list, field } => write!(f, "{list}[].{field}"),
        }
    }
}

/// Where one parameter goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub location: Location,
    pub field: Field,
    pub encode: Encode,
    /// With [`Encode::Money`]: the field that carries the currency.
    pub currency_field: String,
}

/// One piece of a path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    Param(String),
}

/// The read that fetches a written object's state, and how the write's parameters map
/// onto the read's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRead {
    pub action: String,
    /// read parameter ← write parameter.
    pub params: BTreeMap<String, String>,
}

/// A checked catalog entry.
#[derive(Debug, Clone)]
pub struct ActionSpec {
    pub name: String,
    pub kind: Kind,
    pub method: HttpMethod,
    pub path: Vec<Segment>,
    /// The path template as written.
    pub path_template: String,
    pub reversible: bool,
    /// A read, or a write for which the platform honours an `Idempotency-Key`: safe to retry.
    pub idempotent: bool,
    pub params: BTreeMap<String, Binding>,
    /// The parameters' JSON Schema (with the catalog's shared `$defs`).
    pub schema: Value,
    validator: Arc<jsonschema::Validator>,
    /// Writes only: the read of the object's state before and after.
    pub state: Option<StateRead>,
    /// Writes only: what the after-state must show.
    pub expect: Vec<Expectation>,
}

/// Where the connector finds the policy's order facts in an order read's response
/// (JSON Pointers; amounts must be decimal strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderFactsMap {
    pub action: String,
    pub param: String,
    pub order_id: String,
    pub customer_id: String,
    pub status: String,
    pub currency: String,
    pub paid: String,
    pub refunded: String,
    /// Where the list of the order's items is, and each item's id in it (JSON answers).
    pub items: Option<(String, String)>,
}

impl OrderFactsMap {
    /// The facts of order `order_id`, read through `read` (the connector's read of
    /// `action` with `param` set to the id, answering `None` when the platform has no such
    /// order) and picked from its answer with `text(answer, key)`. An id the action's
    /// parameters refuse (`InvalidParams`: no order can have it) is no order either.
    pub fn read<A>(
        &self,
        order_id: &str,
        read: impl FnOnce(&str, &Map<String, Value>) -> Result<Option<A>, crate::ConnectorError>,
        text: impl Fn(&A, &str) -> Option<String>,
    ) -> Result<Option<countersign_core::decide::OrderFacts>, crate::ConnectorError> {
        let mut params = Map::new();
        params.insert(self.param.clone(), Value::String(order_id.to_owned()));
        match read(&self.action, &params) {
            Ok(Some(answer)) => self.facts_from(|key| text(&answer, key)).map(Some),
            Ok(None) | Err(crate::ConnectorError::InvalidParams { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The facts from the read's answer: `text(key)` is the text found under each key
    /// (a JSON Pointer, a page field name: whatever the connector's map holds).
    /// Amounts must be decimal text.
    pub fn facts_from(
        &self,
        text: impl Fn(&str) -> Option<String>,
    ) -> Result<countersign_core::decide::OrderFacts, crate::ConnectorError> {
        use std::str::FromStr as _;
        let malformed = |detail: String| crate::ConnectorError::MalformedResponse { detail };
        let text = |key: &str| text(key).ok_or_else(|| malformed(format!("{}: {key} is not a string", self.action)));
        let amount = |key: &str| -> Result<rust_decimal::Decimal, crate::ConnectorError> {
            let t = text(key)?;
            rust_decimal::Decimal::from_str(&t)
                .map_err(|_| malformed(format!("{}: {key} = {t:?} is not a decimal amount", self.action)))
        };
        let currency = countersign_core::money::Currency::try_from(text(&self.currency)?)
            .map_err(|e| malformed(format!("{}: {e}", self.action)))?;
        Ok(countersign_core::decide::OrderFacts {
            order_id: text(&self.order_id)?,
            customer_id: text(&self.customer_id)?,
            status: text(&self.status)?,
            currency,
            paid: amount(&self.paid)?,
            refunded: amount(&self.refunded)?,
            item_ids: None,
        })
    }

    /// The ids of the order's items in a JSON answer, when the map says where they are.
    /// An answer without the list leaves the items unknown (no item can be shown to be
    /// on the order); a list that is not one is a malformed answer.
    pub fn item_ids(&self, answer: &Value) -> Result<Option<Vec<String>>, crate::ConnectorError> {
        let Some((list, id)) = &self.items else { return Ok(None) };
        if answer.pointer(list).is_none() {
            return Ok(None);
        }
        ids_in(&self.action, answer, list, id).map(Some)
    }
}

/// The ids found at `id` in each element of the list at `list`.
fn ids_in(action: &str, answer: &Value, list: &str, id: &str) -> Result<Vec<String>, crate::ConnectorError> {
    let malformed = |detail: String| crate::ConnectorError::MalformedResponse { detail };
    let items = answer
        .pointer(list)
        .and_then(Value::as_array)
        .ok_or_else(|| malformed(format!("{action}: {list} is not a list")))?;
    items
        .iter()
        .map(|item| {
            item.pointer(id)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| malformed(format!("{action}: an element of {list} has no string at {id}")))
        })
        .collect()
}

/// Where the connector finds what belongs to a customer account in a customer read's
/// answer (JSON Pointers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerFactsMap {
    pub action: String,
    pub param: String,
    pub customer_id: String,
    pub payment_methods: String,
    pub payment_method_id: String,
}

impl CustomerFactsMap {
    /// The facts in a customer read's JSON answer.
    pub fn facts_from(&self, answer: &Value) -> Result<countersign_core::decide::CustomerFacts, crate::ConnectorError> {
        let customer_id = answer.pointer(&self.customer_id).and_then(Value::as_str).ok_or_else(|| {
            crate::ConnectorError::MalformedResponse {
                detail: format!("{}: {} is not a string", self.action, self.customer_id),
            }
        })?;
        Ok(countersign_core::decide::CustomerFacts {
            customer_id: customer_id.to_owned(),
            payment_method_ids: ids_in(&self.action, answer, &self.payment_methods, &self.payment_method_id)?,
        })
    }
}

/// The platform: where it is, which credential to present, how patient to be.
#[derive(Debug, Clone)]
pub struct Platform {
    pub name: String,
    pub base_url: Url,
    pub credential: CredentialName,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub max_retries: u32,
    pub backoff: Duration,
    /// A 429's `Retry-After` longer than this is not waited for.
    pub max_retry_after: Duration,
    /// Field names that contain a secret word (token, secret, password, authorization)
    /// but that the platform documents as holding no secret; their values are kept (and
    /// still searched for secret fields inside).
    pub not_secret: BTreeSet<String>,
}

/// A checked, immutable catalog.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub file: String,
    pub platform: Platform,
    pub order_facts: Option<OrderFactsMap>,
    pub customer_facts: Option<CustomerFactsMap>,
    /// Where an identity look-up's answer names the account it found.
    pub lookup_customer_id: Option<String>,
    pub actions: BTreeMap<String, ActionSpec>,
}

/// A catalog that could not be loaded: where and why.
pub type CatalogError = crate::config_file::FileError;

/// How a catalog and a policy differ (see [`Catalog::check_against`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Coverage {
    /// Actions the policy lets execute that the catalog does not describe.
    pub missing: Vec<String>,
    /// Catalog entries for actions the policy does not name.
    pub unknown: Vec<String>,
    /// Actions of the policy that never execute (advice, replies): they need no entry.
    pub advice_only: Vec<String>,
    /// Entries that exist on both sides but disagree (kind, parameters).
    pub mismatches: Vec<String>,
}

impl Coverage {
    /// Every executable action is described, and nothing else is.
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty() && self.unknown.is_empty() && self.mismatches.is_empty()
    }
}

/// The 1-based line and column (in characters) of byte `offset` in `source`, as
/// configuration errors report them.
pub fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let mut start = offset.min(source.len());
    while !source.is_char_boundary(start) {
        start -= 1;
    }
    let before = &source[..start];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

impl Catalog {
    /// Read and check the catalog at `path`.
    pub fn load(path: &Path) -> Result<Catalog, CatalogError> {
        let (shown, source) = crate::config_file::read("catalog", path)?;
        Catalog::parse(&shown, &source)
    }

    /// Parse and check a catalog. `file` is only used in error messages.
    pub fn parse(file: &str, source: &str) -> Result<Catalog, CatalogError> {
        compile::parse(file, source)
    }

    pub fn action(&self, name: &str) -> Option<&ActionSpec> {
        self.actions.get(name)
    }

    /// Compare with a policy: which actions the policy lets execute that the catalog
    /// lacks, which entries the policy does not name, and where the two disagree.
    pub fn check_against(&self, policy: &Policy) -> Coverage {
        let mut out = Coverage::default();
        for (name, def) in &policy.actions {
            let executes = def.layer == Layer::Execute;
            match (self.actions.get(name), executes) {
                (None, true) => out.missing.push(name.clone()),
                (None, false) => out.advice_only.push(name.clone()),
                (Some(_), false) => {
                    out.advice_only.push(name.clone());
                    out.mismatches.push(format!("{name}: the policy never executes it, the catalog has an entry"));
                }
                (Some(spec), true) => {
                    if spec.kind != def.kind {
                        out.mismatches
                            .push(format!("{name}: the policy says {:?}, the catalog {:?}", def.kind, spec.kind));
                    }
                    let in_policy: BTreeSet<&String> = def.params.keys().collect();
                    let in_catalog: BTreeSet<&String> = spec.params.keys().collect();
                    for p in in_policy.difference(&in_catalog) {
                        out.mismatches.push(format!("{name}: parameter {p} is in the policy, not in the catalog"));
                    }
                    for p in in_catalog.difference(&in_policy) {
                        out.mismatches.push(format!("{name}: parameter {p} is in the catalog, not in the policy"));
                    }
                }
            }
        }
        out.unknown = self.actions.keys().filter(|a| !policy.actions.contains_key(*a)).cloned().collect();
        out
    }

    /// What the after-state of `write_action` must show (for [`crate::expect::check_write`]);
    /// `None` when the catalog has no such write.
    pub fn expectations(&self, write_action: &str) -> Option<&[Expectation]> {
        self.actions.get(write_action).filter(|s| s.kind == Kind::Write).map(|s| s.expect.as_slice())
    }
}
