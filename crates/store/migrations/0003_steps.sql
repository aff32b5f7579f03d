-- Executable steps and where they stand: the review queue and the executor's state.
-- Every change of state commits together with the evidence event that records it.
CREATE TABLE steps (
    plan_id         TEXT NOT NULL,
    step_id         TEXT NOT NULL,
    case_id         TEXT NOT NULL,
    action          TEXT NOT NULL,
    -- The step as decided (action, params with provenance), canonical JSON.
    step            TEXT NOT NULL,
    step_digest     TEXT NOT NULL,
    policy_hash     TEXT NOT NULL,
    decision        TEXT NOT NULL CHECK (decision IN ('auto', 'confirm', 'supervisor')),
    approver_roles  TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN
                      ('waiting', 'approved', 'rejected', 'expired', 'invalidated',
                       'running', 'succeeded', 'failed', 'unknown', 'not_applied')),
    decided_at      TEXT NOT NULL,
    reviewed_by     TEXT,
    reviewed_at     TEXT,
    review_reason   TEXT,
    approval_expires_at TEXT,
    idempotency_key TEXT,
    last_seq        INTEGER NOT NULL REFERENCES evidence(seq),
    PRIMARY KEY (plan_id, step_id)
) STRICT;

CREATE INDEX steps_by_state ON steps (state);
CREATE INDEX steps_by_case ON steps (case_id);

CREATE TRIGGER steps_no_delete BEFORE DELETE ON steps
BEGIN
    SELECT RAISE(ABORT, 'steps are never deleted');
END;
