//! Checking a page-actions file: every reference resolved (parameters in templates, the
//! state read, order facts), every entry that could never work refused, errors at
//! `file:line:column`.

use std::collections::BTreeMap;
use std::ops::Range;

use countersign_connectors::browser::{check_pages_base_url, check_profile};
use countersign_connectors::catalog::OrderFactsMap;
use countersign_connectors::expect::{Check, Expectation, field_pointer};
use countersign_core::policy::Kind;
use serde_json::Value;
use serde_spanned::Spanned;

use super::raw::{RawAction, RawPages, RawRecognise};
use super::{
    FieldType, FillSpec, PageAction, PageActions, PagesError, ParamKind, ParamSpec, ReadSpec, Recognise, RefusalSpec,
    SessionSpec, StateSpec, Template, TextCheck, is_name,
};

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

/// Parse and check a page-actions file's text. `file` is only used in error messages.
pub(super) fn parse(file: &str, source: &str) -> Result<PageActions, PagesError> {
    let cx = Ctx { file, source };
    let raw: RawPages = toml::from_str(source).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        cx.err(span, e.message().trim_end().to_string())
    })?;
    compile(&cx, raw)
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
                items: None,
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
            if raw.submit.is_some()
                || !raw.fill.is_empty()
                || raw.success.is_some()
                || raw.state.is_some()
                || raw.idempotency_field.is_some()
            {
                return Err(cx.err(
                    a.span(),
                    format!(
                        "{name}: a read only opens a page and reads it (no fill, idempotency_field, submit, success or state)"
                    ),
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
    // The key's field too: a form that stopped offering it is a changed page, found
    // before anything is filled (never a submit that silently lost its idempotency).
    if let Some(field) = &raw.idempotency_field {
        let selector = field.get_ref();
        if selector.trim().is_empty() {
            return Err(cx.err(field.span(), "idempotency_field is a CSS selector"));
        }
        if fill.iter().any(|f| &f.selector == selector) || raw.submit.as_ref().is_some_and(|s| s.get_ref() == selector)
        {
            return Err(cx.err(field.span(), "idempotency_field is a field of its own, neither filled nor clicked"));
        }
        if !page.selectors.contains(selector) {
            page.selectors.push(selector.clone());
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
        idempotency_field: raw.idempotency_field.as_ref().map(|f| f.get_ref().clone()),
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
