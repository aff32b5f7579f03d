//! Page actions: how each policy action is done on a seller center's web pages, as the
//! workspace describes it (TOML, every table closed, errors as `file:line:column`).
//! The format is documented in `docs/page-actions.md`; `assets/demo/pages.toml` is the
//! demo seller center's.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::str::FromStr;

use countersign_connectors::browser::{check_pages_base_url, check_profile};
use countersign_connectors::catalog::OrderFactsMap;
use countersign_connectors::expect::{Check, Expectation, field_pointer};
use countersign_core::policy::Kind;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Map, Value};
use serde_spanned::Spanned;

/// A configuration error, pointing into the file.
#[derive(Debug, thiserror::Error)]
pub enum PagesError {
    #[error("cannot read the page actions {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: {message}")]
    Invalid { file: String, line: usize, column: usize, message: String },
}

// ---------------------------------------------------------------- the file as written

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPages {
    platform: RawPlatform,
    session: RawSession,
    #[serde(default)]
    facts: RawFacts,
    #[serde(default)]
    actions: BTreeMap<String, Spanned<RawAction>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlatform {
    name: Spanned<String>,
    base_url: Spanned<String>,
    profile: Spanned<String>,
    #[serde(default)]
    timeout_ms: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSession {
    login_url: Spanned<String>,
    login: Spanned<Vec<String>>,
    verification: Spanned<Vec<String>>,
    #[serde(default)]
    dialogs: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    redact: Vec<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFacts {
    #[serde(default)]
    order: Option<Spanned<RawOrderFacts>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrderFacts {
    action: Spanned<String>,
    param: Spanned<String>,
    order_id: String,
    customer_id: String,
    status: String,
    currency: String,
    paid: String,
    refunded: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    kind: Spanned<String>,
    url: Spanned<String>,
    #[serde(default)]
    params: BTreeMap<String, Spanned<RawParam>>,
    page: Spanned<RawRecognise>,
    #[serde(default)]
    read: BTreeMap<String, Spanned<RawRead>>,
    #[serde(default)]
    fill: Vec<Spanned<RawFill>>,
    #[serde(default)]
    submit: Option<Spanned<String>>,
    #[serde(default)]
    success: Option<Spanned<RawRecognise>>,
    #[serde(default)]
    refusal: Option<Spanned<RawRefusal>>,
    #[serde(default)]
    state: Option<Spanned<RawState>>,
    #[serde(default)]
    expect: Vec<Spanned<RawExpect>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParam {
    #[serde(default, rename = "type")]
    kind: Option<Spanned<String>>,
    #[serde(default)]
    pattern: Option<Spanned<String>>,
    #[serde(default)]
    one_of: Option<Vec<String>>,
    #[serde(default)]
    max_len: Option<usize>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    fields: Option<Vec<String>>,
    #[serde(default = "yes")]
    required: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecognise {
    #[serde(default)]
    selectors: Vec<String>,
    #[serde(default)]
    text: Vec<Spanned<RawText>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawText {
    selector: String,
    #[serde(default)]
    contains: Option<Spanned<String>>,
    #[serde(default)]
    equals: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRead {
    selector: String,
    #[serde(default)]
    attribute: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFill {
    selector: String,
    value: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRefusal {
    selector: String,
    code: String,
    message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawState {
    action: Spanned<String>,
    #[serde(default)]
    params: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    field: String,
    #[serde(default)]
    equals: Option<String>,
    #[serde(default)]
    equals_param: Option<String>,
    #[serde(default)]
    increased_by_param: Option<String>,
    #[serde(default)]
    changed: Option<bool>,
}

// ---------------------------------------------------------------- the checked form

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

// ---------------------------------------------------------------- parsing and checks

struct Ctx<'a> {
    file: &'a str,
    source: &'a str,
}

impl Ctx<'_> {
    fn err(&self, span: Range<usize>, message: impl Into<String>) -> PagesError {
        let (line, column) = countersign_connectors::catalog::line_column(self.source, span.start);
        PagesError::Invalid { file: self.file.to_owned(), line, column, message: message.into() }
    }
}

impl PageActions {
    pub fn load(path: &Path) -> Result<PageActions, PagesError> {
        let shown = path.display().to_string();
        let source = std::fs::read_to_string(path).map_err(|source| PagesError::Io { path: shown.clone(), source })?;
        PageActions::parse(&shown, &source)
    }

    /// Parse and check. `file` is only used in error messages.
    pub fn parse(file: &str, source: &str) -> Result<PageActions, PagesError> {
        let cx = Ctx { file, source };
        let raw: RawPages = toml::from_str(source).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            cx.err(span, e.message().trim_end().to_string())
        })?;
        compile(&cx, raw)
    }

    pub fn action(&self, name: &str) -> Option<&PageAction> {
        self.actions.get(name)
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

fn non_empty_selectors(cx: &Ctx<'_>, list: &Spanned<Vec<String>>, what: &str) -> Result<Vec<String>, PagesError> {
    if list.get_ref().is_empty() || list.get_ref().iter().any(|s| s.trim().is_empty()) {
        return Err(cx.err(list.span(), format!("{what}: give at least one CSS selector, none empty")));
    }
    Ok(list.get_ref().clone())
}

fn compile(cx: &Ctx<'_>, raw: RawPages) -> Result<PageActions, PagesError> {
    let p = raw.platform;
    if !is_name(p.name.get_ref()) {
        return Err(cx.err(p.name.span(), "platform name must be lower_snake_case ASCII"));
    }
    let base_url = check_pages_base_url(p.base_url.get_ref()).map_err(|m| cx.err(p.base_url.span(), m))?;
    check_profile(p.profile.get_ref()).map_err(|m| cx.err(p.profile.span(), m))?;
    let timeout_ms = match p.timeout_ms {
        Some(t) if *t.get_ref() == 0 || *t.get_ref() > 300_000 => {
            return Err(cx.err(t.span(), "timeout_ms must be between 1 and 300000"));
        }
        Some(t) => *t.get_ref(),
        None => 15_000,
    };
    let s = raw.session;
    if !s.login_url.get_ref().starts_with('/') {
        return Err(cx.err(s.login_url.span(), "login_url is a path on the platform, starting with '/'"));
    }
    let session = SessionSpec {
        login_url: s.login_url.get_ref().clone(),
        login: non_empty_selectors(cx, &s.login, "session.login")?,
        verification: non_empty_selectors(cx, &s.verification, "session.verification")?,
        dialogs: match &s.dialogs {
            Some(d) => d.get_ref().clone(),
            None => vec!["dialog[open]".into(), "[role=alertdialog]".into(), "[role=dialog]".into()],
        },
        redact: s.redact.iter().map(|r| r.get_ref().clone()).collect(),
    };

    let mut actions = BTreeMap::new();
    for (name, a) in &raw.actions {
        if !is_name(name) {
            return Err(cx.err(a.span(), format!("action name {name:?} must be lower_snake_case ASCII")));
        }
        actions.insert(name.clone(), compile_action(cx, name, a)?);
    }
    // Cross-references: state reads, order facts.
    for (name, a) in &raw.actions {
        if let (Some(state), Some(spec)) = (&a.get_ref().state, actions.get(name).and_then(|x| x.state.as_ref())) {
            let Some(read) = actions.get(&spec.action) else {
                return Err(cx.err(state.get_ref().action.span(), format!("unknown action {:?}", spec.action)));
            };
            if read.kind != Kind::Read {
                return Err(cx.err(state.get_ref().action.span(), "the state comes from a read"));
            }
            for (read_param, write_param) in &spec.params {
                if !read.params.contains_key(read_param) || !actions[name].params.contains_key(write_param) {
                    return Err(cx.err(
                        state.span(),
                        format!(
                            "state params: {read_param} = {write_param:?} must map a parameter of {} to one of {name}",
                            spec.action
                        ),
                    ));
                }
            }
            for e in &a.get_ref().expect {
                let field = &e.get_ref().field;
                if !read.read.contains_key(field) {
                    return Err(cx.err(state.span(), format!("expect: {} reads no field {field:?}", spec.action)));
                }
            }
        }
    }
    let order_facts = match raw.facts.order {
        None => None,
        Some(f) => {
            let f = f.into_inner();
            let Some(read) = actions.get(f.action.get_ref()) else {
                return Err(cx.err(f.action.span(), format!("unknown action {:?}", f.action.get_ref())));
            };
            if read.kind != Kind::Read {
                return Err(cx.err(f.action.span(), "order facts come from a read"));
            }
            if !read.params.contains_key(f.param.get_ref()) {
                return Err(
                    cx.err(f.param.span(), format!("{} has no parameter {:?}", f.action.get_ref(), f.param.get_ref()))
                );
            }
            for field in [&f.order_id, &f.customer_id, &f.status, &f.currency, &f.paid, &f.refunded] {
                if !read.read.contains_key(field) {
                    return Err(cx.err(f.action.span(), format!("{} reads no field {field:?}", f.action.get_ref())));
                }
            }
            Some(OrderFactsMap {
                action: f.action.into_inner(),
                param: f.param.into_inner(),
                order_id: f.order_id,
                customer_id: f.customer_id,
                status: f.status,
                currency: f.currency,
                paid: f.paid,
                refunded: f.refunded,
            })
        }
    };
    Ok(PageActions {
        file: cx.file.to_owned(),
        platform: p.name.into_inner(),
        base_url,
        profile: p.profile.into_inner(),
        timeout_ms,
        session,
        order_facts,
        actions,
    })
}

fn compile_recognise(
    cx: &Ctx<'_>,
    r: &Spanned<RawRecognise>,
    params: &BTreeMap<String, ParamSpec>,
    what: &str,
) -> Result<Recognise, PagesError> {
    let raw = r.get_ref();
    if raw.selectors.is_empty() && raw.text.is_empty() {
        return Err(cx.err(r.span(), format!("{what}: say how to recognise the page (selectors and/or text)")));
    }
    let mut text = Vec::new();
    for t in &raw.text {
        let tr = t.get_ref();
        let (contains, equals) = match (&tr.contains, &tr.equals) {
            (Some(c), None) => (Some(template(cx, c, params)?), None),
            (None, Some(e)) => (None, Some(template(cx, e, params)?)),
            _ => return Err(cx.err(t.span(), "a text check has exactly one of `contains` and `equals`")),
        };
        text.push(TextCheck { selector: tr.selector.clone(), contains, equals });
    }
    Ok(Recognise { selectors: raw.selectors.clone(), text })
}

fn template(cx: &Ctx<'_>, t: &Spanned<String>, params: &BTreeMap<String, ParamSpec>) -> Result<Template, PagesError> {
    let parsed = Template::parse(t.get_ref()).map_err(|m| cx.err(t.span(), m))?;
    for (param, field) in parsed.holes() {
        let Some(spec) = params.get(param) else {
            return Err(cx.err(t.span(), format!("{{{param}}}: the action has no parameter {param:?}")));
        };
        let ok = match (&spec.kind, field) {
            (ParamKind::Text { .. }, None) | (ParamKind::Money { .. }, None | Some("currency")) => true,
            (ParamKind::Object { fields }, Some(f)) => fields.iter().any(|x| x == f),
            _ => false,
        };
        if !ok {
            return Err(cx.err(t.span(), format!("{param} has no part {:?}", field.unwrap_or(""))));
        }
    }
    Ok(parsed)
}

fn compile_action(cx: &Ctx<'_>, name: &str, a: &Spanned<RawAction>) -> Result<PageAction, PagesError> {
    let raw = a.get_ref();
    let kind = match raw.kind.get_ref().as_str() {
        "read" => Kind::Read,
        "write" => Kind::Write,
        other => return Err(cx.err(raw.kind.span(), format!("kind must be \"read\" or \"write\", not {other:?}"))),
    };
    let mut params = BTreeMap::new();
    for (pname, p) in &raw.params {
        if !is_name(pname) {
            return Err(cx.err(p.span(), format!("parameter name {pname:?} must be lower_snake_case ASCII")));
        }
        let rp = p.get_ref();
        let kind_name = rp.kind.as_ref().map_or("text", |k| k.get_ref().as_str());
        let pk = match kind_name {
            "text" => ParamKind::Text {
                pattern: match &rp.pattern {
                    Some(pat) => Some(
                        regex::Regex::new(pat.get_ref())
                            .map_err(|e| cx.err(pat.span(), format!("not a regular expression: {e}")))?,
                    ),
                    None => None,
                },
                one_of: rp.one_of.clone(),
                max_len: rp.max_len,
            },
            "money" => ParamKind::Money { currency: rp.currency.clone() },
            "object" => ParamKind::Object {
                fields: rp.fields.clone().ok_or_else(|| cx.err(p.span(), "an object parameter lists its `fields`"))?,
            },
            other => {
                let span = rp.kind.as_ref().map_or(p.span(), Spanned::span);
                return Err(cx.err(span, format!("type must be \"text\", \"money\" or \"object\", not {other:?}")));
            }
        };
        params.insert(pname.clone(), ParamSpec { kind: pk, required: rp.required });
    }
    let url = template(cx, &raw.url, &params)?;
    if !raw.url.get_ref().starts_with('/') {
        return Err(cx.err(raw.url.span(), "url is a path on the platform, starting with '/'"));
    }
    let page = compile_recognise(cx, &raw.page, &params, "page")?;
    let mut read = BTreeMap::new();
    for (field, r) in &raw.read {
        let rr = r.get_ref();
        let kind = match rr.kind.as_ref().map_or("text", |k| k.get_ref().as_str()) {
            "text" => FieldType::Text,
            "money" => FieldType::Money,
            "integer" => FieldType::Integer,
            other => {
                return Err(cx.err(r.span(), format!("type must be \"text\", \"money\" or \"integer\", not {other:?}")));
            }
        };
        read.insert(field.clone(), ReadSpec { selector: rr.selector.clone(), attribute: rr.attribute.clone(), kind });
    }
    let mut fill = Vec::new();
    for f in &raw.fill {
        fill.push(FillSpec {
            selector: f.get_ref().selector.clone(),
            value: template(cx, &f.get_ref().value, &params)?,
        });
    }
    let success = raw.success.as_ref().map(|s| compile_recognise(cx, s, &params, "success")).transpose()?;
    let state = raw
        .state
        .as_ref()
        .map(|s| StateSpec { action: s.get_ref().action.get_ref().clone(), params: s.get_ref().params.clone() });
    let mut expect = Vec::new();
    for e in &raw.expect {
        let re = e.get_ref();
        let checks = [
            re.equals.as_ref().map(|v| Check::Equals(Value::String(v.clone()))),
            re.equals_param.as_ref().map(|p| Check::EqualsParam(p.clone())),
            re.increased_by_param.as_ref().map(|p| Check::IncreasedByParam(p.clone())),
            re.changed.filter(|c| *c).map(|_| Check::Changed),
        ];
        let mut given: Vec<Check> = checks.into_iter().flatten().collect();
        if given.len() != 1 {
            return Err(cx.err(
                e.span(),
                "an expectation has exactly one of equals, equals_param, increased_by_param, changed = true",
            ));
        }
        let check = given.remove(0);
        if let Check::EqualsParam(param) | Check::IncreasedByParam(param) = &check
            && !params.contains_key(param)
        {
            return Err(cx.err(e.span(), format!("the action has no parameter {param:?}")));
        }
        expect.push(Expectation { path: field_pointer(&re.field), check });
    }
    match kind {
        Kind::Read => {
            if raw.submit.is_some() || !raw.fill.is_empty() || raw.success.is_some() || raw.state.is_some() {
                return Err(cx.err(
                    a.span(),
                    format!("{name}: a read only opens a page and reads it (no fill, submit, success or state)"),
                ));
            }
            if read.is_empty() {
                return Err(cx.err(a.span(), format!("{name}: a read names the fields it reads")));
            }
        }
        Kind::Write => {
            let missing = [
                (raw.submit.is_none(), "submit"),
                (success.is_none(), "success"),
                (state.is_none(), "state"),
                (expect.is_empty(), "expect"),
            ];
            if let Some((_, what)) = missing.iter().find(|(m, _)| *m) {
                return Err(cx.err(a.span(), format!("{name}: a write needs `{what}`")));
            }
        }
    }
    // The submit control is part of what makes the page the right one: a form whose
    // button moved or was renamed is a changed page, found before anything is filled.
    let mut page = page;
    if let Some(submit) = &raw.submit {
        if submit.get_ref().trim().is_empty() {
            return Err(cx.err(submit.span(), "submit is a CSS selector"));
        }
        page.selectors.push(submit.get_ref().clone());
    }
    for f in &fill {
        if !page.selectors.contains(&f.selector) {
            page.selectors.push(f.selector.clone());
        }
    }
    Ok(PageAction {
        name: name.to_owned(),
        kind,
        url,
        params,
        page,
        read,
        fill,
        submit: raw.submit.as_ref().map(|s| s.get_ref().clone()),
        success,
        refusal: raw.refusal.as_ref().map(|r| RefusalSpec {
            selector: r.get_ref().selector.clone(),
            code: r.get_ref().code.clone(),
            message: r.get_ref().message.clone(),
        }),
        state,
        expect,
    })
}

// ---------------------------------------------------------------- parameter checks

impl PageAction {
    /// Every problem with `params`, or none.
    pub fn check_params(&self, params: &Map<String, Value>) -> Vec<String> {
        let mut errors = Vec::new();
        for key in params.keys() {
            if !self.params.contains_key(key) {
                errors.push(format!("{}: unknown parameter {key:?}", self.name));
            }
        }
        for (name, spec) in &self.params {
            let Some(v) = params.get(name).filter(|v| !v.is_null()) else {
                if spec.required {
                    errors.push(format!("{}: missing parameter {name:?}", self.name));
                }
                continue;
            };
            if let Err(e) = check_param(name, &spec.kind, v) {
                errors.push(format!("{}: {e}", self.name));
            }
        }
        errors
    }
}

fn check_param(name: &str, kind: &ParamKind, v: &Value) -> Result<(), String> {
    match kind {
        ParamKind::Text { pattern, one_of, max_len } => {
            let s = v.as_str().ok_or_else(|| format!("{name} must be text"))?;
            if s.chars().any(char::is_control) {
                return Err(format!("{name} must not contain control characters"));
            }
            if let Some(p) = pattern
                && !p.is_match(s)
            {
                return Err(format!("{name} = {s:?} does not match {}", p.as_str()));
            }
            if let Some(list) = one_of
                && !list.iter().any(|x| x == s)
            {
                return Err(format!("{name} must be one of {list:?}"));
            }
            if let Some(max) = max_len
                && s.chars().count() > *max
            {
                return Err(format!("{name} is longer than {max} characters"));
            }
            Ok(())
        }
        ParamKind::Money { currency } => {
            let (amount, cur) = match v {
                Value::String(s) => s.split_once(' ').ok_or_else(|| format!("{name} must be \"AMOUNT CURRENCY\""))?,
                Value::Object(o) => (
                    o.get("amount").and_then(Value::as_str).ok_or_else(|| format!("{name}.amount must be a string"))?,
                    o.get("currency")
                        .and_then(Value::as_str)
                        .ok_or_else(|| format!("{name}.currency must be a string"))?,
                ),
                _ => return Err(format!("{name} is money: \"10.50 USD\" or {{amount, currency}}, never a number")),
            };
            let d = Decimal::from_str(amount).map_err(|_| format!("{name}: {amount:?} is not a decimal amount"))?;
            if d.is_sign_negative() || d.is_zero() || amount.contains(['e', 'E']) {
                return Err(format!("{name} must be a positive decimal"));
            }
            if let Some(c) = currency
                && c != cur
            {
                return Err(format!("{name} must be in {c}, not {cur}"));
            }
            Ok(())
        }
        ParamKind::Object { fields } => {
            let o = v.as_object().ok_or_else(|| format!("{name} must be an object"))?;
            for (k, x) in o {
                if !fields.contains(k) {
                    return Err(format!("{name} has no field {k:?}"));
                }
                let s = x.as_str().ok_or_else(|| format!("{name}.{k} must be text"))?;
                if s.chars().any(char::is_control) {
                    return Err(format!("{name}.{k} must not contain control characters"));
                }
            }
            Ok(())
        }
    }
}
