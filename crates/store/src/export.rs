//! Self-verifying evidence bundles.
//!
//! A bundle is a directory:
//!
//! - `events.jsonl`: one line per event, `{"hash":"<64 hex>","event":<body>}`, where
//!   `<body>` is the stored canonical JSON byte for byte. A verifier takes the bytes between
//!   the fixed prefix and the final `}`: no JSON re-serialisation, so no ambiguity.
//! - `manifest.json`: format, hash rule, genesis, count and head hash (as the log's chain
//!   head said at export), and `exported_at` (given by the caller: the store has no clock).
//! - `verify.py`: a python3 (stdlib only) script that re-checks it all and prints `OK ...`
//!   or the first broken seq, so a bundle can be checked without Countersign.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use crate::chain::{ChainCheck, GENESIS_LABEL, Hash, body_seq};
use crate::error::StoreError;
use crate::evidence::Appended;
use crate::verify::{Broken, Problem, VerifyReport, finish, scan};

/// The `format` field of a bundle's manifest.
pub const BUNDLE_FORMAT: &str = "countersign-evidence-bundle/1";

/// The evidence kind recorded when a bundle is exported.
pub const EXPORT_MADE: &str = "export_made";

const EVENTS_FILE: &str = "events.jsonl";
const MANIFEST_FILE: &str = "manifest.json";
const SCRIPT_FILE: &str = "verify.py";
const VERIFY_PY: &str = include_str!("verify.py");
const LINE_PREFIX: &[u8] = b"{\"hash\":\"";
const LINE_MIDDLE: &[u8] = b"\",\"event\":";

/// `manifest.json` of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleManifest {
    pub format: String,
    /// How each hash is computed, for a human reading the bundle.
    pub hash_rule: String,
    pub genesis: Hash,
    /// Events in the log's chain head at export.
    pub count: u64,
    /// Hash of the last event, as the log's chain head said at export.
    pub head: Hash,
    pub exported_at: Timestamp,
    pub events: String,
}

/// What an export wrote and recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportSummary {
    pub dir: PathBuf,
    pub manifest: BundleManifest,
    /// The log as verified while it was exported (a broken log is still exported, as is).
    pub report: VerifyReport,
    /// The `export_made` event recorded in the log after the bundle was written.
    pub event: Appended,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.to_path_buf(), source }
}

/// Write the bundle from one read snapshot of the log. Returns the manifest and the report.
pub(crate) fn write_bundle(
    conn: &Connection,
    db_path: &Path,
    out_dir: &Path,
    exported_at: Timestamp,
) -> Result<(BundleManifest, VerifyReport), StoreError> {
    fs::create_dir_all(out_dir).map_err(io_err(out_dir))?;
    for name in [EVENTS_FILE, MANIFEST_FILE] {
        if out_dir.join(name).exists() {
            return Err(StoreError::ExportTargetNotEmpty { path: out_dir.to_path_buf() });
        }
    }
    let events_path = out_dir.join(EVENTS_FILE);
    let file = File::create_new(&events_path).map_err(io_err(&events_path))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let mut hex_buf = [0u8; 64];
    let (report, head_count) = scan(
        conn,
        db_path,
        |body, hash| {
            // Hash and body are written as stored, even when they are damaged.
            let hex: &str = match hex::encode_to_slice(hash, &mut hex_buf) {
                Ok(()) => std::str::from_utf8(&hex_buf).unwrap_or_default(),
                Err(_) => "",
            };
            let line = [LINE_PREFIX, hex.as_bytes(), LINE_MIDDLE, body, b"}\n"];
            line.iter().try_for_each(|part| w.write_all(part)).map_err(io_err(&events_path))
        },
        false,
    )?;
    let file = w.into_inner().map_err(|e| io_err(&events_path)(e.into_error()))?;
    file.sync_all().map_err(io_err(&events_path))?;

    let script = out_dir.join(SCRIPT_FILE);
    write_synced(&script, VERIFY_PY.as_bytes())?;

    let manifest = BundleManifest {
        format: BUNDLE_FORMAT.into(),
        hash_rule: format!("h_n = SHA-256(0x00 || h_(n-1) || body_n), h_0 = SHA-256(\"{GENESIS_LABEL}\")"),
        genesis: Hash::genesis(),
        count: head_count,
        head: report.head,
        exported_at,
        events: EVENTS_FILE.into(),
    };
    let mut json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| StoreError::BadBundle { path: out_dir.to_path_buf(), reason: e.to_string() })?;
    json.push(b'\n');
    // The manifest goes last: a bundle without one is visibly incomplete.
    write_synced(&out_dir.join(MANIFEST_FILE), &json)?;
    if let Ok(dir) = File::open(out_dir) {
        // Persist the directory entries too; not every platform can open a directory.
        let _ = dir.sync_all();
    }
    Ok((manifest, report))
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut f = File::create_new(path).map_err(io_err(path))?;
    f.write_all(bytes).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

