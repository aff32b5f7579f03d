//! Compiling a catalog: the file as written ([`super::raw`]) checked into a [`Catalog`],
//! refusing every entry that could never work, each error at `file:line:column`.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use countersign_core::policy::Kind;
use reqwest::Url;
use serde_json::{Map, Value};
use serde_spanned::Spanned;

use super::{
    ActionSpec, Binding, Catalog, CatalogError, Check, CustomerFactsMap, Encode, Expectation, Field, HttpMethod,
    Location, OrderFactsMap, Platform, Segment, StateRead, line_column, raw,
};
use crate::credentials::CredentialName;

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);
const DEFAULT_MAX_RETRIES: u32 = 2;
const DEFAULT_BACKOFF: Duration = Duration::from_millis(250);
const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

struct Ctx<'a> {
    file: &'a str,
    source: &'a str,
}

impl Ctx<'_> {
    fn err(&self, span: Range<usize>, message: impl Into<String>) -> CatalogError {
        let (line, column) = line_column(self.source, span.start);
        CatalogError::Invalid { file: self.file.to_string(), line, column, message: message.into() }
    }

    /// The span of `offset..offset+len` inside a string value written without escapes
    /// (so an error can point at the placeholder, not the start of the string).
    fn inner_span(&self, value_span: &Range<usize>, text: &str, offset: usize, len: usize) -> Range<usize> {
        let written = self.source.get(value_span.clone()).unwrap_or("");
        let quoted = |q: char| written.len() == text.len() + 2 && written.starts_with(q) && written.ends_with(q);
        if (quoted('"') || quoted('\'')) && &written[1..written.len() - 1] == text {
            let start = value_span.start + 1 + offset;
            start..start + len
        } else {
            value_span.clone()
        }
    }
}

/// Parse and check a catalog's text. `file` is only used in error messages.
pub(super) fn parse(file: &str, source: &str) -> Result<Catalog, CatalogError> {
    let cx = Ctx { file, source };
    let raw: raw::RawCatalog = toml::from_str(source).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        cx.err(span, e.message().trim_end().to_string())
    })?;
    compile(&cx, raw)
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && s.as_bytes()[0].is_ascii_lowercase()
}

fn is_api_field(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// TOML to JSON, refusing what JSON cannot hold.
fn toml_to_json(v: &toml::Value) -> Result<Value, String> {
    Ok(match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => {
            serde_json::Number::from_f64(*f).map(Value::Number).ok_or_else(|| format!("{f} is not a JSON number"))?
        }
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => return Err(format!("a TOML date-time ({d}) has no JSON equivalent: quote it")),
        toml::Value::Array(a) => Value::Array(a.iter().map(toml_to_json).collect::<Result<_, _>>()?),
        toml::Value::Table(t) => Value::Object(
            t.iter().map(|(k, v)| toml_to_json(v).map(|v| (k.clone(), v))).collect::<Result<Map<_, _>, _>>()?,
        ),
    })
}

fn check_pointer(cx: &Ctx<'_>, p: &Spanned<String>) -> Result<String, CatalogError> {
    let text = p.get_ref();
    if !(text.is_empty() || text.starts_with('/')) {
        return Err(cx.err(p.span(), format!("{text:?} is not a JSON Pointer: write \"/field/sub\" (or \"\" for all)")));
    }
    Ok(text.clone())
}

fn duration_ms(v: &Option<Spanned<u64>>, default: Duration) -> Duration {
    v.as_ref().map_or(default, |v| Duration::from_millis(*v.get_ref()))
}

/// Loopback hosts may be reached over plain HTTP; anything else needs HTTPS (the bearer
/// token must never cross a network in clear text).
pub(crate) fn check_base_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("base_url {text:?} is not a URL: {e}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("base_url must not carry credentials: they live in the OS keyring".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("base_url must not have a query or a fragment".into());
    }
    let loopback = url.host_str().is_some_and(|h| {
        h.eq_ignore_ascii_case("localhost")
            || h.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        "http" => Err(format!("base_url {text:?}: plain http is only allowed on loopback; use https")),
        other => Err(format!("base_url scheme {other:?} is not http or https")),
    }
}

