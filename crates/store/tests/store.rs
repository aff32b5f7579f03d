//! Integration tests for countersign-store: real SQLite files in temp dirs.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use countersign_core::model::{Pause, PauseScope};
use countersign_store::{
    Appended, EventFilter, NewEvent, Problem, SCHEMA_VERSION, Store, StoreError, VerifyReport, verify, verify_bundle,
};
use jiff::Timestamp;
use proptest::prelude::*;
use rusqlite::Connection;
use serde_json::json;
use tempfile::TempDir;

/// Events in the tamper fixtures.
const N: u64 = 40;

fn at(i: u64) -> Timestamp {
    Timestamp::from_second(1_750_000_000 + i64::try_from(i).unwrap()).unwrap()
}

fn event(i: u64) -> NewEvent {
    NewEvent {
        case_id: (!i.is_multiple_of(5)).then(|| format!("case-{}", i % 3)),
        kind: if i.is_multiple_of(2) { "step_finished".into() } else { "case_opened".into() },
        actor: "agent-7".into(),
        at: at(i),
        payload: json!({ "note": format!("event {i}"), "order": format!("#W{:07}", i * 7), "amount": i * 100 }),
    }
}

fn pause(id: &str, scope: PauseScope, value: &str, i: u64) -> Pause {
    Pause {
        id: id.into(),
        scope,
        value: value.into(),
        reason: format!("incident {i}"),
        set_by: "lead-1".into(),
        set_at: at(i),
        team: None,
    }
}

/// A closed store file holding `n` events (so the WAL is checkpointed into it and it can be
/// copied as one file).
fn build_log(dir: &Path, n: u64) -> PathBuf {
    let path = dir.join("template.db");
    let store = Store::open(&path).unwrap();
    let w = store.writer();
    w.append_batch((1..=n).map(event).collect()).unwrap();
    store.close().unwrap();
    assert!(!wal_of(&path).exists(), "closing the store must checkpoint and remove the WAL");
    path
}

fn wal_of(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}-wal", path.display()))
}

/// The 40-event fixture in `dir` (built on first use).
fn template(dir: &Path) -> PathBuf {
    let path = dir.join("template.db");
    if !path.exists() {
        build_log(dir, N);
    }
    path
}

/// A fresh copy of the fixture, at `dir/name`.
fn template_copy(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::copy(template(dir), &path).unwrap();
    path
}

/// A fresh copy of the fixture, opened raw with the append-only guards removed, as an
/// attacker with write access would.
fn tamperable(dir: &Path, name: &str) -> (PathBuf, Connection) {
    let path = template_copy(dir, name);
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("DROP TRIGGER evidence_no_update; DROP TRIGGER evidence_no_delete;").unwrap();
    (path, conn)
}

/// The report of verifying a fresh copy of the fixture after `tamper` changed it.
fn verify_tampered(dir: &Path, name: &str, tamper: impl FnOnce(&Connection)) -> VerifyReport {
    let (path, conn) = tamperable(dir, name);
    tamper(&conn);
    drop(conn);
    verify(&path).unwrap()
}

fn row(conn: &Connection, seq: u64) -> (String, Vec<u8>) {
    conn.query_row("SELECT body, hash FROM evidence WHERE seq = ?", [seq as i64], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
}

fn set_row(conn: &Connection, seq: u64, body: &str, hash: &[u8]) {
    conn.execute("UPDATE evidence SET body = ?, hash = ? WHERE seq = ?", rusqlite::params![body, hash, seq as i64])
        .unwrap();
}

fn broken_at(report: &VerifyReport) -> Option<(u64, Problem)> {
    report.first_broken.as_ref().map(|b| (b.seq, b.problem.clone()))
}

fn sha(bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).to_vec()
}

fn link(prev: &[u8], body: &[u8]) -> Vec<u8> {
    sha(&[&[0u8][..], prev, body].concat())
}

// ---------------------------------------------------------------- the chain itself

#[test]
fn a_clean_log_verifies_and_the_head_matches() {
    let dir = TempDir::new().unwrap();
    let tpl = template(dir.path());
    let report = verify(&tpl).unwrap();
    assert!(report.ok, "an untouched log must verify: {report:?}");
    assert_eq!(report.count, N);
    let store = Store::open(&tpl).unwrap();
    let head = store.head().unwrap();
    assert_eq!(head.count, N);
    assert_eq!(report.head, head.hash, "verify reports the head the log claims");
    assert_eq!(store.verify().unwrap(), report, "Store::verify and verify(path) agree");
}

#[test]
fn hashes_follow_the_documented_rule_from_genesis() {
    let dir = TempDir::new().unwrap();
    let store = Store::open(dir.path().join("e.db")).unwrap();
    let a = store.append(event(1)).unwrap();
    let b = store.append(event(2)).unwrap();
    let genesis = sha(b"countersign/evidence/v1/genesis");
    let ev = store.list_events(&EventFilter::default()).unwrap();
    assert_eq!(a.hash.0.to_vec(), link(&genesis, ev[0].body.as_bytes()), "first event chains from genesis");
    assert_eq!(b.hash.0.to_vec(), link(&a.hash.0, ev[1].body.as_bytes()), "second chains from the first");
    assert_eq!(
        ev[0].body,
        r##"{"actor":"agent-7","at":"2025-06-15T15:06:41Z","case_id":"case-1","kind":"case_opened","payload":{"amount":100,"note":"event 1","order":"#W0000007"},"seq":1}"##,
        "the body is RFC 8785 canonical JSON with seq inside"
    );
}

#[test]
fn editing_any_event_is_detected_at_that_event() {
    let dir = TempDir::new().unwrap();
    for k in 1..=N {
        let r = verify_tampered(dir.path(), &format!("edit-{k}.db"), |conn| {
            let n = conn
                .execute(
                    "UPDATE evidence SET body = replace(body, '\"note\":\"event ', '\"note\":\"EVENT ') WHERE seq = ?",
                    [k as i64],
                )
                .unwrap();
            assert_eq!(n, 1);
        });
        assert_eq!(
            broken_at(&r),
            Some((k, Problem::HashMismatch)),
            "an edited body must be named as the first broken event (edited {k})"
        );
        assert!(!r.ok);
    }
}

#[test]
fn deleting_any_event_is_detected_at_that_event() {
    let dir = TempDir::new().unwrap();
    for k in 1..=N {
        let r = verify_tampered(dir.path(), &format!("del-{k}.db"), |conn| {
            conn.execute("DELETE FROM evidence WHERE seq = ?", [k as i64]).unwrap();
        });
        let expected = if k == N {
            Problem::Truncated { expected_count: N, found: N - 1 }
        } else {
            Problem::Gap { next_seq: k + 1 }
        };
        assert_eq!(broken_at(&r), Some((k, expected)), "a deleted event must be named as missing (deleted {k})");
        assert_eq!(r.count, N - 1);
    }
}

#[test]
fn swapping_any_event_with_its_neighbour_is_detected_at_the_first_of_the_pair() {
    let dir = TempDir::new().unwrap();
    for k in 1..=N {
        // The last event swaps with the one before it.
        let (a, b) = if k < N { (k, k + 1) } else { (k - 1, k) };
        let r = verify_tampered(dir.path(), &format!("swap-{k}.db"), |conn| {
            let (ra, rb) = (row(conn, a), row(conn, b));
            set_row(conn, a, &rb.0, &rb.1);
            set_row(conn, b, &ra.0, &ra.1);
        });
        assert_eq!(
            broken_at(&r),
            Some((a, Problem::Reordered { found_seq: b })),
            "swapping {a} and {b} must be named at {a}, where event {b} now sits"
        );
    }
}

