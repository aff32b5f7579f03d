-- 0001: the evidence log. APPEND-ONLY FILE: never edit a shipped migration, add a new one.
--
-- One row per event. `body` is the canonical JSON (RFC 8785) of
-- {"actor","at","case_id","kind","payload","seq"} exactly as it was hashed; `hash` is
-- SHA-256(0x00 || previous hash || body bytes), 32 bytes. `case_id` and `kind` are
-- generated from the body, so the indexes can never disagree with what was hashed.

PRAGMA application_id = 1129531214; -- 'CSGN': marks the file as a Countersign store

CREATE TABLE evidence (
    seq     INTEGER PRIMARY KEY CHECK (seq > 0),
    body    TEXT    NOT NULL,
    hash    BLOB    NOT NULL CHECK (length(hash) = 32),
    case_id TEXT    GENERATED ALWAYS AS (json_extract(body, '$.case_id')) VIRTUAL,
    kind    TEXT    GENERATED ALWAYS AS (json_extract(body, '$.kind')) VIRTUAL
) STRICT;

CREATE INDEX evidence_by_case ON evidence (case_id);
CREATE INDEX evidence_by_kind ON evidence (kind);

-- The chain head: how many events the log holds and the hash of the last one. Updated in
-- the same transaction as every append, so deleting events from the tail is detected.
-- The first event chains from the genesis value SHA-256("countersign/evidence/v1/genesis").
CREATE TABLE chain_head (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    count INTEGER NOT NULL CHECK (count >= 0),
    head  BLOB    NOT NULL CHECK (length(head) = 32)
) STRICT;

INSERT INTO chain_head (id, count, head)
VALUES (1, 0, X'0477f3b2c19228728287b426817d2c0ad98e1d9e781409706f389836bfdf753d');

-- Guards against bugs, not against an attacker (who can drop them): events are never
-- changed or deleted, the head is never deleted. There is deliberately no trigger on
-- INSERT into evidence or UPDATE of chain_head: a trigger that can abort forces SQLite to
-- keep a statement journal for every append, which made appends 10x slower; the single
-- writer checks that each seq extends the chain instead.
CREATE TRIGGER evidence_no_update BEFORE UPDATE ON evidence
BEGIN
    SELECT RAISE(ABORT, 'evidence is append-only: events cannot be changed');
END;

CREATE TRIGGER evidence_no_delete BEFORE DELETE ON evidence
BEGIN
    SELECT RAISE(ABORT, 'evidence is append-only: events cannot be deleted');
END;

CREATE TRIGGER chain_head_no_delete BEFORE DELETE ON chain_head
BEGIN
    SELECT RAISE(ABORT, 'the chain head cannot be deleted');
END;