fn compile(cx: &Ctx<'_>, raw: raw::RawCatalog) -> Result<Catalog, CatalogError> {
    let p = raw.platform;
    if !is_identifier(p.name.get_ref()) {
        return Err(cx.err(p.name.span(), "platform name must be lower_snake_case ASCII"));
    }
    let base_url = check_base_url(p.base_url.get_ref()).map_err(|m| cx.err(p.base_url.span(), m))?;
    let credential = p
        .credential
        .get_ref()
        .split_once('/')
        .and_then(|(platform, store)| CredentialName::new(platform, store).ok())
        .ok_or_else(|| {
            cx.err(p.credential.span(), "credential must be PLATFORM/STORE (letters, digits, '-', '_', '.')")
        })?;
    let timeout = duration_ms(&p.timeout_ms, DEFAULT_TIMEOUT);
    let connect_timeout = duration_ms(&p.connect_timeout_ms, DEFAULT_CONNECT_TIMEOUT);
    for t in [&p.timeout_ms, &p.connect_timeout_ms].into_iter().flatten() {
        if *t.get_ref() == 0 {
            return Err(cx.err(t.span(), "a timeout of 0 would fail every call"));
        }
    }
    let max_retries = p.max_retries.as_ref().map_or(DEFAULT_MAX_RETRIES, |r| *r.get_ref());
    if let Some(r) = &p.max_retries
        && *r.get_ref() > 5
    {
        return Err(cx.err(r.span(), "at most 5 retries: more only hides an outage"));
    }
    let platform = Platform {
        name: p.name.into_inner(),
        base_url,
        credential,
        connect_timeout,
        timeout,
        max_retries,
        backoff: duration_ms(&p.backoff_ms, DEFAULT_BACKOFF),
        max_retry_after: duration_ms(&p.max_retry_after_ms, DEFAULT_MAX_RETRY_AFTER),
        not_secret: p.not_secret.into_iter().map(Spanned::into_inner).collect(),
    };

    let defs = match &raw.defs {
        None => None,
        Some(d) => {
            let json = toml_to_json(&toml::Value::Table(d.get_ref().clone())).map_err(|m| cx.err(d.span(), m))?;
            Some(json)
        }
    };

    let mut actions = BTreeMap::new();
    let mut pending = Vec::new();
    for (name, action) in raw.actions {
        let span = action.span();
        let a = action.into_inner();
        let spec = compile_action(cx, &name, span.clone(), &a, defs.as_ref())?;
        actions.insert(name.clone(), spec);
        pending.push((name, span, a));
    }
    // Second pass: state reads and expectations refer to other entries.
    for (name, span, a) in pending {
        let (state, expect) = compile_write_checks(cx, &name, span, a, &actions)?;
        if let Some(spec) = actions.get_mut(&name) {
            spec.state = state;
            spec.expect = expect;
        }
    }

    let facts_read = |action: &Spanned<String>, param: &Spanned<String>, what: &str| -> Result<(), CatalogError> {
        let read = actions
            .get(action.get_ref())
            .ok_or_else(|| cx.err(action.span(), format!("unknown action {:?}", action.get_ref())))?;
        if read.kind != Kind::Read {
            return Err(cx.err(action.span(), format!("{what} facts come from a read")));
        }
        if !read.params.contains_key(param.get_ref()) {
            return Err(cx.err(param.span(), format!("{:?} has no parameter {:?}", action.get_ref(), param.get_ref())));
        }
        Ok(())
    };
    let order_facts = match raw.facts.order {
        None => None,
        Some(f) => {
            let span = f.span();
            let f = f.into_inner();
            facts_read(&f.action, &f.param, "order")?;
            let items = match (&f.items, &f.item_id) {
                (Some(list), Some(id)) => Some((check_pointer(cx, list)?, check_pointer(cx, id)?)),
                (None, None) => None,
                _ => {
                    return Err(
                        cx.err(span, "`items` and `item_id` go together: where the list is, and the id in each")
                    );
                }
            };
            Some(OrderFactsMap {
                items,
                order_id: check_pointer(cx, &f.order_id)?,
                customer_id: check_pointer(cx, &f.customer_id)?,
                status: check_pointer(cx, &f.status)?,
                currency: check_pointer(cx, &f.currency)?,
                paid: check_pointer(cx, &f.paid)?,
                refunded: check_pointer(cx, &f.refunded)?,
                action: f.action.into_inner(),
                param: f.param.into_inner(),
            })
        }
    };

    let customer_facts = match raw.facts.customer {
        None => None,
        Some(f) => {
            let f = f.into_inner();
            facts_read(&f.action, &f.param, "customer")?;
            Some(CustomerFactsMap {
                customer_id: check_pointer(cx, &f.customer_id)?,
                payment_methods: check_pointer(cx, &f.payment_methods)?,
                payment_method_id: check_pointer(cx, &f.payment_method_id)?,
                action: f.action.into_inner(),
                param: f.param.into_inner(),
            })
        }
    };
    let lookup_customer_id = match raw.facts.lookup {
        None => None,
        Some(f) => Some(check_pointer(cx, &f.into_inner().customer_id)?),
    };

    Ok(Catalog { file: cx.file.to_string(), platform, order_facts, customer_facts, lookup_customer_id, actions })
}