#[test]
fn truncating_the_log_at_any_event_is_detected_at_the_first_missing_event() {
    let dir = TempDir::new().unwrap();
    for keep in 0..N {
        let r = verify_tampered(dir.path(), &format!("trunc-{keep}.db"), |conn| {
            conn.execute("DELETE FROM evidence WHERE seq > ?", [keep as i64]).unwrap();
        });
        assert_eq!(
            broken_at(&r),
            Some((keep + 1, Problem::Truncated { expected_count: N, found: keep })),
            "the chain head still counts {N} events, so a log cut after {keep} must be reported truncated"
        );
    }
}

#[test]
fn a_forged_event_with_a_recomputed_hash_breaks_the_next_link() {
    let dir = TempDir::new().unwrap();
    for k in 1..=N {
        let r = verify_tampered(dir.path(), &format!("forge-{k}.db"), |conn| {
            let prev = if k == 1 { sha(b"countersign/evidence/v1/genesis") } else { row(conn, k - 1).1 };
            let body = row(conn, k).0.replace("\"amount\":", "\"amount\":9");
            set_row(conn, k, &body, &link(&prev, body.as_bytes()));
        });
        let (seq, problem) = broken_at(&r).unwrap();
        if k < N {
            assert_eq!(
                (seq, problem),
                (k + 1, Problem::HashMismatch),
                "event {} no longer chains from forged {k}",
                k + 1
            );
        } else {
            assert_eq!(seq, N, "a re-hashed last event no longer matches the chain head");
            assert!(matches!(problem, Problem::HeadMismatch { .. }), "{problem:?}");
        }
    }
}

#[test]
fn editing_only_a_stored_hash_or_the_head_is_detected() {
    let dir = TempDir::new().unwrap();
    let r = verify_tampered(dir.path(), "hash.db", |conn| {
        conn.execute("UPDATE evidence SET hash = zeroblob(32) WHERE seq = 7", []).unwrap();
    });
    assert_eq!(broken_at(&r), Some((7, Problem::HashMismatch)));

    let r = verify_tampered(dir.path(), "head.db", |conn| {
        conn.execute("UPDATE chain_head SET head = zeroblob(32)", []).unwrap();
    });
    let (seq, problem) = broken_at(&r).unwrap();
    assert_eq!(seq, N);
    assert!(matches!(problem, Problem::HeadMismatch { .. }), "a wrong head hash must be reported: {problem:?}");

    let r = verify_tampered(dir.path(), "body.db", |conn| {
        conn.execute("UPDATE evidence SET body = '{\"kind\":\"x\"}' WHERE seq = 3", []).unwrap();
    });
    let (seq, problem) = broken_at(&r).unwrap();
    assert_eq!(seq, 3);
    assert!(matches!(problem, Problem::BadBody { .. }), "a body without its seq is unreadable: {problem:?}");
}

#[test]
fn a_full_rewrite_including_the_head_is_not_caught_by_the_chain_alone() {
    // Documented limit: only signed checkpoints or an exported head catch this.
    let dir = TempDir::new().unwrap();
    let (path, conn) = tamperable(dir.path(), "rewrite.db");
    let genuine_head = verify(&path).unwrap().head;
    conn.execute("DELETE FROM evidence WHERE seq > 30", []).unwrap();
    let mut prev = row(&conn, 19).1;
    for k in 20..=30 {
        let body = row(&conn, k).0.replace("\"note\":\"event", "\"note\":\"rewritten");
        let h = link(&prev, body.as_bytes());
        set_row(&conn, k, &body, &h);
        prev = h;
    }
    conn.execute("UPDATE chain_head SET count = 30, head = ?", [&prev]).unwrap();
    drop(conn);
    let r = verify(&path).unwrap();
    assert!(r.ok, "a consistent rewrite verifies locally: that is why checkpoints exist");
    assert_ne!(r.head, genuine_head, "but its head differs from any head recorded elsewhere");
}

#[test]
fn the_writer_refuses_to_extend_a_damaged_log() {
    let dir = TempDir::new().unwrap();
    let (path, conn) = tamperable(dir.path(), "damaged.db");
    conn.execute("DELETE FROM evidence WHERE seq > 35", []).unwrap();
    drop(conn);
    let store = Store::open(&path).unwrap();
    let err = store.append(event(99)).unwrap_err();
    assert!(matches!(err, StoreError::LogDamaged { .. }), "appending after a cut tail would hide it: {err:?}");
    assert_eq!(verify(&path).unwrap().count, 35, "the refused append wrote nothing");
}

