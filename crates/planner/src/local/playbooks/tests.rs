//! Each kind of bad input to the playbooks file, and where its error points.

#![allow(clippy::unwrap_used)]
use super::*;

const DEMO: &str = include_str!("../../../../../assets/demo/playbooks.toml");

/// The demo file with `from` (which must occur once) replaced by `to`.
fn demo_with(from: &str, to: &str) -> String {
    assert_eq!(DEMO.matches(from).count(), 1, "{from:?} occurs once in the demo playbooks");
    DEMO.replace(from, to)
}

/// The `line:column: message` of parsing `text`, and the line itself.
fn error(text: &str) -> (String, String) {
    let e = Playbooks::parse("playbooks.toml", text).unwrap_err();
    let PlaybookError::Invalid { line, column, message, .. } = &e else { panic!("{e}") };
    assert_eq!(e.to_string(), format!("playbooks.toml:{line}:{column}: {message}"));
    (format!("{line}:{column}: {message}"), text.lines().nth(line - 1).unwrap_or_default().to_string())
}

#[test]
fn the_demo_playbooks_parse_and_quote_every_source() {
    let p = Playbooks::parse("playbooks.toml", DEMO).unwrap();
    assert!(p.sources().count() >= 50, "the demo quotes its articles");
    let greeting = p.reply.greeting.fill(&[("name", "Sofia")]);
    assert_eq!(greeting, "Hi Sofia,");
}

#[test]
fn bad_toml_is_located() {
    let (msg, line) = error(&demo_with("[reply]", "[reply"));
    assert!(msg.contains(": "), "{msg}");
    assert!(line.starts_with("[reply"), "{msg} points at {line:?}");
}

#[test]
fn an_unknown_key_is_refused() {
    let (msg, line) = error(&demo_with("sign_off = ", "sign_of = \"Bye\"\nsign_off = "));
    assert!(msg.contains("unknown field `sign_of`"), "{msg}");
    assert!(line.starts_with("sign_of"), "{msg} points at {line:?}");
}

#[test]
fn a_missing_key_is_refused() {
    let text: String = DEMO.lines().filter(|l| !l.starts_with("sign_off = ")).collect::<Vec<_>>().join("\n");
    let (msg, _) = error(&text);
    assert!(msg.contains("missing field `sign_off`"), "{msg}");
}

#[test]
fn a_hole_the_sentence_cannot_have_is_refused() {
    let (msg, line) = error(&demo_with(
        "tracking_say = \"Its tracking number is {tracking}.\"",
        "tracking_say = \"Its tracking number is {order}.\"",
    ));
    assert!(msg.contains("{order} is not a hole here: this sentence's holes are {tracking}"), "{msg}");
    assert!(line.starts_with("tracking_say"), "{msg} points at {line:?}");
    let (msg, _) = error(&demo_with("fallback = \"Thanks", "fallback = \"{name} Thanks"));
    assert!(msg.contains("this sentence has no holes"), "{msg}");
    let (msg, _) = error(&demo_with("fallback = \"Thanks", "fallback = \"{Thanks"));
    assert!(msg.contains("unclosed '{'"), "{msg}");
}

#[test]
fn a_pattern_that_does_not_compile_is_refused() {
    let (msg, line) = error(&demo_with("undo = ' undo'", "undo = ' undo('"));
    assert!(msg.contains("not a regular expression"), "{msg}");
    assert!(line.starts_with("undo = "), "{msg} points at {line:?}");
    let (msg, _) = error(&demo_with("undo = ' undo'", "undo = ''"));
    assert!(msg.contains("an empty pattern matches every text"), "{msg}");
}

#[test]
fn a_quote_of_an_unknown_source_is_refused() {
    let (msg, line) = error(&demo_with("undo_cite = [\"status_cancelled\"]", "undo_cite = [\"status_cancel\"]"));
    assert!(msg.contains("no source named \"status_cancel\""), "{msg}");
    assert!(line.starts_with("undo_cite"), "{msg} points at {line:?}");
}

#[test]
fn a_source_nobody_quotes_is_refused() {
    let text = demo_with("[sources]\n", "[sources]\nunused = { article = \"a\", anchor = \"b\", query = \"c\" }\n");
    let (msg, line) = error(&text);
    assert!(msg.contains("sources.unused is quoted by no playbook"), "{msg}");
    assert!(line.starts_with("unused = "), "{msg} points at {line:?}");
}

#[test]
fn an_amount_is_decimal_text_never_a_float() {
    let (msg, line) = error(&demo_with("amount = \"10.00\"", "amount = 10.0"));
    assert!(msg.contains("expected a string"), "{msg}");
    assert!(line.starts_with("amount = "), "{msg} points at {line:?}");
    let (msg, _) = error(&demo_with("amount = \"10.00\"", "amount = \"1e1\""));
    assert!(msg.contains("not a positive decimal amount"), "{msg}");
}

#[test]
fn an_unknown_intent_is_refused() {
    let (msg, line) = error(&demo_with("cancel_order = [\"cancel_who\"]", "cancel_orders = [\"cancel_who\"]"));
    assert!(msg.contains("unknown variant `cancel_orders`"), "{msg}");
    assert!(line.starts_with("cancel_orders"), "{msg} points at {line:?}");
}

#[test]
fn a_file_that_cannot_be_read_names_it() {
    let e = Playbooks::load(Path::new("/nonexistent/playbooks.toml")).unwrap_err();
    assert!(e.to_string().starts_with("cannot read the playbooks /nonexistent/playbooks.toml"), "{e}");
}