fn parse_template(cx: &Ctx<'_>, template: &Spanned<String>) -> Result<Vec<Segment>, CatalogError> {
    let text = template.get_ref();
    let whole = template.span();
    let at = |offset: usize, len: usize| cx.inner_span(&whole, text, offset, len);
    if !text.starts_with('/') {
        return Err(cx.err(whole, "a path template starts with '/'"));
    }
    if let Some(i) = text.find(|c: char| c == '?' || c == '#' || c.is_whitespace() || c.is_control()) {
        return Err(cx.err(
            at(i, 1),
            "a path template holds no query, fragment or whitespace: put query parameters under `params` with in = \"query\"",
        ));
    }
    let mut out = Vec::new();
    let mut literal = String::new();
    let mut i = 0;
    while let Some(c) = text[i..].chars().next() {
        match c {
            '{' => {
                let close = text[i + 1..]
                    .find('}')
                    .map(|c| i + 1 + c)
                    .ok_or_else(|| cx.err(at(i, 1), "unclosed '{' in the path template"))?;
                let name = &text[i + 1..close];
                if !is_identifier(name) {
                    return Err(cx.err(
                        at(i, close + 1 - i),
                        format!("placeholder {{{name}}} must name a parameter (lower_snake_case)"),
                    ));
                }
                if !literal.is_empty() {
                    out.push(Segment::Literal(std::mem::take(&mut literal)));
                }
                out.push(Segment::Param(name.to_string()));
                i = close + 1;
            }
            '}' => return Err(cx.err(at(i, 1), "unmatched '}' in the path template")),
            c => {
                literal.push(c);
                i += c.len_utf8();
            }
        }
    }
    if !literal.is_empty() {
        out.push(Segment::Literal(literal));
    }
    Ok(out)
}

fn compile_binding(cx: &Ctx<'_>, pname: &str, b: &Spanned<raw::RawBinding>) -> Result<Binding, CatalogError> {
    let span = b.span();
    let r = b.get_ref();
    let encode = r.encode.unwrap_or_default();
    let written = r.name.as_ref().map_or(pname, |n| n.get_ref().as_str());
    let name_span = r.name.as_ref().map_or(span.clone(), Spanned::span);
    let field = match written.split_once("[].") {
        Some((list, field)) if is_api_field(list) && is_api_field(field) => {
            Field::Each { list: list.to_string(), field: field.to_string() }
        }
        Some(_) => return Err(cx.err(name_span, format!("{written:?}: write a list field as \"list[].field\""))),
        None if is_api_field(written) => Field::Plain(written.to_string()),
        None => {
            return Err(
                cx.err(name_span, format!("{written:?} is not an API field name (letters, digits, '_', '-', '.')"))
            );
        }
    };
    let bad = |m: &str| Err(cx.err(span.clone(), format!("parameter {pname}: {m}")));
    match (r.location, &field, encode) {
        (Location::Path, Field::Each { .. }, _) | (Location::Query, Field::Each { .. }, _) => {
            return bad("only a body field can be a list of objects (\"list[].field\")");
        }
        (Location::Path, _, Encode::Money | Encode::Spread) => {
            return bad("a path parameter is written as it is (no `encode`)");
        }
        (Location::Query, _, Encode::Spread) => return bad("`spread` only applies to the body"),
        (_, Field::Each { .. }, Encode::Money | Encode::Spread) => {
            return bad("a \"list[].field\" parameter is written as it is (no `encode`)");
        }
        (Location::Path, Field::Plain(f), _) if f != pname => {
            return bad("a path parameter is named by its placeholder: drop `name`");
        }
        _ => {}
    }
    if r.currency_name.is_some() && encode != Encode::Money {
        return bad("`currency_name` only applies with encode = \"money\"");
    }
    let currency_field = match &r.currency_name {
        Some(c) if is_api_field(c.get_ref()) => c.get_ref().clone(),
        Some(c) => return Err(cx.err(c.span(), "not an API field name")),
        None => "currency".to_string(),
    };
    Ok(Binding { location: r.location, field, encode, currency_field })
}