#[test]
fn the_append_only_guards_reject_plain_sql_changes() {
    let dir = TempDir::new().unwrap();
    let path = template_copy(dir.path(), "guard.db");
    let conn = Connection::open(&path).unwrap();
    for sql in [
        "UPDATE evidence SET body = body WHERE seq = 1",
        "DELETE FROM evidence WHERE seq = 40",
        "DELETE FROM chain_head",
        "INSERT INTO evidence (seq, body, hash) VALUES (5, '{}', zeroblob(32))",
        "INSERT INTO evidence (seq, body, hash) VALUES (41, 'not json', zeroblob(32))",
        "INSERT INTO evidence (seq, body, hash) VALUES (41, '{}', zeroblob(31))",
    ] {
        assert!(conn.execute(sql, []).is_err(), "a bug doing `{sql}` must be refused by the schema");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Flip any one byte of any event's body or hash: verify names that event.
    #[test]
    fn any_single_byte_flip_is_named_at_its_event(k in 1..=N, in_hash in any::<bool>(), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let dir = TempDir::new().unwrap();
        let (path, conn) = tamperable(dir.path(), "flip.db");
        // The STRICT table computes its JSON-generated columns on every write, so it refuses
        // a body that is not JSON; an attacker would rebuild the table without them.
        conn.execute_batch(
            "CREATE TABLE plain (seq INTEGER PRIMARY KEY, body TEXT NOT NULL, hash BLOB NOT NULL);
             INSERT INTO plain SELECT seq, body, hash FROM evidence;
             DROP TABLE evidence;
             ALTER TABLE plain RENAME TO evidence;",
        )
        .unwrap();
        let (body, mut hash) = row(&conn, k);
        let mut body = body.into_bytes();
        let target = if in_hash { &mut hash } else { &mut body };
        let i = pos.index(target.len());
        target[i] ^= 1 << bit;
        conn.execute("UPDATE evidence SET body = CAST(? AS TEXT), hash = ? WHERE seq = ?", rusqlite::params![body, hash, k as i64]).unwrap();
        drop(conn);
        let r = verify(&path).unwrap();
        prop_assert_eq!(r.first_broken.map(|b| b.seq), Some(k), "a flipped bit in event {} must be named there", k);
    }
}

// ---------------------------------------------------------------- bundles

fn python3() -> bool {
    Command::new("python3").arg("--version").output().is_ok_and(|o| o.status.success())
}

fn run_verify_py(dir: &Path) -> (i32, String) {
    run_verify_py_many(&[dir.to_path_buf()]).pop().unwrap()
}

/// Run the bundle's own `verify.py` (its `main()`, exactly as shipped) on many bundles in one
/// python process: interpreter start-up costs more than the checks.
fn run_verify_py_many(dirs: &[PathBuf]) -> Vec<(i32, String)> {
    const DRIVER: &str = r#"
import contextlib, io, json, runpy, sys
script, dirs = sys.argv[1], sys.argv[2:]
main = runpy.run_path(script, run_name="bundle_verify")["main"]
for d in dirs:
    sys.argv = [script, d]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main()
    print(json.dumps([code, out.getvalue().strip()]))
"#;
    let script = dirs[0].join("verify.py");
    let out = Command::new("python3").arg("-c").arg(DRIVER).arg(&script).args(dirs).output().unwrap();
    assert!(out.status.success(), "python driver failed: {}", String::from_utf8_lossy(&out.stderr));
    let results: Vec<(i32, String)> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(results.len(), dirs.len());
    results
}

/// A bundle exported from the 40-event fixture, in `root/bundle` (built on first use).
fn bundle(root: &Path) -> PathBuf {
    let out = root.join("bundle");
    if !out.exists() {
        let db = template_copy(root, "b.db");
        let store = Store::open(&db).unwrap();
        store.export(&out, "lead-1", at(1000)).unwrap();
    }
    out
}

fn tampered_bundle(root: &Path, name: &str, f: impl FnOnce(&mut Vec<String>)) -> PathBuf {
    let source = bundle(root);
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["manifest.json", "verify.py"] {
        std::fs::copy(source.join(file), dir.join(file)).unwrap();
    }
    let text = std::fs::read_to_string(source.join("events.jsonl")).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    f(&mut lines);
    let mut out = lines.join("\n");
    if !lines.is_empty() {
        out.push('\n');
    }
    std::fs::write(dir.join("events.jsonl"), out).unwrap();
    dir
}

/// Tampered bundles and what must be found in each.
#[derive(Default)]
struct BundleCases(Vec<(PathBuf, u64, String)>);

impl BundleCases {
    /// `verify_bundle` must name `seq`; returns the problem it found.
    fn expect(&mut self, dir: PathBuf, seq: u64, why: String) -> Problem {
        let r = verify_bundle(&dir).unwrap();
        let (found, problem) = broken_at(&r).unwrap_or_else(|| panic!("{why}: verify_bundle passed a tampered bundle"));
        assert_eq!(found, seq, "{why}: verify_bundle named the wrong event ({problem:?})");
        self.0.push((dir, seq, why));
        problem
    }

    /// `verify.py` must fail on every bundle and name the same event.
    fn check_python(self) {
        if !python3() {
            return;
        }
        let dirs: Vec<PathBuf> = self.0.iter().map(|(d, _, _)| d.clone()).collect();
        for ((code, stdout), (_, seq, why)) in run_verify_py_many(&dirs).into_iter().zip(&self.0) {
            assert_eq!(code, 1, "{why}: verify.py must fail: {stdout}");
            assert!(
                stdout.starts_with(&format!("BROKEN at seq {seq}:")),
                "{why}: verify.py must name event {seq}, said: {stdout}"
            );
        }
    }
}

#[test]
fn export_writes_a_bundle_that_verifies_and_records_export_made() {
    let dir = TempDir::new().unwrap();
    let db = template_copy(dir.path(), "x.db");
    let store = Store::open(&db).unwrap();
    let out = dir.path().join("bundle");
    let summary = store.export(&out, "lead-1", at(500)).unwrap();
    assert!(summary.report.ok);
    assert_eq!(summary.manifest.count, N);
    assert_eq!(summary.event.seq, N + 1, "the export is recorded after the exported events");

    let recorded = store.event(N + 1).unwrap().unwrap();
    assert_eq!(recorded.kind, "export_made");
    assert_eq!(recorded.actor, "lead-1");
    assert_eq!(recorded.at, at(500), "the caller's time, not a clock");
    assert_eq!(recorded.payload["count"], json!(N));
    assert_eq!(recorded.payload["path"], json!(out.display().to_string()));
    assert_eq!(recorded.payload["head"], json!(summary.manifest.head.to_hex()));

    let r = verify_bundle(&out).unwrap();
    assert!(r.ok, "{r:?}");
    assert_eq!((r.count, r.head), (N, summary.manifest.head));
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["exported_at"], json!("2025-06-15T15:15:00Z"));
    assert_eq!(manifest["genesis"], json!("0477f3b2c19228728287b426817d2c0ad98e1d9e781409706f389836bfdf753d"));
    if python3() {
        let (code, stdout) = run_verify_py(&out);
        assert_eq!((code, stdout), (0, format!("OK {N} events, head {}", summary.manifest.head)));
    }

    let again = store.export(&out, "lead-1", at(501)).unwrap_err();
    assert!(matches!(again, StoreError::ExportTargetNotEmpty { .. }), "never overwrite a bundle: {again:?}");
    assert!(verify_bundle(&out).unwrap().ok, "the refused export left the bundle intact");
}

#[test]
fn editing_any_bundle_line_is_detected_by_rust_and_python() {
    let root = TempDir::new().unwrap();
    let mut cases = BundleCases::default();
    for k in 1..=N {
        let dir = tampered_bundle(root.path(), &format!("edit-{k}"), |lines| {
            let line = &mut lines[k as usize - 1];
            *line = line.replace("\"note\":\"event ", "\"note\":\"EVENT ");
        });
        let p = cases.expect(dir, k, format!("edited line {k}"));
        assert_eq!(p, Problem::HashMismatch);
    }
    cases.check_python();
}

#[test]
fn dropping_any_bundle_line_is_detected_by_rust_and_python() {
    let root = TempDir::new().unwrap();
    let mut cases = BundleCases::default();
    for k in 1..=N {
        let dir = tampered_bundle(root.path(), &format!("drop-{k}"), |lines| {
            lines.remove(k as usize - 1);
        });
        let p = cases.expect(dir, k, format!("dropped line {k}"));
        let expected = if k == N {
            Problem::Truncated { expected_count: N, found: N - 1 }
        } else {
            Problem::Gap { next_seq: k + 1 }
        };
        assert_eq!(p, expected, "dropped line {k}");
    }
    cases.check_python();
}

#[test]
fn reordering_bundle_lines_is_detected_by_rust_and_python() {
    let root = TempDir::new().unwrap();
    let mut cases = BundleCases::default();
    for k in 1..N {
        let dir = tampered_bundle(root.path(), &format!("swap-{k}"), |lines| lines.swap(k as usize - 1, k as usize));
        let p = cases.expect(dir, k, format!("swapped lines {k} and {}", k + 1));
        assert_eq!(p, Problem::Reordered { found_seq: k + 1 });
    }
    let dir = tampered_bundle(root.path(), "reversed", |lines| lines.reverse());
    cases.expect(dir, 1, "reversed bundle".into());
    cases.check_python();
}

#[test]
fn truncating_a_bundle_is_detected_by_rust_and_python() {
    let root = TempDir::new().unwrap();
    let mut cases = BundleCases::default();
    for keep in 0..N {
        let dir = tampered_bundle(root.path(), &format!("trunc-{keep}"), |lines| lines.truncate(keep as usize));
        let p = cases.expect(dir, keep + 1, format!("bundle cut after {keep} lines"));
        assert_eq!(p, Problem::Truncated { expected_count: N, found: keep });
    }
    cases.check_python();
}

#[test]
fn a_bundle_without_a_usable_manifest_is_an_error_not_a_pass() {
    let root = TempDir::new().unwrap();
    let dir = tampered_bundle(root.path(), "nomanifest", |_| {});
    std::fs::remove_file(dir.join("manifest.json")).unwrap();
    assert!(matches!(verify_bundle(&dir), Err(StoreError::Io { .. })));
    std::fs::write(dir.join("manifest.json"), "{\"format\":\"something-else\"}").unwrap();
    assert!(matches!(verify_bundle(&dir), Err(StoreError::BadBundle { .. })));
    if python3() {
        assert_eq!(run_verify_py(&dir).0, 2, "verify.py exits 2 on an unusable bundle");
    }
}

