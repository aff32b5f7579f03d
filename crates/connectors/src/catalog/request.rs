//! Requests: an action's parameters checked against its JSON Schema, then written into
//! the method, path, query and body the catalog entry describes.

use std::collections::BTreeMap;

use countersign_core::money::Money;
use serde_json::{Map, Value};

use super::{ActionSpec, Binding, Encode, Field, HttpMethod, Location, Segment};

/// The request an action and its parameters become, before the base URL and credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedRequest {
    pub method: HttpMethod,
    /// Percent-encoded path, starting with `/`.
    pub path: String,
    pub query: Vec<(String, String)>,
    /// `None` for GET and DELETE; a JSON object (possibly empty) otherwise.
    pub body: Option<Value>,
}

impl ActionSpec {
    /// Check the parameters against the action's JSON Schema. Every problem is listed,
    /// each prefixed with where it is (`/amount: ...`).
    pub fn validate(&self, params: &Map<String, Value>) -> Result<(), Vec<String>> {
        let instance = Value::Object(params.clone());
        let mut errors: Vec<String> = self
            .validator
            .iter_errors(&instance)
            .map(|e| {
                let at = e.instance_path().to_string();
                if at.is_empty() { e.to_string() } else { format!("{at}: {e}") }
            })
            .collect();
        for name in params.keys() {
            if !self.params.contains_key(name) {
                errors.push(format!("unknown parameter {name:?} for {}", self.name));
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    /// Turn (already validated) parameters into a request.
    pub fn encode(&self, params: &Map<String, Value>) -> Result<EncodedRequest, Vec<String>> {
        let mut errors = Vec::new();
        let mut path = String::new();
        for seg in &self.path {
            match seg {
                Segment::Literal(text) => path.push_str(text),
                Segment::Param(name) => match params.get(name).map(scalar_text) {
                    Some(Some(text)) => path.push_str(&percent_encode(&text)),
                    Some(None) => errors.push(format!("{name}: a path parameter must be a string or a number")),
                    None => errors.push(format!("{name}: required in the path")),
                },
            }
        }
        let mut query = Vec::new();
        let mut body = Map::new();
        let mut lists: BTreeMap<String, (String, usize)> = BTreeMap::new();
        for (name, binding) in &self.params {
            let Some(value) = params.get(name) else { continue };
            let result = match binding.location {
                Location::Path => Ok(()),
                Location::Query => encode_query(binding, value, &mut query),
                Location::Body => encode_body(binding, name, value, &mut body, &mut lists),
            };
            if let Err(e) = result {
                errors.push(format!("{name}: {e}"));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let body = match self.method {
            HttpMethod::Get | HttpMethod::Delete => None,
            _ => Some(Value::Object(body)),
        };
        Ok(EncodedRequest { method: self.method, path, query, body })
    }

    /// The parameters of this write's state read.
    pub fn state_params(&self, params: &Map<String, Value>) -> Option<(String, Map<String, Value>)> {
        let state = self.state.as_ref()?;
        let mapped =
            state.params.iter().filter_map(|(to, from)| params.get(from).map(|v| (to.clone(), v.clone()))).collect();
        Some((state.action.clone(), mapped))
    }
}

/// A string, number or boolean as request text.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Percent-encode one path segment: everything but RFC 3986 unreserved characters, so an
/// order id's `#` (or a `/`) can never change which resource is addressed.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn money_parts(value: &Value) -> Result<(String, String), String> {
    let m = Money::from_json(value).map_err(|e| e.to_string())?;
    Ok((m.amount.to_string(), m.currency.to_string()))
}

fn encode_query(binding: &Binding, value: &Value, query: &mut Vec<(String, String)>) -> Result<(), String> {
    let Field::Plain(field) = &binding.field else {
        return Err("a query parameter cannot be a list of objects".into());
    };
    match binding.encode {
        Encode::Money => {
            let (amount, currency) = money_parts(value)?;
            query.push((field.clone(), amount));
            query.push((binding.currency_field.clone(), currency));
        }
        Encode::Value | Encode::Spread => {
            let text = scalar_text(value).ok_or("a query parameter must be a string, a number or a boolean")?;
            query.push((field.clone(), text));
        }
    }
    Ok(())
}

fn insert_once(body: &mut Map<String, Value>, key: &str, value: Value) -> Result<(), String> {
    if body.contains_key(key) {
        return Err(format!("body field {key:?} would be set twice"));
    }
    body.insert(key.to_string(), value);
    Ok(())
}

fn encode_body(
    binding: &Binding,
    name: &str,
    value: &Value,
    body: &mut Map<String, Value>,
    lists: &mut BTreeMap<String, (String, usize)>,
) -> Result<(), String> {
    match (&binding.field, binding.encode) {
        (Field::Plain(field), Encode::Value) => insert_once(body, field, value.clone()),
        (Field::Plain(field), Encode::Money) => {
            let (amount, currency) = money_parts(value)?;
            insert_once(body, field, Value::String(amount))?;
            insert_once(body, &binding.currency_field, Value::String(currency))
        }
        (_, Encode::Spread) => {
            let obj = value.as_object().ok_or("expected an object to spread into the body")?;
            for (k, v) in obj {
                insert_once(body, k, v.clone())?;
            }
            Ok(())
        }
        (Field::Each { list, field }, _) => {
            let items = value.as_array().ok_or("expected a list")?;
            if let Some((other, len)) = lists.get(list)
                && *len != items.len()
            {
                return Err(format!("has {} elements but {other} has {len}: they pair up one to one", items.len()));
            }
            lists.insert(list.clone(), (name.to_string(), items.len()));
            let slot =
                body.entry(list.clone()).or_insert_with(|| Value::Array(vec![Value::Object(Map::new()); items.len()]));
            let Value::Array(elements) = slot else {
                return Err(format!("body field {list:?} would be set twice"));
            };
            for (element, item) in elements.iter_mut().zip(items) {
                if let Value::Object(obj) = element {
                    insert_once(obj, field, item.clone())?;
                }
            }
            Ok(())
        }
    }
}
