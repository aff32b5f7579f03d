//! Page actions: how each policy action is done on a seller center's web pages, as the
//! workspace describes it (TOML, every table closed, errors as `file:line:column`).
//! The format is documented in `docs/page-actions.md`; `assets/demo/pages.toml` is the
//! demo seller center's.

//!
//! `raw.rs` is the file as written, `compile.rs` checks it into the form below, and
//! `params.rs` checks a call's parameters against an action's.

mod compile;
mod params;
mod raw;

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use countersign_connectors::browser::{check_pages_base_url, check_profile};
use countersign_connectors::catalog::OrderFactsMap;
use countersign_connectors::expect::Expectation;
use countersign_core::policy::Kind;
use rust_decimal::Decimal;
use serde_json::{Map, Value};

/// A configuration error, pointing into the file.
pub type PagesError = countersign_connectors::config_file::FileError;

/// A checked page-actions file.
#[derive(Debug, Clone)]
pub struct PageActions {
    pub file: String,
    pub platform: String,
    /// `scheme://host:port` without a trailing slash.
    pub base_url: String,
    /// `PLATFORM/STORE`: the browser profile's folder under the data dir.
    pub profile: String,
    pub timeout_ms: u64,
    pub session: SessionSpec,
    pub order_facts: Option<OrderFactsMap>,
    pub actions: BTreeMap<String, PageAction>,
}

/// How to tell that the platform wants a person.
#[derive(Debug, Clone)]
pub struct SessionSpec {
    /// Where a person signs in (relative to the base URL).
    pub login_url: String,
    /// Any of these present: the session has ended (a login form).
    pub login: Vec<String>,
    /// Any of these present: the platform asks to verify who is there (one-time code, captcha).
    pub verification: Vec<String>,
    /// Any of these present: a dialog the action does not expect.
    pub dialogs: Vec<String>,
    /// Elements whose `value` is a secret (CSRF tokens…): blanked in page snapshots.
    pub redact: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct PageAction {
    pub name: String,
    pub kind: Kind,
    pub url: Template,
    pub params: BTreeMap<String, ParamSpec>,
    pub page: Recognise,
    pub read: BTreeMap<String, ReadSpec>,
    pub fill: Vec<FillSpec>,
    /// A write's form field (CSS selector, often a hidden input) that carries the
    /// executor's idempotency key, where the platform honours one as the API honours an
    /// `Idempotency-Key` (a form nonce). `None`: the page offers none, so a submit whose
    /// outcome is uncertain can only be read back, never sent again.
    pub idempotency_field: Option<String>,
    pub submit: Option<String>,
    pub success: Option<Recognise>,
    pub refusal: Option<RefusalSpec>,
    pub state: Option<StateSpec>,
    /// What the state read after the write must show: the connectors' one contract
    /// ([`countersign_connectors::expect`]), a field `f` being the pointer `/f`.
    pub expect: Vec<Expectation>,
}

#[derive(Debug, Clone)]
pub enum ParamKind {
    Text { pattern: Option<regex::Regex>, one_of: Option<Vec<String>>, max_len: Option<usize> },
    Money { currency: Option<String> },
    Object { fields: Vec<String> },
}

#[derive(Debug, Clone)]
pub struct ParamSpec {
    pub kind: ParamKind,
    pub required: bool,
}

/// What a page must show to be the page the action describes.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Recognise {
    pub selectors: Vec<String>,
    pub text: Vec<TextCheck>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TextCheck {
    pub selector: String,
    pub contains: Option<Template>,
    pub equals: Option<Template>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Text,
    Money,
    Integer,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ReadSpec {
    pub selector: String,
    pub attribute: Option<String>,
    #[serde(rename = "type")]
    pub kind: FieldType,
}

#[derive(Debug, Clone)]
pub struct FillSpec {
    pub selector: String,
    pub value: Template,
}

#[derive(Debug, Clone)]
pub struct RefusalSpec {
    pub selector: String,
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone)]
pub struct StateSpec {
    pub action: String,
    /// read parameter ← write parameter
    pub params: BTreeMap<String, String>,
}

/// A text with `{param}` / `{param.field}` holes, filled from an action's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub text: String,
    parts: Vec<Part>,
}

impl serde::Serialize for Template {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Hole { param: String, field: Option<String> },
}

