-- 0006: cases received from sources. APPEND-ONLY FILE: never edit a shipped migration, add a new one.
--
-- A case that arrived from a source (a seller center's buyer messages, a helpdesk) is
-- kept as revisions: a new revision each time its conversation's content changes (a new
-- customer message). Each revision commits together with its `case_received` evidence
-- event, whose seq is recorded here. `content_hash` is the SHA-256 of `case_json`, so a
-- conversation read again unchanged makes no revision.

CREATE TABLE case_revisions (
    case_id         TEXT    NOT NULL,
    revision        INTEGER NOT NULL CHECK (revision >= 1),
    source          TEXT    NOT NULL,
    conversation_id TEXT    NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('open', 'waiting', 'resolved')),
    content_hash    TEXT    NOT NULL,
    case_json       TEXT    NOT NULL,
    received_at     TEXT    NOT NULL,
    seq             INTEGER NOT NULL REFERENCES evidence (seq),
    PRIMARY KEY (case_id, revision)
) STRICT;

CREATE INDEX case_revisions_source ON case_revisions (source, conversation_id);

-- Where each source's change listing stands (its opaque cursor), moved on only after the
-- cases of a page are recorded: a crash re-reads a page, and unchanged conversations make
-- no revision.
CREATE TABLE source_cursors (
    source     TEXT PRIMARY KEY,
    cursor     TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

CREATE TRIGGER case_revisions_no_delete BEFORE DELETE ON case_revisions
BEGIN
    SELECT RAISE(ABORT, 'case revisions cannot be deleted');
END;
