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
fn a_missing_key_is_refused() {
    let text: String = DEMO.lines().filter(|l| !l.starts_with("sign_off = ")).collect::<Vec<_>>().join("\n");
    let (msg, _) = error(&text);
    assert!(msg.contains("missing field `sign_off`"), "{msg}");
}

/// Bad edits of the demo file: what is wrong, the text replaced (once) and its
/// replacement, what the error says and, where given, the start of the line it points at.
#[test]
fn each_bad_edit_is_refused_and_located() {
    let sources = "[sources]\nunused = { article = \"a\", anchor = \"b\", query = \"c\" }\n";
    let rows: [(&str, &str, &str, &str, Option<&str>); 12] = [
        ("bad TOML is located", "[reply]", "[reply", ": ", Some("[reply")),
        ("an unknown key", "sign_off = ", "sign_of = \"Bye\"\nsign_off = ", "unknown field `sign_of`", Some("sign_of")),
        (
            "a hole the sentence cannot have",
            "tracking_say = \"Its tracking number is {tracking}.\"",
            "tracking_say = \"Its tracking number is {order}.\"",
            "{order} is not a hole here: this sentence's holes are {tracking}",
            Some("tracking_say"),
        ),
        (
            "a hole in a sentence with none",
            "fallback = \"Thanks",
            "fallback = \"{name} Thanks",
            "this sentence has no holes",
            None,
        ),
        ("an unclosed hole", "fallback = \"Thanks", "fallback = \"{Thanks", "unclosed '{'", None),
        (
            "a pattern that does not compile",
            "undo = ' undo'",
            "undo = ' undo('",
            "not a regular expression",
            Some("undo = "),
        ),
        ("an empty pattern", "undo = ' undo'", "undo = ''", "an empty pattern matches every text", None),
        (
            "a quote of an unknown source",
            "undo_cite = [\"status_cancelled\"]",
            "undo_cite = [\"status_cancel\"]",
            "no source named \"status_cancel\"",
            Some("undo_cite"),
        ),
        (
            "a source nobody quotes",
            "[sources]\n",
            sources,
            "sources.unused is quoted by no playbook",
            Some("unused = "),
        ),
        ("an amount as a float", "amount = \"10.00\"", "amount = 10.0", "expected a string", Some("amount = ")),
        (
            "an amount that is no decimal",
            "amount = \"10.00\"",
            "amount = \"1e1\"",
            "not a positive decimal amount",
            None,
        ),
        (
            "an unknown intent",
            "cancel_order = [\"cancel_who\"]",
            "cancel_orders = [\"cancel_who\"]",
            "unknown variant `cancel_orders`",
            Some("cancel_orders"),
        ),
    ];
    for (what, from, to, says, at) in rows {
        let (msg, line) = error(&demo_with(from, to));
        assert!(msg.contains(says), "{what}: {msg}");
        if let Some(at) = at {
            assert!(line.starts_with(at), "{what}: {msg} points at {line:?}");
        }
    }
}

#[test]
fn a_file_that_cannot_be_read_names_it() {
    let e = Playbooks::load(Path::new("/nonexistent/playbooks.toml")).unwrap_err();
    assert!(e.to_string().starts_with("cannot read the playbooks /nonexistent/playbooks.toml"), "{e}");
}
