//! Driving the pages: open an action's page and check it is the described one, read its
//! fields, fill and submit its form, look after the submit, and keep the trail of what was
//! seen (pages, screenshots and snapshots by blob hash, values read and filled) for the
//! step's evidence.

use std::str::FromStr;
use std::time::Instant;

use countersign_connectors::{ConnectorError, SubmitGate};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::BrowserConnector;
use crate::chromium::{self, Chromium};
use crate::config::{self, FieldType, PageAction, Recognise};

/// What one page looked like when the connector acted on it.
#[derive(Debug, Default)]
pub(crate) struct Trail {
    pub(crate) pages: Vec<Value>,
    pub(crate) read: Option<Value>,
    pub(crate) filled: Vec<Value>,
    /// JavaScript dialogs the pages opened, each dismissed.
    pub(crate) dialogs: Vec<Value>,
    /// The form's idempotency field and the key put there (a write whose page offers one).
    pub(crate) idempotency: Option<Value>,
    pub(crate) submitted: bool,
    /// The submit click was under way (it may have gone out even if `submitted` is false).
    pub(crate) submitting: bool,
}

impl Trail {
    pub(crate) fn to_value(&self, result: &str) -> Value {
        let mut v = json!({
            "pages": self.pages, "filled": self.filled, "dialogs": self.dialogs,
            "submitted": self.submitted, "submitting": self.submitting, "result": result,
        });
        if let Some(read) = &self.read {
            v["read"] = read.clone();
        }
        if let Some(idempotency) = &self.idempotency {
            v["idempotency"] = idempotency.clone();
        }
        v
    }
}

/// The page now shown, as the scripts see it.
#[derive(Debug)]
pub(crate) struct Seen {
    pub(crate) url: String,
    pub(crate) title: String,
    pub(crate) status: u16,
}