// ---------------------------------------------------------------- writer

#[test]
fn eight_concurrent_appenders_lose_nothing_and_the_chain_verifies() {
    const THREADS: u64 = 8;
    const PER: u64 = 150;
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("conc.db");
    let store = Store::open(&path).unwrap();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let w = store.writer();
            std::thread::spawn(move || {
                (0..PER)
                    .map(|i| {
                        let mut ev = event(i);
                        ev.payload = json!({ "thread": t, "i": i });
                        w.append(ev).unwrap()
                    })
                    .collect::<Vec<Appended>>()
            })
        })
        .collect();
    let mut seqs = BTreeSet::new();
    for h in handles {
        let got = h.join().unwrap();
        assert!(got.windows(2).all(|w| w[0].seq < w[1].seq), "one thread's appends keep their order");
        seqs.extend(got.iter().map(|a| a.seq));
    }
    assert_eq!(seqs, (1..=THREADS * PER).collect(), "every append got its own seq, contiguous from 1");
    let events = store.list_events(&EventFilter::default()).unwrap();
    let seen: BTreeSet<(u64, u64)> =
        events.iter().map(|e| (e.payload["thread"].as_u64().unwrap(), e.payload["i"].as_u64().unwrap())).collect();
    assert_eq!(seen.len() as u64, THREADS * PER, "no event lost or duplicated");
    let r = verify(&path).unwrap();
    assert!(r.ok && r.count == THREADS * PER, "{r:?}");
}

#[test]
fn a_batch_is_all_or_nothing_and_bad_events_are_refused() {
    let dir = TempDir::new().unwrap();
    let store = Store::open(dir.path().join("batch.db")).unwrap();
    let w = store.writer();
    let got = w.append_batch((1..=3).map(event).collect()).unwrap();
    assert_eq!(got.iter().map(|a| a.seq).collect::<Vec<_>>(), [1, 2, 3]);

    let mut bad = event(5);
    bad.kind = "Not A Kind".into();
    let err = w.append_batch(vec![event(4), bad, event(6)]).unwrap_err();
    assert!(matches!(err, StoreError::InvalidEvent { .. }), "{err:?}");
    assert_eq!(store.head().unwrap().count, 3, "a failed batch stores none of its events");

    let mut huge = event(7);
    huge.payload = json!({ "id": u64::MAX });
    assert!(
        matches!(w.append(huge), Err(StoreError::InvalidEvent { .. })),
        "an integer canonical JSON would round must be refused, not silently changed"
    );
    let mut anon = event(8);
    anon.actor = " ".into();
    assert!(matches!(w.append(anon), Err(StoreError::InvalidEvent { .. })));

    let next = w.append(event(9)).unwrap();
    assert_eq!(next.seq, 4, "refused events leave no hole in the chain");
    assert!(store.verify().unwrap().ok);
    assert_eq!(w.append_batch(Vec::new()).unwrap(), Vec::new());
}

#[test]
fn a_closed_store_gives_closed_to_outstanding_writers() {
    let dir = TempDir::new().unwrap();
    let store = Store::open(dir.path().join("c.db")).unwrap();
    let w = store.writer();
    w.append(event(1)).unwrap();
    store.close().unwrap();
    assert!(matches!(w.append(event(2)), Err(StoreError::Closed)));
}

// ---------------------------------------------------------------- reads

#[test]
fn list_events_filters_by_case_kind_seq_text_and_limit() {
    let dir = TempDir::new().unwrap();
    let store = Store::open(template(dir.path())).unwrap();
    let all = store.list_events(&EventFilter::default()).unwrap();
    assert_eq!(all.len() as u64, N);
    assert!(all.iter().zip(1..).all(|(e, s)| e.seq == s), "oldest first");

    let case = store.events_for_case("case-1").unwrap();
    let expected: Vec<u64> = (1..=N).filter(|i| i % 5 != 0 && i % 3 == 1).collect();
    assert_eq!(case.iter().map(|e| e.seq).collect::<Vec<_>>(), expected);
    assert!(case.iter().all(|e| e.case_id.as_deref() == Some("case-1")));

    let f =
        EventFilter { kind: Some("step_finished".into()), since_seq: Some(10), limit: Some(3), ..Default::default() };
    assert_eq!(store.list_events(&f).unwrap().iter().map(|e| e.seq).collect::<Vec<_>>(), [12, 14, 16]);

    let f = EventFilter { text: Some("#w0000077".into()), ..Default::default() };
    let hits = store.list_events(&f).unwrap();
    assert_eq!(hits.len(), 1, "text search is case-insensitive on the body");
    assert_eq!(hits[0].seq, 11);
    assert_eq!(hits[0].payload["note"], json!("event 11"));

    let f = EventFilter { text: Some("%".into()), ..Default::default() };
    assert!(store.list_events(&f).unwrap().is_empty(), "LIKE wildcards in the query are literal");
    assert_eq!(store.event(N + 5).unwrap(), None);
}

// ---------------------------------------------------------------- pauses

#[test]
fn pauses_set_list_clear_and_each_change_is_evidence() {
    let dir = TempDir::new().unwrap();
    let store = Store::open(dir.path().join("p.db")).unwrap();
    let w = store.writer();
    w.append(event(1)).unwrap();

    let p1 = pause("p-1", PauseScope::Store, "acme-eu", 2);
    let p2 = pause("p-2", PauseScope::Action, "refund", 3);
    let s1 = w.set_pause(p1.clone()).unwrap();
    let s2 = w.set_pause(p2.clone()).unwrap();
    assert_eq!(store.active_pauses().unwrap(), vec![p1.clone(), p2.clone()]);

    let ev = store.event(s1.seq).unwrap().unwrap();
    assert_eq!((ev.kind.as_str(), ev.actor.as_str(), ev.at), ("pause_changed", "lead-1", at(2)));
    assert_eq!(ev.payload, json!({ "change": "set", "pause": serde_json::to_value(&p1).unwrap() }));
    let typed: countersign_core::evidence::EvidenceRecord = serde_json::from_str(&ev.body).unwrap();
    assert_eq!(
        typed.event,
        countersign_core::evidence::Event::PauseChanged {
            change: countersign_core::evidence::PauseChange::Set,
            pause: p1.clone(),
            reason: None,
            signed: None,
        },
        "the stored body parses as core's typed evidence record"
    );

    let c1 = w.clear_pause("p-1", "lead-2", "incident over", at(9)).unwrap();
    assert_eq!(store.active_pauses().unwrap(), vec![p2.clone()], "a cleared pause stops applying");
    let ev = store.event(c1.seq).unwrap().unwrap();
    assert_eq!(ev.kind, "pause_changed");
    assert_eq!(ev.actor, "lead-2");
    assert_eq!(ev.payload["change"], json!("cleared"));
    assert_eq!(ev.payload["pause"]["id"], json!("p-1"));
    assert_eq!(ev.payload["reason"], json!("incident over"));

    let history = store.pause_history().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!((history[0].set_seq, history[1].set_seq), (s1.seq, s2.seq));
    let cleared = history[0].cleared.as_ref().unwrap();
    assert_eq!((cleared.by.as_str(), cleared.at, cleared.seq), ("lead-2", at(9), c1.seq));
    assert!(history[1].cleared.is_none());

    let before = store.head().unwrap();
    let err = w.clear_pause("p-1", "lead-2", "again", at(10)).unwrap_err();
    assert!(
        matches!(err, StoreError::PauseAlreadyCleared { ref id, cleared_at } if id == "p-1" && cleared_at == at(9)),
        "{err:?}"
    );
    let err = w.clear_pause("nope", "lead-2", "?", at(10)).unwrap_err();
    assert!(matches!(err, StoreError::PauseNotFound { ref id } if id == "nope"), "{err:?}");
    let err = w.set_pause(p1.clone()).unwrap_err();
    assert!(matches!(err, StoreError::PauseExists { .. }), "pause ids are never reused: {err:?}");
    let mut blank = pause("p-3", PauseScope::Tenant, "", 11);
    blank.value = String::new();
    assert!(matches!(w.set_pause(blank), Err(StoreError::InvalidEvent { .. })));
    assert_eq!(store.head().unwrap(), before, "a refused pause change leaves no evidence");

    drop(store);
    let store = Store::open(dir.path().join("p.db")).unwrap();
    assert_eq!(store.active_pauses().unwrap(), vec![p2], "pauses survive a restart");
    assert!(store.verify().unwrap().ok);
}

