#!/usr/bin/env python3
"""Verify a Countersign evidence bundle, with nothing but Python 3's standard library.

Usage: python3 verify.py [BUNDLE_DIR]   (default: the directory holding this script)

Each line of events.jsonl is {"hash":"<64 hex>","event":<body>}, where <body> is the
event's canonical JSON exactly as hashed. The chain rule is
    h_0 = SHA-256("countersign/evidence/v1/genesis")
    h_n = SHA-256(0x00 || h_(n-1) || body_n)
and each body ends with its own seq, ...,"seq":n}. The chain must end at the count and
head hash in manifest.json.

Prints "OK <count> events, head <hash>" and exits 0, or "BROKEN at seq <n>: <problem>"
and exits 1. Exits 2 if the bundle cannot be read at all.

Signed checkpoints (events of kind "checkpoint", signed by the exporting machine's ed25519
device key) are counted but not checked here: Python's standard library has no ed25519.
`countersign log verify --bundle DIR` checks them.
"""
import hashlib
import json
import os
import re
import sys

FORMAT = "countersign-evidence-bundle/1"
GENESIS = hashlib.sha256(b"countersign/evidence/v1/genesis").digest()
LINE = re.compile(rb'\A\{"hash":"([0-9a-f]{64})","event":(.*)\}\Z', re.S)
SEQ = re.compile(rb'(?:\A\{|,)"seq":(0|[1-9][0-9]{0,15})\}\Z')


def split(line):
    m = LINE.match(line)
    return (m.group(1).decode(), m.group(2)) if m else (None, None)


def body_seq(body):
    m = SEQ.search(body) if body is not None else None
    return int(m.group(1)) if m else None


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    try:
        with open(os.path.join(d, "manifest.json"), "rb") as f:
            manifest = json.load(f)
        count, head = int(manifest["count"]), manifest["head"]
        if manifest.get("format") != FORMAT:
            raise ValueError("unknown format %r" % manifest.get("format"))
        if bytes.fromhex(manifest["genesis"]) != GENESIS:
            raise ValueError("the genesis value is not Countersign's")
        with open(os.path.join(d, "events.jsonl"), "rb") as f:
            lines = f.read().split(b"\n")
    except (OSError, ValueError, KeyError, TypeError) as e:
        print("UNUSABLE bundle %s: %s" % (d, e))
        return 2
    if lines and lines[-1] == b"":
        lines.pop()

    def broken(seq, problem):
        print("BROKEN at seq %d: %s" % (seq, problem))
        return 1

    prev = GENESIS
    for seq, line in enumerate(lines, 1):
        stored, body = split(line)
        if stored is None:
            return broken(seq, 'unreadable event (the line is not {"hash":...,"event":...})')
        found = body_seq(body)
        if found is None:
            return broken(seq, "unreadable event (the body does not end with its seq)")
        if found != seq:
            later = any(body_seq(split(rest)[1]) == seq for rest in lines[seq:])
            if found < seq or later:
                return broken(seq, "reordered (event %d is in its place)" % found)
            return broken(seq, "missing (deleted; the next event present is %d)" % found)
        h = hashlib.sha256(b"\x00" + prev + body).digest()
        if h.hex() != stored:
            return broken(seq, "hash mismatch (the event was edited)")
        prev = h
    n = len(lines)
    if count > n:
        return broken(n + 1, "truncated (the head says %d events, found %d)" % (count, n))
    if count < n:
        return broken(count + 1, "head mismatch (events beyond the head's count)")
    if prev.hex() != head:
        return broken(max(n, 1), "head mismatch (the last event is not the head)")
    print("OK %d events, head %s" % (n, head))
    checkpoints = sum(1 for line in lines if b'"kind":"checkpoint"' in line)
    if checkpoints:
        sys.stderr.write(
            "note: %d device-signed checkpoint(s) not checked (no ed25519 in Python's standard "
            "library); check them with: countersign log verify --bundle %s\n" % (checkpoints, d)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