/// Percent-encodes a path segment's value (`#W1` → `%23W1`).
pub(crate) fn encode_path(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(crate) fn as_is(value: &str) -> String {
    value.to_owned()
}

pub(crate) fn recognise_arg(r: &Recognise, params: &Map<String, Value>) -> Result<Value, ConnectorError> {
    let mut text = Vec::new();
    for t in &r.text {
        let render = |tpl: &Option<config::Template>| -> Result<Value, ConnectorError> {
            match tpl {
                Some(t) => t
                    .render(params, as_is)
                    .map(Value::String)
                    .map_err(|e| ConnectorError::InvalidParams { errors: vec![e] }),
                None => Ok(Value::Null),
            }
        };
        text.push(json!({ "selector": t.selector, "contains": render(&t.contains)?, "equals": render(&t.equals)? }));
    }
    Ok(json!({ "selectors": r.selectors, "text": text }))
}

/// Why a page did not do what was asked, before or after the submit.
pub(crate) enum Stop {
    Error(ConnectorError),
    NeedsHuman(String),
    /// Before the submit: the page is not the described one (nothing submitted).
    Mismatch(String),
    Gate(String),
    /// After the submit: the page does not say whether it worked.
    Unconfirmed(String),
}

impl From<ConnectorError> for Stop {
    fn from(e: ConnectorError) -> Stop {
        Stop::Error(e)
    }
}

/// What a read found on its page.
pub(crate) enum ReadOutcome {
    Fields(Map<String, Value>),
    NotFound,
}

impl BrowserConnector {
    /// The page now shown: URL, title, status; with `capture`, a screenshot and a DOM
    /// snapshot stored as blobs. Added to `trail` under `moment`.
    pub(crate) async fn look(
        &self,
        c: &Chromium,
        trail: &mut Trail,
        moment: &str,
        capture: bool,
    ) -> Result<Seen, ConnectorError> {
        let v = c.call(chromium::OBSERVE, &Value::Null).await?;
        let seen = Seen {
            url: v["url"].as_str().unwrap_or_default().to_owned(),
            title: v["title"].as_str().unwrap_or_default().to_owned(),
            status: v["status"].as_u64().and_then(|s| u16::try_from(s).ok()).unwrap_or(0),
        };
        let mut page = json!({ "moment": moment, "url": seen.url, "title": seen.title, "status": seen.status });
        if capture {
            let html = c.call(chromium::SNAPSHOT, &json!(self.pages.session.redact)).await?;
            let html = html.as_str().unwrap_or_default();
            page["snapshot"] = self.put_blob("text/html", html.as_bytes());
            page["screenshot"] = self.put_blob("image/png", &c.screenshot().await?);
        }
        trail.pages.push(page);
        Ok(seen)
    }

    /// The JavaScript dialogs opened since the last look, noted in the trail (each was
    /// dismissed); the first one described, if any.
    pub(crate) fn dialogs_seen(&self, c: &Chromium, trail: &mut Trail, moment: &str) -> Option<String> {
        let seen = c.take_dialogs();
        for d in &seen {
            trail.dialogs.push(json!({
                "moment": moment, "type": d.kind, "message": d.message, "url": d.url, "answer": "dismissed",
            }));
        }
        match seen.as_slice() {
            [] => None,
            [one] => Some(one.to_string()),
            [first, rest @ ..] => Some(format!("{first} and {} more", rest.len())),
        }
    }

    /// A login or verification page, or an unexpected dialog.
    pub(crate) async fn person_wanted(&self, c: &Chromium) -> Result<Option<Stop>, ConnectorError> {
        let s = &self.pages.session;
        let v = c
            .call(chromium::SESSION, &json!({ "login": s.login, "verification": s.verification, "dialogs": s.dialogs }))
            .await?;
        if let Some(sel) = v["login"].as_str() {
            return Ok(Some(Stop::NeedsHuman(format!(
                "the seller center session has ended (the page shows its login, {sel}): sign in again in the login window"
            ))));
        }
        if let Some(sel) = v["verification"].as_str() {
            return Ok(Some(Stop::NeedsHuman(format!(
                "the seller center asks to verify who is there ({sel}); the connector never enters codes or solves captchas"
            ))));
        }
        if let Some(d) = v["dialog"].as_str() {
            return Ok(Some(Stop::Mismatch(format!("unexpected dialog {d}"))));
        }
        Ok(None)
    }

    pub(crate) async fn mismatch(
        &self,
        c: &Chromium,
        r: &Recognise,
        params: &Map<String, Value>,
    ) -> Result<Option<String>, ConnectorError> {
        let v = c.call(chromium::RECOGNISE, &recognise_arg(r, params)?).await?;
        Ok(v.as_str().map(str::to_owned))
    }

    /// Opens the action's page and checks it is the described one (or a person is
    /// wanted). `None`: the platform says there is no such page (404).
    pub(crate) async fn open_page(
        &self,
        c: &Chromium,
        action: &PageAction,
        params: &Map<String, Value>,
        trail: &mut Trail,
    ) -> Result<Option<Seen>, Stop> {
        let url = self.url_for(action, params)?;
        let stale = c.take_dialogs();
        if !stale.is_empty() {
            tracing::info!(count = stale.len(), "JavaScript dialogs opened between calls were dismissed");
        }
        c.goto(&url).await?;
        let seen = self.look(c, trail, "opened", false).await?;
        let dialog = self.dialogs_seen(c, trail, "opening the page");
        if let Some(stop) = self.person_wanted(c).await? {
            return Err(stop);
        }
        if let Some(d) = dialog {
            return Err(Stop::Mismatch(format!("{} at {}: the page opened {d}", action.name, seen.url)));
        }
        if seen.status == 404 {
            return Ok(None);
        }
        if let Some(m) = self.mismatch(c, &action.page, params).await? {
            return Err(Stop::Mismatch(format!("{} at {}: {m}", action.name, seen.url)));
        }
        Ok(Some(seen))
    }

    pub(crate) async fn read_fields(&self, c: &Chromium, action: &PageAction) -> Result<Map<String, Value>, Stop> {
        let fields: Vec<Value> = action
            .read
            .iter()
            .map(|(field, r)| json!({ "field": field, "selector": r.selector, "attribute": r.attribute }))
            .collect();
        let raw = c.call(chromium::READ, &Value::Array(fields)).await?;
        let mut out = Map::new();
        for (field, spec) in &action.read {
            let Some(text) = raw[field.as_str()].as_str() else {
                return Err(Stop::Mismatch(format!(
                    "{}: field {field}: expected element {} is missing",
                    action.name, spec.selector
                )));
            };
            let value = match spec.kind {
                FieldType::Text => Value::String(text.to_owned()),
                FieldType::Money => {
                    let amount = text.trim_start_matches('$').replace(',', "");
                    match Decimal::from_str(&amount) {
                        Ok(_) if !amount.contains(['e', 'E']) => Value::String(amount),
                        _ => {
                            return Err(Stop::Mismatch(format!(
                                "{}: field {field} reads {text:?}, which is not a decimal amount",
                                action.name
                            )));
                        }
                    }
                }
                FieldType::Integer => match text.parse::<i64>() {
                    Ok(n) => Value::from(n),
                    Err(_) => {
                        return Err(Stop::Mismatch(format!(
                            "{}: field {field} reads {text:?}, not an integer",
                            action.name
                        )));
                    }
                },
            };
            out.insert(field.clone(), value);
        }
        Ok(out)
    }

    pub(crate) async fn run_read(
        &self,
        c: &Chromium,
        action: &PageAction,
        params: &Map<String, Value>,
        trail: &mut Trail,
        capture: bool,
    ) -> Result<ReadOutcome, Stop> {
        if self.open_page(c, action, params, trail).await?.is_none() {
            return Ok(ReadOutcome::NotFound);
        }
        let fields = self.read_fields(c, action).await?;
        if let Some(d) = self.dialogs_seen(c, trail, "reading") {
            return Err(Stop::Mismatch(format!("{}: while it was read, the page opened {d}", action.name)));
        }
        if capture {
            trail.pages.pop();
            self.look(c, trail, "read", true).await?;
        }
        trail.read = Some(Value::Object(fields.clone()));
        Ok(ReadOutcome::Fields(fields))
    }

    pub(crate) async fn run_write(
        &self,
        c: &Chromium,
        action: &PageAction,
        params: &Map<String, Value>,
        idempotency_key: Option<&str>,
        gate: &dyn SubmitGate,
        trail: &mut Trail,
    ) -> Result<(Seen, Value), Stop> {
        let Some(_) = self.open_page(c, action, params, trail).await? else {
            return Err(Stop::Mismatch(format!("{}: the page was not found (404)", action.name)));
        };
        let mut fills = Vec::new();
        for f in &action.fill {
            let value = f.value.render(params, as_is).map_err(|e| ConnectorError::InvalidParams { errors: vec![e] })?;
            fills.push(json!({ "selector": f.selector, "value": value }));
        }
        trail.filled = fills.clone();
        if let Some(problem) = c.call(chromium::FILL, &Value::Array(fills)).await?.as_str() {
            self.look(c, trail, "fill refused", true).await?;
            return Err(Stop::Mismatch(format!("{}: {problem}", action.name)));
        }
        let Some(submit) = &action.submit else {
            return Err(Stop::Mismatch(format!("{}: no submit control is described", action.name)));
        };
        // The executor's key in the form's key field, so a submit sent again after an
        // uncertain answer is the same request to the platform (it answers the first
        // result). Without a key (a caller that has none), the page's own nonce stays.
        if let Some(field) = &action.idempotency_field {
            if let Some(key) = idempotency_key {
                let arg = json!({ "selector": field, "submit": submit, "key": key });
                if let Some(problem) = c.call(chromium::FILL_KEY, &arg).await?.as_str() {
                    self.look(c, trail, "fill refused", true).await?;
                    return Err(Stop::Mismatch(format!("{}: {problem}", action.name)));
                }
            }
            trail.idempotency = Some(json!({ "field": field, "key": idempotency_key }));
        }
        if let Some(d) = self.dialogs_seen(c, trail, "filling") {
            return Err(Stop::Mismatch(format!("{}: while the form was filled, the page opened {d}", action.name)));
        }
        // The form as it will be sent: the "before" evidence.
        self.look(c, trail, "before submit", true).await?;
        gate.may_submit().map_err(Stop::Gate)?;
        // The last look before the point of no return.
        if let Some(d) = self.dialogs_seen(c, trail, "before submit") {
            return Err(Stop::Mismatch(format!("{}: before the submit click, the page opened {d}", action.name)));
        }
        let marker = hex::encode(Sha256::digest(format!("{:?}{}", Instant::now(), action.name)));
        // From here until the click is known to have happened or not, the submit may have
        // gone out.
        trail.submitting = true;
        if let Some(problem) =
            c.call(chromium::SUBMIT, &json!({ "selector": submit, "marker": marker })).await?.as_str()
        {
            // The page said why it could not click: nothing went out.
            trail.submitting = false;
            return Err(Stop::Mismatch(format!("{}: {problem}", action.name)));
        }
        trail.submitted = true;
        // The point of no return is behind us, the page's answer not yet read.
        countersign_connectors::fault::point("after-submit-click");
        c.wait_loaded(Some(&marker)).await?;
        let seen = self.look(c, trail, "after submit", true).await?;
        let dialog = self.dialogs_seen(c, trail, "after submit");
        if let Some(refusal) = &action.refusal {
            let v = c
                .call(
                    chromium::READ,
                    &json!([
                        { "field": "page", "selector": refusal.selector, "attribute": null },
                        { "field": "code", "selector": refusal.code, "attribute": null },
                        { "field": "message", "selector": refusal.message, "attribute": null },
                    ]),
                )
                .await?;
            if v["page"].is_string() {
                return Err(Stop::Error(ConnectorError::PageRefused {
                    status: seen.status,
                    code: v["code"].as_str().unwrap_or("refused").to_owned(),
                    message: v["message"].as_str().unwrap_or("the page refused the change").to_owned(),
                    evidence: Box::new(trail.to_value("refused")),
                }));
            }
        }
        // After a submit, whether it applied is for the state read to say.
        if let Some(d) = dialog {
            return Err(Stop::Unconfirmed(format!("after the submit click, the page opened {d}")));
        }
        if let Some(stop) = self.person_wanted(c).await? {
            let what = match stop {
                Stop::NeedsHuman(m) | Stop::Mismatch(m) | Stop::Gate(m) | Stop::Unconfirmed(m) => m,
                Stop::Error(e) => e.to_string(),
            };
            return Err(Stop::Unconfirmed(format!("after submitting: {what}")));
        }
        if let Some(success) = &action.success
            && let Some(m) = self.mismatch(c, success, params).await?
        {
            return Err(Stop::Unconfirmed(format!("after submitting, the page does not show success: {m}")));
        }
        let response = json!({ "url": seen.url, "title": seen.title, "confirmed": true });
        Ok((seen, response))
    }

    pub(crate) fn stop_to_error(stop: Stop, trail: &Trail) -> ConnectorError {
        match stop {
            Stop::Error(e) => e,
            Stop::NeedsHuman(reason) => {
                ConnectorError::NeedsHuman { evidence: Box::new(trail.to_value("needs_human")), reason }
            }
            Stop::Mismatch(mismatch) => {
                ConnectorError::PageMismatch { evidence: Box::new(trail.to_value("page_mismatch")), mismatch }
            }
            Stop::Gate(reason) => ConnectorError::StoppedBeforeSubmit {
                evidence: Box::new(trail.to_value("stopped_before_submit")),
                reason,
            },
            Stop::Unconfirmed(detail) => {
                ConnectorError::Unconfirmed { evidence: Box::new(trail.to_value("unconfirmed")), detail }
            }
        }
    }

    /// A read for internal use (state, facts): no screenshots; a person wanted is an error.
    pub(crate) fn quiet_read(
        &self,
        action_name: &str,
        params: &Map<String, Value>,
    ) -> Result<Option<Map<String, Value>>, ConnectorError> {
        let action = self.action(action_name)?;
        self.check(action, params)?;
        let timeout = self.timeout();
        self.with_browser(async |c| {
            let mut trail = Trail::default();
            let run = tokio::time::timeout(timeout, self.run_read(c, action, params, &mut trail, false)).await;
            let Ok(run) = run else { return Err(ConnectorError::Timeout) };
            match run {
                Ok(ReadOutcome::Fields(f)) => Ok(Some(f)),
                Ok(ReadOutcome::NotFound) => Ok(None),
                Err(stop) => {
                    // A screenshot for the person who takes over.
                    if matches!(stop, Stop::NeedsHuman(_) | Stop::Mismatch(_)) {
                        trail.pages.clear();
                        let _ = self.look(c, &mut trail, "stopped", true).await;
                    }
                    Err(Self::stop_to_error(stop, &trail))
                }
            }
        })
    }
}
