//! The page-actions file as written: every table closed to unknown keys, spans kept on the
//! values later checks point at.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_spanned::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPages {
    pub(super) platform: RawPlatform,
    pub(super) session: RawSession,
    #[serde(default)]
    pub(super) facts: RawFacts,
    #[serde(default)]
    pub(super) actions: BTreeMap<String, Spanned<RawAction>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPlatform {
    pub(super) name: Spanned<String>,
    pub(super) base_url: Spanned<String>,
    pub(super) profile: Spanned<String>,
    #[serde(default)]
    pub(super) timeout_ms: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSession {
    pub(super) login_url: Spanned<String>,
    pub(super) login: Spanned<Vec<String>>,
    pub(super) verification: Spanned<Vec<String>>,
    #[serde(default)]
    pub(super) dialogs: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    pub(super) redact: Vec<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFacts {
    #[serde(default)]
    pub(super) order: Option<Spanned<RawOrderFacts>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOrderFacts {
    pub(super) action: Spanned<String>,
    pub(super) param: Spanned<String>,
    pub(super) order_id: String,
    pub(super) customer_id: String,
    pub(super) status: String,
    pub(super) currency: String,
    pub(super) paid: String,
    pub(super) refunded: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAction {
    pub(super) kind: Spanned<String>,
    pub(super) url: Spanned<String>,
    #[serde(default)]
    pub(super) params: BTreeMap<String, Spanned<RawParam>>,
    pub(super) page: Spanned<RawRecognise>,
    #[serde(default)]
    pub(super) read: BTreeMap<String, Spanned<RawRead>>,
    #[serde(default)]
    pub(super) fill: Vec<Spanned<RawFill>>,
    #[serde(default)]
    pub(super) idempotency_field: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) submit: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) success: Option<Spanned<RawRecognise>>,
    #[serde(default)]
    pub(super) refusal: Option<Spanned<RawRefusal>>,
    #[serde(default)]
    pub(super) state: Option<Spanned<RawState>>,
    #[serde(default)]
    pub(super) expect: Vec<Spanned<RawExpect>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawParam {
    #[serde(default, rename = "type")]
    pub(super) kind: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) pattern: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) one_of: Option<Vec<String>>,
    #[serde(default)]
    pub(super) max_len: Option<usize>,
    #[serde(default)]
    pub(super) currency: Option<String>,
    #[serde(default)]
    pub(super) fields: Option<Vec<String>>,
    #[serde(default = "yes")]
    pub(super) required: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRecognise {
    #[serde(default)]
    pub(super) selectors: Vec<String>,
    #[serde(default)]
    pub(super) text: Vec<Spanned<RawText>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawText {
    pub(super) selector: String,
    #[serde(default)]
    pub(super) contains: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) equals: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRead {
    pub(super) selector: String,
    #[serde(default)]
    pub(super) attribute: Option<String>,
    #[serde(default, rename = "type")]
    pub(super) kind: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFill {
    pub(super) selector: String,
    pub(super) value: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRefusal {
    pub(super) selector: String,
    pub(super) code: String,
    pub(super) message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawState {
    pub(super) action: Spanned<String>,
    #[serde(default)]
    pub(super) params: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExpect {
    pub(super) field: String,
    #[serde(default)]
    pub(super) equals: Option<String>,
    #[serde(default)]
    pub(super) equals_param: Option<String>,
    #[serde(default)]
    pub(super) increased_by_param: Option<String>,
    #[serde(default)]
    pub(super) changed: Option<bool>,
}