/// The body inside one bundle line, or `None` if the line is not exactly
/// `{"hash":"<64 lowercase hex>","event":<body>}`. Also returns the hash.
fn split_line(line: &[u8]) -> Option<(Hash, &[u8])> {
    let rest = line.strip_prefix(LINE_PREFIX)?;
    let (hex, rest) = rest.split_at_checked(64)?;
    if !hex.iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b)) {
        return None;
    }
    let body = rest.strip_prefix(LINE_MIDDLE)?.strip_suffix(b"}")?;
    Hash::from_hex(std::str::from_utf8(hex).ok()?).map(|h| (h, body))
}

/// Verify an exported bundle: every line chains from genesis, in order, and the chain ends
/// at the manifest's count and head. A damaged event is reported in the [`VerifyReport`];
/// a missing or malformed manifest is an error.
pub fn verify_bundle(dir: &Path) -> Result<VerifyReport, StoreError> {
    let bad = |reason: String| StoreError::BadBundle { path: dir.to_path_buf(), reason };
    let manifest_path = dir.join(MANIFEST_FILE);
    let raw = fs::read(&manifest_path).map_err(io_err(&manifest_path))?;
    let manifest: BundleManifest = serde_json::from_slice(&raw).map_err(|e| bad(format!("{MANIFEST_FILE}: {e}")))?;
    if manifest.format != BUNDLE_FORMAT {
        return Err(bad(format!("unknown format {:?}", manifest.format)));
    }
    if manifest.genesis != Hash::genesis() {
        return Err(bad("the genesis value is not Countersign's".into()));
    }
    let events_path = dir.join(EVENTS_FILE);
    let lines: Vec<Vec<u8>> =
        BufReader::with_capacity(1 << 20, File::open(&events_path).map_err(io_err(&events_path))?)
            .split(b'\n')
            .collect::<Result<_, _>>()
            .map_err(io_err(&events_path))?;

    let mut check = ChainCheck::new();
    let mut first_broken = None;
    for line in &lines {
        let result = match split_line(line) {
            None => Err(Broken {
                seq: check.next,
                problem: Problem::BadBody { reason: "the line is not {\"hash\":...,\"event\":...}".into() },
            }),
            Some((hash, body)) => check.check(body, &hash.0).map_err(|b| name_misplaced(b, &lines)),
        };
        if let Err(b) = result {
            first_broken = Some(b);
            break;
        }
    }
    let found = lines.len() as u64;
    Ok(finish(check, found, first_broken, Some((manifest.count, Some(manifest.head)))))
}

/// In a bundle, "event k+1 sits where event k should be" is either a deletion or a move.
/// It is a move if event k turns up later (or the event found is an earlier one).
fn name_misplaced(b: Broken, lines: &[Vec<u8>]) -> Broken {
    let Problem::Reordered { found_seq } = b.problem else {
        return b;
    };
    let expected = b.seq;
    let appears_later = || {
        lines
            .iter()
            .skip(usize::try_from(expected).unwrap_or(usize::MAX))
            .filter_map(|l| split_line(l).and_then(|(_, body)| body_seq(body)))
            .any(|s| s == expected)
    };
    if found_seq < expected || appears_later() {
        b
    } else {
        Broken { seq: expected, problem: Problem::Gap { next_seq: found_seq } }
    }
}
