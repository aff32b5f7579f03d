-- 0002: pause switches. APPEND-ONLY FILE: never edit a shipped migration, add a new one.
--
-- One row per pause ever set. A pause is active while `cleared_seq` is NULL. Every set
-- and every clear is committed together with its `pause_changed` evidence event, whose
-- seq is recorded here.

CREATE TABLE pauses (
    id             TEXT    PRIMARY KEY,
    scope          TEXT    NOT NULL
                   CHECK (scope IN ('tenant', 'channel', 'store', 'workflow', 'action')),
    value          TEXT    NOT NULL,
    reason         TEXT    NOT NULL,
    set_by         TEXT    NOT NULL,
    set_at         TEXT    NOT NULL,
    set_seq        INTEGER NOT NULL REFERENCES evidence (seq),
    cleared_by     TEXT,
    cleared_at     TEXT,
    cleared_reason TEXT,
    cleared_seq    INTEGER REFERENCES evidence (seq),
    CHECK ((cleared_seq IS NULL) = (cleared_by IS NULL)
       AND (cleared_seq IS NULL) = (cleared_at IS NULL)
       AND (cleared_seq IS NULL) = (cleared_reason IS NULL))
) STRICT;

CREATE INDEX pauses_active ON pauses (scope, value) WHERE cleared_seq IS NULL;

CREATE TRIGGER pauses_no_delete BEFORE DELETE ON pauses
BEGIN
    SELECT RAISE(ABORT, 'pause history cannot be deleted');
END;