// ---------------------------------------------------------------- files, migrations, bad input

#[test]
fn events_survive_reopening_and_the_chain_continues() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("d.db");
    let store = Store::open(&path).unwrap();
    let last = store.writer().append_batch((1..=10).map(event).collect()).unwrap().pop().unwrap();
    drop(store);

    let store = Store::open(&path).unwrap();
    assert_eq!(store.head().unwrap().hash, last.hash);
    assert_eq!(store.append(event(11)).unwrap().seq, 11);
    drop(store);
    let r = verify(&path).unwrap();
    assert!(r.ok && r.count == 11, "{r:?}");
}

#[test]
fn a_fresh_file_is_migrated_and_reopening_changes_nothing() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("m.db");
    let store = Store::open(&path).unwrap();
    let info = store.open_info().clone();
    assert!(info.created);
    assert_eq!((info.from_version, info.to_version, info.backup), (0, SCHEMA_VERSION, None));
    drop(store);
    let store = Store::open(&path).unwrap();
    let info = store.open_info();
    assert!(!info.created);
    assert_eq!((info.from_version, info.backup.clone()), (SCHEMA_VERSION, None), "nothing to migrate, no backup");
    drop(store);
    let conn = Connection::open(&path).unwrap();
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn an_older_store_is_backed_up_then_migrated() {
    let dir = TempDir::new().unwrap();
    let path = template_copy(dir.path(), "old.db");
    {
        // Make it look like a store written before migrations 0002 and later.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP TABLE source_cursors; DROP TABLE case_revisions; DROP TABLE blobs; DROP TABLE kb_fts; DROP VIEW kb_passage_docs; DROP TABLE kb_stats; DROP TABLE kb_passages;
             DROP TABLE kb_articles; DROP TABLE steps; DROP TABLE pauses; DROP INDEX evidence_by_case_kind;
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let store = Store::open(&path).unwrap();
    let info = store.open_info().clone();
    assert_eq!((info.from_version, info.to_version), (1, SCHEMA_VERSION));
    let backup = info.backup.expect("an existing store must be backed up before migrating");
    assert_eq!(backup, PathBuf::from(format!("{}.bak-1", path.display())));
    assert!(store.active_pauses().unwrap().is_empty(), "migration 0002 created the pauses table");
    assert!(store.verify().unwrap().ok);

    let b = Connection::open(&backup).unwrap();
    let v: i64 = b.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    let n: i64 = b.query_row("SELECT count(*) FROM evidence", [], |r| r.get(0)).unwrap();
    assert_eq!((v, n as u64), (1, N), "the backup is the pre-migration database, whole");
    drop(b);
    drop(store);
    assert!(verify(&backup).unwrap().ok, "the backup's log verifies too");
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = TempDir::new().unwrap();
    let path = template_copy(dir.path(), "new.db");
    Connection::open(&path).unwrap().execute_batch("PRAGMA user_version = 99;").unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::SchemaTooNew { found: 99, .. }), "{err:?}");
}

#[test]
fn a_file_that_is_not_sqlite_gives_not_a_database_and_is_left_alone() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("notes.txt");
    let content = "order #W1234567: customer says the parcel never arrived.\n".repeat(40);
    std::fs::write(&path, &content).unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(&err, StoreError::NotADatabase { path: p } if p == &path), "{err:?}");
    assert!(err.to_string().contains("notes.txt"), "the message names the file: {err}");
    assert!(matches!(verify(&path), Err(StoreError::NotADatabase { .. })));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), content, "a refused file is never modified");
}

