//! Canonical JSON (RFC 8785) and SHA-256 digests of domain values.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::model::Step;

/// RFC 8785 canonical JSON of a value.
pub fn canonical_json<T: Serialize>(value: &T) -> String {
    // Serialising our own types to JSON cannot fail: no maps with non-string
    // keys and no floats exist in them.
    serde_json_canonicalizer::to_string(value).unwrap_or_else(|e| format!("{{\"unserialisable\":{:?}}}", e.to_string()))
}

/// `sha256:<hex>` of bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    // Same text as `format!("sha256:{}", hex::encode(..))`, in one allocation.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in Sha256::digest(bytes) {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

#[derive(Serialize)]
struct Bound<'a> {
    action: &'a str,
    params: &'a std::collections::BTreeMap<String, crate::model::Param>,
}

/// The digest an approval binds to: the action and its parameters (values and
/// provenance), canonically encoded. Any change to either yields another digest.
///
/// The bytes hashed are exactly `canonical_json(&{"action", "params"})`; they
/// are written directly (see [`write_bound`]) because the generic canonicaliser
/// re-parses every object key and was most of the cost of a decision.
pub fn step_digest(step: &Step) -> String {
    let mut buf = Vec::with_capacity(256);
    match write_bound(&mut buf, step) {
        Some(()) => sha256_hex(&buf),
        None => sha256_hex(canonical_json(&Bound { action: &step.action, params: &step.params }).as_bytes()),
    }
}

/// SHA-256 of the canonical `{"action": .., "params": {name: value}}`: the change a step
/// makes on the platform, whatever each value's provenance. Two steps with the same change
/// digest ask the platform for the same thing (what an idempotency key stands for).
pub fn change_digest(step: &Step) -> String {
    let values: std::collections::BTreeMap<&String, &serde_json::Value> =
        step.params.iter().map(|(k, p)| (k, &p.value)).collect();
    sha256_hex(canonical_json(&serde_json::json!({ "action": step.action, "params": values })).as_bytes())
}

/// RFC 8785 encoding of `{"action": .., "params": {name: {"source": .., "value": ..}}}`,
/// byte for byte what [`canonical_json`] produces for it. `None` if some leaf
/// cannot be encoded (then the caller falls back to the generic path).
fn write_bound(out: &mut Vec<u8>, step: &Step) -> Option<()> {
    // Keys in RFC 8785 order: "action" < "params"; "source" < "value".
    out.extend_from_slice(b"{\"action\":");
    write_str(out, &step.action)?;
    out.extend_from_slice(b",\"params\":");
    write_object(out, step.params.iter(), |out, param| {
        out.extend_from_slice(b"{\"source\":");
        write_str(out, param.source.as_str())?;
        out.extend_from_slice(b",\"value\":");
        write_value(out, &param.value)?;
        out.push(b'}');
        Some(())
    })?;
    out.push(b'}');
    Some(())
}

/// A JSON object of `entries` in RFC 8785's key order, each value written by `write`.
fn write_object<'a, T>(
    out: &mut Vec<u8>,
    entries: impl Iterator<Item = (&'a String, T)>,
    mut write: impl FnMut(&mut Vec<u8>, T) -> Option<()>,
) -> Option<()> {
    let mut entries: Vec<(&String, T)> = entries.collect();
    // A BTreeMap orders keys by UTF-8 bytes; RFC 8785 by UTF-16 code units.
    entries.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
    out.push(b'{');
    for (i, (k, item)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, k)?;
        out.push(b':');
        write(out, item)?;
    }
    out.push(b'}');
    Some(())
}

/// A JSON string as RFC 8785 writes it (serde_json's escaping: `"`, `\` and
/// control characters only, lower-case `\u00xx`), which is what the
/// canonicaliser itself uses.
fn write_str(out: &mut Vec<u8>, s: &str) -> Option<()> {
    serde_json::to_writer(&mut *out, s).ok()
}

fn write_value(out: &mut Vec<u8>, v: &Value) -> Option<()> {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        // Numbers are rare in parameters and have subtle canonical forms
        // (ECMAScript double formatting): leave them to the canonicaliser.
        Value::Number(n) => out.extend_from_slice(&serde_json_canonicalizer::to_vec(n).ok()?),
        Value::String(s) => write_str(out, s)?,
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item)?;
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(out, map.iter(), write_value)?,
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Param, Provenance};
    use proptest::prelude::*;

    fn reference(step: &Step) -> String {
        sha256_hex(canonical_json(&Bound { action: &step.action, params: &step.params }).as_bytes())
    }

    fn encoded(step: &Step) -> String {
        let mut buf = Vec::new();
        write_bound(&mut buf, step).expect("encodable");
        String::from_utf8(buf).expect("utf-8")
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let key = prop_oneof![
            "[a-z_]{0,8}",
            any::<String>(),
            // Keys whose UTF-8 and UTF-16 orders differ (astral vs U+E000..U+FFFF).
            Just("\u{FF21}".to_string()),
            Just("\u{1F600}".to_string()),
            Just("\u{E000}x".to_string()),
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
            any::<String>().prop_map(Value::String),
            "[ -~\n\t\u{0}-\u{1f}\u{7f}\"\\\\/]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 5, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map(key.clone(), inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn provenance() -> impl Strategy<Value = Provenance> {
        prop_oneof![
            Just(Provenance::Connector),
            Just(Provenance::Agent),
            Just(Provenance::Policy),
            Just(Provenance::CustomerMessage),
            Just(Provenance::OrderNote),
            Just(Provenance::Article),
            Just(Provenance::Model),
        ]
    }

    fn step() -> impl Strategy<Value = Step> {
        let name = prop_oneof!["[a-z_]{1,12}", any::<String>(), Just("\u{1F600}".into())];
        (any::<String>(), prop::collection::btree_map(name, (json_value(), provenance()), 0..5)).prop_map(
            |(action, params)| Step {
                id: "s1".into(),
                action,
                params: params.into_iter().map(|(k, (value, source))| (k, Param { value, source })).collect(),
                rationale: None,
                planner_risk: None,
            },
        )
    }

    #[test]
    fn sha256_hex_is_prefixed_lower_case_hex() {
        for input in [&b""[..], b"abc", &[0xff; 100]] {
            assert_eq!(sha256_hex(input), format!("sha256:{}", hex::encode(Sha256::digest(input))));
        }
    }

    #[test]
    fn a_typical_step_encodes_as_the_canonicaliser_does() {
        let step: Step = serde_json::from_str(
            r##"{"id":"s1","action":"refund_partial","params":{
                "order_id":{"value":"#W1","source":"connector"},
                "amount":{"value":{"currency":"USD","amount":"20.00"},"source":"agent"},
                "reason":{"value":"cracked \"mug\"\n\u0001/é😀","source":"customer_message"},
                "\uFF21":{"value":[1,1.5,-0.0,1e21,null,true],"source":"model"},
                "😀":{"value":{"b":1,"a":[]},"source":"order_note"}}}"##,
        )
        .expect("step");
        let want = canonical_json(&Bound { action: &step.action, params: &step.params });
        assert_eq!(encoded(&step), want);
        assert_eq!(step_digest(&step), reference(&step));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn step_digest_equals_the_canonicaliser(s in step()) {
            prop_assert_eq!(step_digest(&s), reference(&s));
        }
    }
}
