-- 0004: the knowledge base index. APPEND-ONLY FILE: never edit a shipped migration, add a new one.
--
-- Derived data: everything here is rebuilt from the Markdown articles on disk, and can be
-- dropped and re-indexed at any time. An article is replaced as a whole (delete, then
-- insert), never updated in place, so the full-text index can never disagree with the rows.

-- One row per indexed article file. `path` is the file's name relative to the knowledge
-- directory; `content_hash` (SHA-256 of the file's bytes, hex) decides whether a file must
-- be parsed again. `tags` is a JSON array of strings.
CREATE TABLE kb_articles (
    id           TEXT    PRIMARY KEY,
    path         TEXT    NOT NULL UNIQUE,
    title        TEXT    NOT NULL,
    version      INTEGER NOT NULL CHECK (version > 0),
    tags         TEXT    NOT NULL CHECK (json_valid(tags)),
    owner        TEXT    NOT NULL,
    content_hash TEXT    NOT NULL
) STRICT;

-- One row per section (a `## ` heading and the text under it): what a citation points at.
-- `anchor` is the heading's slug, unique within its article; `ord` keeps the article order.
CREATE TABLE kb_passages (
    id         INTEGER PRIMARY KEY,
    article_id TEXT    NOT NULL REFERENCES kb_articles (id),
    ord        INTEGER NOT NULL,
    anchor     TEXT    NOT NULL,
    heading    TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    UNIQUE (article_id, anchor)
) STRICT;

-- What the full-text index sees for each passage: its own heading and text, plus the
-- article's title and tags, so a query for a topic also finds the sections under it.
CREATE VIEW kb_passage_docs AS
SELECT p.id AS id, a.title AS title, a.tags AS tags, p.heading AS heading, p.body AS body
FROM kb_passages p JOIN kb_articles a ON a.id = p.article_id;

-- External-content FTS5 over that view (the text is stored once, in kb_passages), with
-- English stemming (`refunds` finds `refund`) over Unicode word splitting and diacritics
-- folded. No prefix index: with one, a 10,000-article index took 8.7 s to build instead
-- of 4–6 s, for no measurable gain on `word*` searches. The triggers below are the only
-- writers.
CREATE VIRTUAL TABLE kb_fts USING fts5 (
    title, tags, heading, body,
    content = 'kb_passage_docs',
    content_rowid = 'id',
    tokenize = 'porter unicode61 remove_diacritics 2'
);

-- How many passages there are, kept by the triggers below (search needs it on every
-- query, and counting the passage rows costs milliseconds at 40,000 passages).
CREATE TABLE kb_stats (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    passages INTEGER NOT NULL CHECK (passages >= 0)
) STRICT;

INSERT INTO kb_stats (id, passages) VALUES (1, 0);

CREATE TRIGGER kb_passages_index AFTER INSERT ON kb_passages
BEGIN
    INSERT INTO kb_fts (rowid, title, tags, heading, body)
    SELECT id, title, tags, heading, body FROM kb_passage_docs WHERE id = new.id;
    UPDATE kb_stats SET passages = passages + 1 WHERE id = 1;
END;

-- External content: the index must be told the exact values it indexed to forget them,
-- so this runs before the row (and its article) are gone.
CREATE TRIGGER kb_passages_unindex BEFORE DELETE ON kb_passages
BEGIN
    INSERT INTO kb_fts (kb_fts, rowid, title, tags, heading, body)
    SELECT 'delete', id, title, tags, heading, body FROM kb_passage_docs WHERE id = old.id;
    UPDATE kb_stats SET passages = passages - 1 WHERE id = 1;
END;

-- Deleting an article deletes its passages first (which unindexes them while the article's
-- title and tags are still there to be named).
CREATE TRIGGER kb_articles_delete_passages BEFORE DELETE ON kb_articles
BEGIN
    DELETE FROM kb_passages WHERE article_id = old.id;
END;

-- Updates would leave the index holding stale text: replace rows instead.
CREATE TRIGGER kb_articles_no_update BEFORE UPDATE ON kb_articles
BEGIN
    SELECT RAISE(ABORT, 'knowledge articles are replaced, not updated');
END;

CREATE TRIGGER kb_passages_no_update BEFORE UPDATE ON kb_passages
BEGIN
    SELECT RAISE(ABORT, 'knowledge passages are replaced, not updated');
END;