#[test]
fn another_applications_database_is_refused_untouched() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("other.db");
    Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE customers (id TEXT); INSERT INTO customers VALUES ('x');")
        .unwrap();
    let before = std::fs::read(&path).unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::NotAStore { .. }), "{err:?}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn unwritable_places_give_errors_not_panics() {
    let dir = TempDir::new().unwrap();
    // A directory where the file should be.
    let err = Store::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::CannotOpen { .. }), "{err:?}");
    // A parent that does not exist.
    let err = Store::open(dir.path().join("missing/sub/x.db")).unwrap_err();
    assert!(matches!(err, StoreError::CannotOpen { .. }), "{err:?}");
    // Verifying a path with no store does not create one.
    let ghost = dir.path().join("ghost.db");
    assert!(matches!(verify(&ghost), Err(StoreError::CannotOpen { .. })));
    assert!(!ghost.exists());

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let ro = dir.path().join("ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        // Root ignores permissions; only assert where they apply.
        if std::fs::write(ro.join("probe"), b"x").is_err() {
            let err = Store::open(ro.join("x.db")).unwrap_err();
            assert!(matches!(err, StoreError::CannotOpen { .. } | StoreError::ReadOnly { .. }), "{err:?}");
        }
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

// ------------------------------------------------------------------ steps

fn new_step(plan: &str, step: &str, state: countersign_store::StepState) -> countersign_store::NewStep {
    countersign_store::NewStep {
        plan_id: plan.into(),
        step_id: step.into(),
        case_id: "case-1".into(),
        action: "cancel_pending_order".into(),
        step: json!({"id": step, "action": "cancel_pending_order", "params": {}}),
        step_digest: "sha256:00".into(),
        policy_hash: "sha256:11".into(),
        decision: "confirm".into(),
        approver_roles: vec!["agent".into()],
        state,
        decided_at: at(1),
        order_id: None,
        order_param: None,
    }
}

fn approve(plan: &str, step: &str, by: &str, i: u64) -> countersign_store::Transition {
    use countersign_store::{StepState, StepUpdate, Transition};
    Transition {
        plan_id: plan.into(),
        step_id: step.into(),
        from: vec![StepState::Waiting],
        to: StepState::Approved,
        update: StepUpdate { reviewed_by: Some(by.into()), reviewed_at: Some(at(i)), ..StepUpdate::default() },
        event: NewEvent {
            case_id: Some("case-1".into()),
            kind: "review_decided".into(),
            actor: by.into(),
            at: at(i),
            payload: json!({"step_id": step}),
        },
        unless_paused: None,
    }
}

#[test]
fn steps_are_queued_with_their_decision_and_move_only_from_allowed_states() {
    use countersign_store::{StepFilter, StepState};
    let dir = TempDir::new().unwrap();
    let store = Store::open(dir.path().join("s.sqlite")).unwrap();
    let w = store.writer();
    w.record(vec![event(1)], vec![new_step("p1", "s1", StepState::Waiting), new_step("p1", "s2", StepState::Approved)])
        .unwrap();
    assert_eq!(store.step("p1", "s1").unwrap().unwrap().state, StepState::Waiting);
    let waiting = store.steps(&StepFilter { states: vec![StepState::Waiting], ..StepFilter::default() }).unwrap();
    assert_eq!(waiting.len(), 1, "the review queue holds the waiting step only");

    let a = w.transition(approve("p1", "s1", "agent-1", 2)).unwrap();
    let s1 = store.step("p1", "s1").unwrap().unwrap();
    assert_eq!((s1.state, s1.reviewed_by.as_deref(), s1.last_seq), (StepState::Approved, Some("agent-1"), a.seq));

    let again = w.transition(approve("p1", "s1", "agent-2", 3));
    assert!(matches!(again, Err(StoreError::StepConflict { .. })), "a step is approved once: {again:?}");
    let head = store.head().unwrap();
    assert_eq!(head.count, 2, "a refused transition writes no evidence");

    let dup = w.record(vec![event(3)], vec![new_step("p1", "s1", StepState::Waiting)]);
    assert!(matches!(dup, Err(StoreError::StepExists { .. })));
    assert_eq!(store.head().unwrap().count, 2, "a refused record writes none of its events");
    assert!(matches!(w.transition(approve("p9", "s1", "a", 4)), Err(StoreError::StepNotFound { .. })));
    assert!(store.verify().unwrap().ok);
}

#[test]
fn a_money_history_reads_only_the_steps_of_its_case_and_orders_and_those_of_unknown_order() {
    use countersign_store::{StepFilter, StepState, Touching};
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("s.sqlite");
    let store = Store::open(&path).unwrap();
    let step = |plan: &str, case: &str, action: &str, order: Option<&str>| countersign_store::NewStep {
        case_id: case.into(),
        action: action.into(),
        order_id: order.map(str::to_string),
        order_param: order.map(|_| "order_id".to_string()),
        ..new_step(plan, "s1", StepState::Approved)
    };
    store
        .writer()
        .record(
            vec![event(1)],
            vec![
                step("a", "case-a", "refund_partial", Some("#O1")),
                step("b", "case-b", "refund_partial", Some("#O2")),
                step("c", "case-c", "create_goodwill_coupon", None),
                step("d", "case-d", "refund_partial", Some("#O3")),
                step("e", "case-e", "get_order_details", Some("#O2")),
                // Its order was read from another parameter than this policy names for
                // the action (none, then): it says nothing about this policy's order.
                step("f", "case-f", "refund_partial", None),
            ],
        )
        .unwrap();
    drop(store);
    // A step queued before the store kept its order: its order is unknown here.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("UPDATE steps SET order_id = NULL WHERE plan_id = 'd'", []).unwrap();
    drop(conn);
    let store = Store::open(&path).unwrap();
    let order_params =
        || vec![("refund_partial".into(), "order_id".into()), ("create_goodwill_coupon".into(), String::new())];
    let filter = StepFilter {
        actions: vec!["refund_partial".into(), "create_goodwill_coupon".into()],
        touching: Some(Touching { case_id: "case-a".into(), orders: vec!["#O2".into()], order_params: order_params() }),
        ..StepFilter::default()
    };
    let plans: Vec<String> = store.steps(&filter).unwrap().into_iter().map(|s| s.plan_id).collect();
    assert_eq!(
        plans,
        ["a", "b", "d", "f"],
        "its case, its order, the one of unknown order and the one whose order came from another parameter; not a \
         coupon elsewhere nor a read"
    );
    let none = StepFilter {
        touching: Some(Touching { case_id: "case-z".into(), orders: Vec::new(), order_params: order_params() }),
        ..filter
    };
    let plans: Vec<String> = store.steps(&none).unwrap().into_iter().map(|s| s.plan_id).collect();
    assert_eq!(plans, ["d", "f"]);
}

#[test]
fn concurrent_approvals_of_one_step_have_one_winner() {
    use countersign_store::StepState;
    let dir = TempDir::new().unwrap();
    let store = Store::open(dir.path().join("s.sqlite")).unwrap();
    let w = store.writer();
    w.record(vec![event(1)], vec![new_step("p1", "s1", StepState::Waiting)]).unwrap();
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let w = w.clone();
            std::thread::spawn(move || w.transition(approve("p1", "s1", &format!("agent-{i}"), 2)).is_ok())
        })
        .collect();
    let wins = handles.into_iter().map(|h| h.join().unwrap()).filter(|ok| *ok).count();
    assert_eq!(wins, 1, "exactly one of eight concurrent approvals takes effect");
    assert_eq!(store.head().unwrap().count, 2);
}

fn guard_case() -> countersign_core::model::Case {
    serde_json::from_value(json!({
        "id": "case-1", "tenant": "acme", "store": "acme-us", "platform": "demo_seller_center",
        "channel": "chat", "messages": [],
    }))
    .unwrap()
}

/// `approved → running` for step `step`, refused if a pause covers it.
fn start(plan: &str, step: &str, i: u64) -> countersign_store::Transition {
    use countersign_store::{PauseGuard, StepState, StepUpdate, Transition};
    Transition {
        plan_id: plan.into(),
        step_id: step.into(),
        from: vec![StepState::Approved],
        to: StepState::Running,
        update: StepUpdate::default(),
        event: NewEvent {
            case_id: Some("case-1".into()),
            kind: "step_started".into(),
            actor: "agent-1".into(),
            at: at(i),
            payload: json!({"plan_id": plan, "step_id": step}),
        },
        unless_paused: Some(PauseGuard {
            case: guard_case(),
            workflows: vec!["cancel".into()],
            action: "cancel_pending_order".into(),
        }),
    }
}

#[test]
fn a_guarded_start_is_refused_by_a_covering_pause_in_the_same_transaction() {
    use countersign_store::StepState;
    let dir = TempDir::new().unwrap();
    let store = Store::open(dir.path().join("s.sqlite")).unwrap();
    let w = store.writer();
    let steps = (1..=3).map(|i| new_step("p1", &format!("s{i}"), StepState::Approved)).collect();
    w.record(vec![event(1)], steps).unwrap();

    // A pause elsewhere does not stop it.
    w.set_pause(pause("pause-other", PauseScope::Store, "acme-eu", 2)).unwrap();
    w.transition(start("p1", "s1", 3)).unwrap();
    assert_eq!(store.step("p1", "s1").unwrap().unwrap().state, StepState::Running);

    // A covering pause refuses the start and writes nothing.
    w.set_pause(pause("pause-store", PauseScope::Store, "acme-us", 4)).unwrap();
    let head = store.head().unwrap();
    match w.transition(start("p1", "s2", 5)) {
        Err(StoreError::StepConflict { state, wanted, .. }) => {
            assert!(state.starts_with("paused by pause-store"), "{state}");
            assert_eq!(wanted, "running");
        }
        other => panic!("a covering pause must refuse the start, got {other:?}"),
    }
    assert_eq!(store.head().unwrap(), head, "a refused start leaves no event");
    assert_eq!(store.step("p1", "s2").unwrap().unwrap().state, StepState::Approved, "it keeps its approval");

    // An unguarded transition (a review, a reconciliation) is not a start: pauses do not apply.
    let mut unguarded = start("p1", "s2", 6);
    unguarded.unless_paused = None;
    unguarded.to = StepState::Expired;
    w.transition(unguarded).unwrap();

    // Once cleared, the start goes through.
    w.clear_pause("pause-store", "lead-1", "resolved", at(7)).unwrap();
    w.transition(start("p1", "s3", 8)).unwrap();
    assert_eq!(store.step("p1", "s3").unwrap().unwrap().state, StepState::Running);
}

