//! Keeping secrets out of call records.
//!
//! Two nets: by name (a header, query parameter or JSON field whose name contains a
//! secret word has its value replaced, whatever it is) and by value (the credential's
//! own text is replaced wherever it appears, in case the platform echoes it under an
//! innocent name).

use std::collections::BTreeSet;

use serde_json::Value;

pub(crate) const REDACTED: &str = "[redacted]";

const SECRET_WORDS: [&str; 8] =
    ["token", "secret", "password", "authorization", "cookie", "apikey", "api_key", "api-key"];

/// Too short a credential would match everywhere; no real API token is this short.
const MIN_SCRUB_LEN: usize = 4;

/// Does this name say its value is a secret? `not_secret` lists names the platform
/// documents as harmless (a `password_resets` list holds no password).
pub(crate) fn is_secret_name(name: &str, not_secret: &BTreeSet<String>) -> bool {
    let lower = name.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| lower.contains(w)) && !not_secret.contains(name)
}

/// Replace the values of secret-named fields, at any depth.
pub(crate) fn redact_json(value: &mut Value, not_secret: &BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if is_secret_name(k, not_secret) {
                    *v = Value::String(REDACTED.into());
                } else {
                    redact_json(v, not_secret);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| redact_json(v, not_secret)),
        _ => {}
    }
}

/// Replace the secret's text wherever it occurs in a string.
pub(crate) fn scrub_text(text: &str, secret: &str) -> String {
    if secret.len() < MIN_SCRUB_LEN { text.to_string() } else { text.replace(secret, REDACTED) }
}

/// Replace the secret's text in every string (and key) of a JSON value.
pub(crate) fn scrub_json(value: &mut Value, secret: &str) {
    if secret.len() < MIN_SCRUB_LEN {
        return;
    }
    match value {
        Value::String(s) if s.contains(secret) => *s = s.replace(secret, REDACTED),
        Value::Object(map) => {
            if map.keys().any(|k| k.contains(secret)) {
                let old = std::mem::take(map);
                for (k, mut v) in old {
                    scrub_json(&mut v, secret);
                    map.insert(k.replace(secret, REDACTED), v);
                }
            } else {
                map.values_mut().for_each(|v| scrub_json(v, secret));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| scrub_json(v, secret)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_fields_are_redacted_at_any_depth() {
        let allow: BTreeSet<String> = ["password_resets".to_string()].into();
        let mut v = json!({
            "access_token": "abc", "nested": [{"client_secret": {"x": 1}}],
            "password_resets": [{"reference": "PR-1", "reset_token": "t"}], "email": "a@b.c"
        });
        redact_json(&mut v, &allow);
        assert_eq!(
            v,
            json!({
                "access_token": "[redacted]", "nested": [{"client_secret": "[redacted]"}],
                "password_resets": [{"reference": "PR-1", "reset_token": "[redacted]"}], "email": "a@b.c"
            }),
            "an allowed name keeps its value but secrets inside it are still redacted"
        );
    }

    #[test]
    fn the_credential_is_scrubbed_wherever_it_is_echoed() {
        let mut v = json!({"echo": "Bearer tok-123456", "list": ["x tok-123456 y"], "tok-123456": 1});
        scrub_json(&mut v, "tok-123456");
        assert!(!v.to_string().contains("tok-123456"), "{v}");
        assert_eq!(scrub_text("url?q=tok-123456", "tok-123456"), "url?q=[redacted]");
    }
}
