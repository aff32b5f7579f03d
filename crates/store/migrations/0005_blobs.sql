-- 0005: content-addressed blobs. APPEND-ONLY FILE: never edit a shipped migration, add a new one.
--
-- Large artefacts that evidence refers to by hash (screenshots, page snapshots). The key
-- is the lower-case hex SHA-256 of `data`, so a blob cannot change without its name
-- changing, and an event that names it stays verifiable: `sha256(data) = hash`.

CREATE TABLE blobs (
    hash        TEXT    PRIMARY KEY CHECK (length(hash) = 64),
    media_type  TEXT    NOT NULL,
    size        INTEGER NOT NULL CHECK (size = length(data)),
    data        BLOB    NOT NULL,
    created_at  TEXT    NOT NULL
) STRICT;