/// Starts racing a pause: whatever the interleaving, no start is recorded after the pause.
#[test]
fn no_start_is_recorded_after_a_covering_pause() {
    use countersign_store::StepState;
    let dir = TempDir::new().unwrap();
    let store = Store::open(dir.path().join("s.sqlite")).unwrap();
    let w = store.writer();
    let n = 64;
    let steps = (0..n).map(|i| new_step("p1", &format!("s{i}"), StepState::Approved)).collect();
    w.record(vec![event(1)], steps).unwrap();
    let starters: Vec<_> = (0..4)
        .map(|t| {
            let w = w.clone();
            std::thread::spawn(move || {
                (0..n)
                    .filter(|i| i % 4 == t)
                    .filter(|i| w.transition(start("p1", &format!("s{i}"), 10)).is_ok())
                    .count()
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(2));
    let paused = w.set_pause(pause("pause-race", PauseScope::Workflow, "cancel", 9)).unwrap();
    let started: usize = starters.into_iter().map(|h| h.join().unwrap()).sum();
    let events =
        store.list_events(&EventFilter { kind: Some("step_started".into()), ..EventFilter::default() }).unwrap();
    assert_eq!(events.len(), started);
    assert!(
        events.iter().all(|e| e.seq < paused.seq),
        "every recorded start precedes the pause ({} started before it)",
        started
    );
    let still = store
        .steps(&countersign_store::StepFilter { states: vec![StepState::Approved], ..Default::default() })
        .unwrap()
        .len();
    assert_eq!(started + still, n as usize, "a step either started before the pause or is still approved");
}

// ---------------------------------------------------------------------------------------
// Knowledge index
// ---------------------------------------------------------------------------------------

mod knowledge {
    use countersign_store::{KbArticle, KbChanges, KbFile, KbPassage, Store, StoreError};
    use rusqlite::Connection;
    use tempfile::TempDir;

    fn article(id: &str, hash: &str, sections: &[(&str, &str)]) -> KbArticle {
        KbArticle {
            id: id.into(),
            path: format!("{id}.md"),
            content_hash: hash.into(),
            title: format!("Title of {id}"),
            version: 1,
            tags: vec!["demo".into()],
            owner: "cx-policy-team".into(),
            passages: sections
                .iter()
                .map(|(h, t)| KbPassage {
                    anchor: h.to_lowercase().replace(' ', "-"),
                    heading: (*h).into(),
                    text: (*t).into(),
                })
                .collect(),
        }
    }

    fn corpus() -> Vec<KbArticle> {
        vec![
            article(
                "gift-cards",
                "h1",
                &[
                    ("Balance", "The gift card balance shows in the customer's account and updates right away."),
                    ("Expiry", "Gift cards never expire."),
                ],
            ),
            article(
                "refund-timing",
                "h2",
                &[
                    ("Credit cards", "Refunds to credit cards and PayPal usually appear within 5 to 7 business days."),
                    ("Gift cards", "Refunds to a gift card are added to the balance immediately."),
                ],
            ),
            article(
                "shipping-times",
                "h3",
                &[("Processing", "Orders are processed within two business days and shipped by ground carrier.")],
            ),
        ]
    }

    fn files(articles: &[KbArticle]) -> Vec<KbFile> {
        articles.iter().map(|a| KbFile { path: a.path.clone(), content_hash: a.content_hash.clone() }).collect()
    }

    /// Plan, then apply what the plan asks for (the engine's loop, with the parsing done above).
    fn sync(store: &Store, on_disk: &[KbArticle]) -> (countersign_store::KbPlan, countersign_store::KbApplied) {
        let plan = store.kb_plan(&files(on_disk)).unwrap();
        let upsert = on_disk.iter().filter(|a| plan.parse.contains(&a.path)).cloned().collect();
        let applied = store.kb_apply(KbChanges { upsert, remove: plan.remove.clone(), rebuild: false }).unwrap();
        (plan, applied)
    }

    /// FTS5's own consistency check, including the external content (`rank = 1`), and the
    /// passage count search relies on.
    fn fts_consistent(store: &Store) {
        let conn = Connection::open(store.path()).unwrap();
        conn.execute("INSERT INTO kb_fts (kb_fts, rank) VALUES ('integrity-check', 1)", [])
            .expect("the full-text index must agree with the passages");
        let (kept, counted): (i64, i64) = conn
            .query_row("SELECT (SELECT passages FROM kb_stats), (SELECT count(*) FROM kb_passages)", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(kept, counted, "the passage count kept by the triggers is exact");
    }

    fn open() -> (TempDir, Store) {
        let dir = TempDir::new().unwrap();
        let store = Store::open(dir.path().join("kb.db")).unwrap();
        (dir, store)
    }

    #[test]
    fn indexed_articles_are_searchable_with_ranking_snippets_and_full_text() {
        let (_dir, store) = open();
        let (_, applied) = sync(&store, &corpus());
        assert_eq!((applied.added, applied.updated, applied.removed), (3, 0, 0));
        fts_consistent(&store);

        let hits = store.kb_search("gift card balance", 10).unwrap();
        assert_eq!(
            (hits[0].article_id.as_str(), hits[0].anchor.as_str()),
            ("gift-cards", "balance"),
            "the passage matching every word, in its heading and title, ranks first: {hits:#?}"
        );
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score), "best first");
        assert!(hits[0].snippet.contains("«balance»"), "matched words are marked: {}", hits[0].snippet);
        assert!(hits[0].text.starts_with("The gift card balance"), "the whole passage comes back");
        assert_eq!((hits[0].version, hits[0].heading.as_str()), (1, "Balance"));

        let paypal = store.kb_search("how long for a paypal refund", 3).unwrap();
        assert_eq!(paypal[0].anchor, "credit-cards", "{paypal:#?}");
        let stemmed = store.kb_search("refunded", 3).unwrap();
        assert_eq!(stemmed[0].article_id, "refund-timing", "stemming: refunded finds refunds");
        let prefix = store.kb_search("proc*", 3).unwrap();
        assert_eq!(prefix[0].article_id, "shipping-times", "a trailing * matches a prefix");
        assert!(store.kb_search("proc", 3).unwrap().is_empty(), "without * a word is a word");
        assert_eq!(store.kb_search("gift", 1).unwrap().len(), 1, "limit");
    }

    #[test]
    fn hostile_or_empty_queries_never_reach_fts_as_syntax() {
        let (_dir, store) = open();
        sync(&store, &corpus());
        let queries = [
            "",
            "   ",
            "\"",
            "\"unbalanced",
            "gift AND",
            "OR OR OR",
            "NEAR(gift card, 2)",
            "title:gift",
            "body: refunds",
            "-gift",
            "^gift",
            "gift*card",
            "(gift",
            "gift)",
            "{title tags}: gift",
            "*",
            "'; DROP TABLE kb_articles; --",
            "\u{0}gift",
            "😀 gift 😀",
            "ギフト カード",
            "ＧＩＦＴ",
        ];
        for q in queries {
            let hits = store.kb_search(q, 5);
            assert!(hits.is_ok(), "query {q:?} must not be an FTS error: {hits:?}");
        }
        assert!(store.kb_search("", 5).unwrap().is_empty());
        assert_eq!(
            store.kb_search("title:gift", 5).unwrap()[0].article_id,
            "gift-cards",
            "a column filter is just words"
        );
        assert_eq!(store.kb_search("\"unbalanced gift", 5).unwrap()[0].article_id, "gift-cards");
        assert_eq!(store.kb_indexed().unwrap().len(), 3, "nothing was dropped");
    }

    #[test]
    fn reindexing_is_incremental_by_content_hash() {
        let (_dir, store) = open();
        let mut disk = corpus();
        sync(&store, &disk);

        // Nothing changed: nothing to parse, nothing written.
        let (plan, applied) = sync(&store, &disk);
        assert_eq!((plan.parse.len(), plan.remove.len(), plan.unchanged), (0, 0, 3));
        assert_eq!(applied, countersign_store::KbApplied::default(), "an unchanged run does no work");

        // One file's content changes: exactly that one is parsed and replaced.
        disk[2] = article("shipping-times", "h3-v2", &[("Processing", "Orders leave the warehouse within one day.")]);
        disk[2].version = 2;
        let (plan, applied) = sync(&store, &disk);
        assert_eq!(plan.parse, vec!["shipping-times.md".to_string()]);
        assert_eq!((applied.added, applied.updated, applied.removed, plan.unchanged), (0, 1, 0, 2));
        assert!(store.kb_search("ground carrier", 5).unwrap().is_empty(), "the old text is gone from the index");
        assert_eq!(store.kb_search("warehouse", 5).unwrap()[0].version, 2);
        assert_eq!(store.kb_versions().unwrap()["shipping-times"], "2");

        // One file is deleted: it is removed, with its passages.
        disk.remove(0);
        let (plan, applied) = sync(&store, &disk);
        assert_eq!(plan.remove, vec!["gift-cards.md".to_string()]);
        assert_eq!((applied.added, applied.updated, applied.removed, plan.unchanged), (0, 0, 1, 2));
        assert!(store.kb_article("gift-cards").unwrap().is_none());
        assert!(store.kb_search("expire", 5).unwrap().is_empty());
        fts_consistent(&store);

        // Replaying an upsert that is already indexed is harmless.
        let again = store.kb_apply(KbChanges { upsert: disk.clone(), ..KbChanges::default() }).unwrap();
        assert_eq!((again.added, again.updated, again.unchanged), (0, 0, 2));

        // A rebuild re-indexes everything and leaves a consistent index.
        let rebuilt = store.kb_apply(KbChanges { upsert: disk.clone(), remove: vec![], rebuild: true }).unwrap();
        assert_eq!(rebuilt.updated, 2);
        fts_consistent(&store);
        assert_eq!(store.kb_search("warehouse", 5).unwrap().len(), 1);
    }

    #[test]
    fn an_article_comes_back_whole_and_in_order() {
        let (_dir, store) = open();
        sync(&store, &corpus());
        let a = store.kb_article("refund-timing").unwrap().unwrap();
        assert_eq!(a, corpus()[1], "what was indexed is what comes back");
        assert_eq!(store.kb_indexed().unwrap().len(), 3);
    }

    #[test]
    fn a_second_file_claiming_an_id_is_refused_and_nothing_is_written() {
        let (_dir, store) = open();
        sync(&store, &corpus());
        let mut clash = article("gift-cards", "h9", &[("Other", "Another gift card text.")]);
        clash.path = "gift-cards-copy.md".into();
        let fresh = article("exchanges", "h10", &[("Swap", "Swap a variant.")]);
        let err = store.kb_apply(KbChanges { upsert: vec![fresh, clash], ..KbChanges::default() }).unwrap_err();
        assert!(
            matches!(&err, StoreError::KnowledgeIdTaken { id, other_path, .. } if id == "gift-cards" && other_path == "gift-cards.md"),
            "{err:?}"
        );
        assert!(store.kb_article("exchanges").unwrap().is_none(), "one transaction: all or nothing");
        fts_consistent(&store);
    }

    /// A knowledge base big enough for "order" to be a common word (in at least 256 passages).
    #[test]
    fn common_words_act_as_stop_words_and_still_fill_the_limit() {
        let (_dir, store) = open();
        let n = countersign_store::COMMON_WORD_MIN_PASSAGES + 44;
        let articles: Vec<KbArticle> = (0..n)
            .map(|i| {
                let heading = if i % 100 == 7 { "Order changes" } else { "Notes" };
                let extra = if i % 60 == 3 { " The jacket came in the wrong size." } else { "" };
                let text = format!("The order number {i} was shipped on time.{extra}");
                article(&format!("a-{i:03}"), &format!("h{i}"), &[(heading, text.as_str())])
            })
            .collect();
        sync(&store, &articles);

        let hits = store.kb_search("jacket order", 20).unwrap();
        let jackets = hits.iter().take_while(|h| h.text.contains("jacket")).count();
        assert_eq!(jackets, 5, "passages with the rare word come first: {hits:#?}");
        assert_eq!(hits.len(), 20, "then passages with only the common word fill the limit");

        let hits = store.kb_search("order", 5).unwrap();
        let headed: Vec<&str> = hits.iter().take(3).map(|h| h.heading.as_str()).collect();
        assert_eq!(
            headed,
            vec!["Order changes"; 3],
            "for common words alone, headings that hold them first: {hits:#?}"
        );
        assert_eq!(hits.len(), 5);
        assert_eq!(store.kb_search("order shipped", 10).unwrap().len(), 10, "both common: all-words matches");
    }

    #[test]
    fn rows_are_replaced_never_updated() {
        let (_dir, store) = open();
        sync(&store, &corpus());
        let conn = Connection::open(store.path()).unwrap();
        let err = conn.execute("UPDATE kb_passages SET body = 'edited' WHERE anchor = 'balance'", []).unwrap_err();
        assert!(err.to_string().contains("replaced, not updated"), "{err}");
        assert!(conn.execute("UPDATE kb_articles SET title = 'x'", []).is_err());
    }
}

#[test]
fn blobs_are_stored_once_by_their_sha256_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("s.db")).unwrap();
    let png = b"\x89PNG\r\n\x1a\n not really a picture".to_vec();
    let hash = store.writer().put_blob("image/png", &png, at(1)).unwrap();
    assert_eq!(hash, countersign_store::blob_hash(&png), "named by the SHA-256 of its bytes");
    assert_eq!(hash.len(), 64);
    let again = store.writer().put_blob("image/png", &png, at(2)).unwrap();
    assert_eq!(again, hash, "the same bytes are the same blob");
    let blob = store.blob(&hash).unwrap().expect("stored");
    assert_eq!((blob.media_type.as_str(), blob.data), ("image/png", png));
    assert!(store.blob(&"0".repeat(64)).unwrap().is_none());
    let err = store.writer().put_blob("png", b"x", at(3)).unwrap_err();
    assert!(matches!(err, StoreError::InvalidBlob { .. }), "{err}");
    assert!(store.verify().unwrap().ok, "blobs are outside the chain and do not disturb it");
}

#[test]
fn the_write_count_moves_with_each_write_and_a_pause_is_found_by_its_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("e.db")).unwrap();
    let w = store.writer();
    let before = w.writes();
    // Reads are not writes.
    store.head().unwrap();
    assert_eq!(w.writes(), before);
    w.append(event(1)).unwrap();
    assert_eq!(w.writes(), before + 1);
    // Every handle of the store counts the same writes.
    assert_eq!(store.writer().writes(), before + 1);
    w.set_pause(pause("p-1", PauseScope::Action, "refund", 2)).unwrap();
    assert_eq!(w.writes(), before + 2);
    // A refused write is answered too (and counted: the reader only reads once more).
    assert!(w.set_pause(pause("p-1", PauseScope::Action, "refund", 3)).is_err());
    assert_eq!(w.writes(), before + 3);

    assert_eq!(store.pause("p-1").unwrap().map(|r| r.pause.value), Some("refund".to_string()));
    assert!(store.pause("p-2").unwrap().is_none());
}