fn compile_action(
    cx: &Ctx<'_>,
    name: &str,
    span: Range<usize>,
    a: &raw::RawAction,
    defs: Option<&Value>,
) -> Result<ActionSpec, CatalogError> {
    if !is_identifier(name) {
        return Err(cx.err(span, format!("action name {name:?} must be lower_snake_case ASCII")));
    }
    let (reversible, idempotent) = match a.kind {
        Kind::Read => {
            if a.idempotent == Some(false) {
                return Err(cx.err(span, format!("{name}: a read is idempotent by definition")));
            }
            if a.state.is_some() || a.expect.is_some() {
                return Err(cx.err(span, format!("{name}: only writes have `state` and `expect`")));
            }
            (a.reversible.unwrap_or(true), true)
        }
        Kind::Write => {
            match (a.reversible, a.idempotent) {
                (Some(r), Some(i)) => (r, i),
                _ => {
                    return Err(cx.err(
                    span,
                    format!("{name}: a write must say whether it is `reversible` and `idempotent` (honours Idempotency-Key)"),
                ));
                }
            }
        }
    };
    if a.kind == Kind::Write && *a.method.get_ref() == HttpMethod::Get {
        return Err(cx.err(a.method.span(), format!("{name}: a write cannot be a GET")));
    }
    let path = parse_template(cx, &a.path)?;

    let mut params = BTreeMap::new();
    for (pname, b) in &a.params {
        if !is_identifier(pname) {
            return Err(cx.err(b.span(), format!("parameter name {pname:?} must be lower_snake_case ASCII")));
        }
        params.insert(pname.clone(), compile_binding(cx, pname, b)?);
    }
    // Every placeholder names a path parameter, and every path parameter has a placeholder.
    let placeholders: BTreeSet<&str> =
        path.iter().filter_map(|s| if let Segment::Param(p) = s { Some(p.as_str()) } else { None }).collect();
    for p in &placeholders {
        match params.get(*p) {
            Some(b) if b.location == Location::Path => {}
            found => {
                let text = a.path.get_ref();
                let needle = format!("{{{p}}}");
                let at = text.find(&needle).unwrap_or(0);
                let why = if found.is_some() {
                    format!("placeholder {needle} names parameter {p:?}, which is not bound `in = \"path\"`")
                } else {
                    format!("placeholder {needle} names no parameter of {name}: add params.{p} = {{ in = \"path\" }}")
                };
                return Err(cx.err(cx.inner_span(&a.path.span(), text, at, needle.len()), why));
            }
        }
    }
    for (pname, b) in &params {
        if b.location == Location::Path && !placeholders.contains(pname.as_str()) {
            return Err(cx.err(
                a.params[pname].span(),
                format!(
                    "parameter {pname} goes in the path, but the template {:?} has no {{{pname}}}",
                    a.path.get_ref()
                ),
            ));
        }
    }

    // The JSON Schema, with the shared definitions.
    let (mut schema, schema_span) = match &a.schema {
        None if params.is_empty() => {
            (serde_json::json!({ "type": "object", "additionalProperties": false }), span.clone())
        }
        None => return Err(cx.err(span, format!("{name} binds parameters but has no `schema` for them"))),
        Some(s) => {
            let v = match s.get_ref() {
                toml::Value::String(text) => serde_json::from_str::<Value>(text)
                    .map_err(|e| cx.err(s.span(), format!("schema is not valid JSON: {e}")))?,
                other => toml_to_json(other).map_err(|m| cx.err(s.span(), m))?,
            };
            (v, s.span())
        }
    };
    let Some(obj) = schema.as_object_mut() else {
        return Err(cx.err(schema_span, "a schema is a JSON object (a table or a JSON string)"));
    };
    if obj.get("type") != Some(&Value::String("object".into())) {
        return Err(cx.err(schema_span, "the parameters' schema must have type = \"object\""));
    }
    let declared: BTreeSet<String> =
        obj.get("properties").and_then(Value::as_object).map(|p| p.keys().cloned().collect()).unwrap_or_default();
    let bound: BTreeSet<String> = params.keys().cloned().collect();
    if let Some(p) = declared.difference(&bound).next() {
        return Err(cx.err(schema_span, format!("the schema declares {p:?} but `params` does not say where it goes")));
    }
    if let Some(p) = bound.difference(&declared).next() {
        return Err(cx.err(a.params[p].span(), format!("parameter {p} is not in the schema's `properties`")));
    }
    if let Some(Value::Object(shared)) = defs {
        let own = obj.entry("$defs").or_insert_with(|| Value::Object(Map::new()));
        let Some(own) = own.as_object_mut() else {
            return Err(cx.err(schema_span, "`$defs` must be a table"));
        };
        for (k, v) in shared {
            own.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    let validator = jsonschema::validator_for(&schema)
        .map_err(|e| cx.err(schema_span.clone(), format!("invalid JSON Schema: {e}")))?;
    // A path parameter that may be absent would leave a hole in the URL.
    let required: BTreeSet<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(p) = placeholders.iter().find(|p| !required.contains(**p)) {
        return Err(cx.err(schema_span, format!("path parameter {p} must be listed in the schema's `required`")));
    }

    Ok(ActionSpec {
        name: name.to_string(),
        kind: a.kind,
        method: *a.method.get_ref(),
        path,
        path_template: a.path.get_ref().clone(),
        reversible,
        idempotent,
        params,
        schema,
        validator: Arc::new(validator),
        state: None,
        expect: Vec::new(),
    })
}

type WriteChecks = (Option<StateRead>, Vec<Expectation>);

fn compile_write_checks(
    cx: &Ctx<'_>,
    name: &str,
    span: Range<usize>,
    a: raw::RawAction,
    actions: &BTreeMap<String, ActionSpec>,
) -> Result<WriteChecks, CatalogError> {
    if a.kind == Kind::Read {
        return Ok((None, Vec::new()));
    }
    let this = &actions[name];
    let (Some(state), Some(expect)) = (a.state, a.expect) else {
        return Err(cx.err(
            span,
            format!(
                "write {name} needs `state` (the read of the object before and after) and `expect` (what success shows)"
            ),
        ));
    };
    let state_span = state.span();
    let state = state.into_inner();
    let read = actions
        .get(state.action.get_ref())
        .ok_or_else(|| cx.err(state.action.span(), format!("unknown action {:?}", state.action.get_ref())))?;
    if read.kind != Kind::Read {
        return Err(cx.err(state.action.span(), format!("state action {:?} is not a read", state.action.get_ref())));
    }
    let mut mapping = BTreeMap::new();
    for (to, from) in &state.params {
        if !read.params.contains_key(to) {
            return Err(cx.err(from.span(), format!("{:?} has no parameter {to:?}", read.name)));
        }
        if !this.params.contains_key(from.get_ref()) {
            return Err(cx.err(from.span(), format!("{name} has no parameter {:?}", from.get_ref())));
        }
        mapping.insert(to.clone(), from.get_ref().clone());
    }
    let read_required = read
        .schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).map(str::to_string).collect::<Vec<_>>())
        .unwrap_or_default();
    if let Some(missing) = read_required.iter().find(|r| !mapping.contains_key(*r)) {
        return Err(cx.err(
            state_span,
            format!(
                "the state read {:?} needs {missing:?}: map it, e.g. params = {{ {missing} = \"...\" }}",
                read.name
            ),
        ));
    }

    let expect_span = expect.span();
    let mut checks = Vec::new();
    for e in expect.into_inner() {
        let espan = e.span();
        let e = e.into_inner();
        let path = check_pointer(cx, &e.path)?;
        let known = |p: &Spanned<String>| -> Result<String, CatalogError> {
            if this.params.contains_key(p.get_ref()) {
                Ok(p.get_ref().clone())
            } else {
                Err(cx.err(p.span(), format!("{name} has no parameter {:?}", p.get_ref())))
            }
        };
        let mut found = Vec::new();
        if let Some(v) = &e.equals {
            found.push(Check::Equals(toml_to_json(v).map_err(|m| cx.err(espan.clone(), m))?));
        }
        if let Some(p) = &e.equals_param {
            found.push(Check::EqualsParam(known(p)?));
        }
        if let Some(p) = &e.includes_param {
            found.push(Check::IncludesParam(known(p)?));
        }
        if let Some(p) = &e.increased_by_param {
            found.push(Check::IncreasedByParam(known(p)?));
        }
        if let Some(c) = &e.changed {
            if !c.get_ref() {
                return Err(cx.err(c.span(), "`changed = false` checks nothing: use `equals` to say what it must be"));
            }
            found.push(Check::Changed);
        }
        if let Some(n) = &e.grew_by {
            if *n.get_ref() == 0 {
                return Err(cx.err(n.span(), "`grew_by = 0` checks nothing: use a positive count"));
            }
            found.push(Check::GrewBy(*n.get_ref()));
        }
        if found.len() != 1 {
            return Err(cx.err(
                espan,
                "an expectation has a `path` and exactly one of equals, equals_param, includes_param, increased_by_param, changed, grew_by",
            ));
        }
        checks.extend(found.into_iter().map(|check| Expectation { path: path.clone(), check }));
    }
    if checks.is_empty() {
        return Err(cx.err(expect_span, format!("write {name} must expect at least one thing of its after-state")));
    }
    Ok((Some(StateRead { action: state.action.into_inner(), params: mapping }), checks))
}