impl Template {
    fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Lit(rest[..open].to_owned()));
            }
            let close = rest[open..].find('}').ok_or_else(|| format!("unclosed '{{' in {text:?}"))? + open;
            let hole = &rest[open + 1..close];
            let (param, field) = match hole.split_once('.') {
                Some((p, f)) => (p, Some(f.to_owned())),
                None => (hole, None),
            };
            if !is_name(param) || field.as_deref().is_some_and(|f| !is_name(f)) {
                return Err(format!("{{{hole}}} is not a parameter: write {{name}} or {{name.field}}"));
            }
            parts.push(Part::Hole { param: param.to_owned(), field });
            rest = &rest[close + 1..];
        }
        if rest.contains('}') {
            return Err(format!("unopened '}}' in {text:?}"));
        }
        if !rest.is_empty() {
            parts.push(Part::Lit(rest.to_owned()));
        }
        Ok(Template { text: text.to_owned(), parts })
    }

    fn holes(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.parts.iter().filter_map(|p| match p {
            Part::Hole { param, field } => Some((param.as_str(), field.as_deref())),
            Part::Lit(_) => None,
        })
    }

    /// The text with every hole filled; `encode` is applied to each value (URL paths).
    pub fn render(&self, values: &Map<String, Value>, encode: fn(&str) -> String) -> Result<String, String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(l) => out.push_str(l),
                Part::Hole { param, field } => out.push_str(&encode(&hole_value(values, param, field.as_deref())?)),
            }
        }
        Ok(out)
    }
}

/// The text a hole stands for. A money parameter (`"10.50 USD"` or `{amount, currency}`)
/// gives its amount as `{p}` and its currency as `{p.currency}`; an object gives its
/// fields as `{p.field}` (a missing optional field is empty).
fn hole_value(values: &Map<String, Value>, param: &str, field: Option<&str>) -> Result<String, String> {
    let v = values.get(param);
    match (v, field) {
        (None | Some(Value::Null), _) => Ok(String::new()),
        (Some(Value::String(s)), None) => Ok(match s.split_once(' ') {
            Some((amount, _)) if Decimal::from_str(amount).is_ok() => amount.to_owned(),
            _ => s.clone(),
        }),
        (Some(Value::String(s)), Some("currency")) => {
            Ok(s.split_once(' ').map(|(_, c)| c.to_owned()).unwrap_or_default())
        }
        (Some(Value::Object(o)), None) if o.contains_key("amount") => {
            o["amount"].as_str().map(str::to_owned).ok_or_else(|| format!("{param}.amount is not a string"))
        }
        (Some(Value::Object(o)), Some(f)) => match o.get(f) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(format!("{param}.{f} is not text")),
        },
        (Some(Value::Bool(b)), None) => Ok(b.to_string()),
        (Some(Value::Number(n)), None) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        _ => Err(format!("parameter {param} cannot be written into a page as {}", field.unwrap_or("text"))),
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && s.as_bytes()[0].is_ascii_lowercase()
}

impl PageActions {
    pub fn load(path: &Path) -> Result<PageActions, PagesError> {
        let (shown, source) = countersign_connectors::config_file::read("page actions", path)?;
        PageActions::parse(&shown, &source)
    }

    /// Parse and check. `file` is only used in error messages.
    pub fn parse(file: &str, source: &str) -> Result<PageActions, PagesError> {
        compile::parse(file, source)
    }

    pub fn action(&self, name: &str) -> Option<&PageAction> {
        self.actions.get(name)
    }

    /// What the after-state of `write_action` must show (for
    /// [`countersign_connectors::expect::check_write`]); `None` when no such write is here.
    pub fn expectations(&self, write_action: &str) -> Option<&[Expectation]> {
        self.action(write_action).filter(|a| a.kind == Kind::Write).map(|a| a.expect.as_slice())
    }

    /// Point the actions at another address (a demo store on an ephemeral port). Same
    /// rules as `base_url` in the file.
    pub fn with_base_url(mut self, url: &str) -> Result<PageActions, String> {
        self.base_url = check_pages_base_url(url)?;
        Ok(self)
    }

    /// Use another browser profile (`PLATFORM/STORE`, a store of its own). Same rules as
    /// `profile` in the file.
    pub fn with_profile(mut self, profile: &str) -> Result<PageActions, String> {
        check_profile(profile)?;
        profile.clone_into(&mut self.profile);
        Ok(self)
    }
}
