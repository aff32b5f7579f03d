-- Team metrics on outcomes (crates/team/src/view.rs): the promises desks' sent replies
-- made and how each went when checked on its day, and leads' verdicts on whether an
-- escalation was right. Both derived by the projection (crates/team/src/facets.rs).

CREATE TABLE promises (
    device      text NOT NULL REFERENCES devices (device),
    case_id     text NOT NULL,
    plan_id     text NOT NULL,
    promise_id  text NOT NULL,
    -- `delivery_date`, `refund`, `compensation` or `guarantee`.
    category    text NOT NULL,
    -- Who sent the reply, and who owns the outcome (the reply policy's owner).
    agent       text NOT NULL,
    owner       text NOT NULL,
    due         date NOT NULL,
    made_at     timestamptz NOT NULL,
    outcome     text CHECK (outcome IN ('kept', 'broken', 'not_checkable')),
    checked_at  timestamptz,
    PRIMARY KEY (device, case_id, plan_id, promise_id)
);
CREATE INDEX promises_made ON promises (made_at);

-- One verdict per case and recording desk (the newest it recorded), kept only when its
-- signature holds. Metrics count those for this team signed by a lead's key on the newest
-- signed pack's roster in that lead's name, the newest of them per case.
CREATE TABLE verdicts (
    -- The case's desk and id.
    desk        text NOT NULL,
    case_id     text NOT NULL,
    -- The desk that recorded it; the team and the lead (roster id) it is signed for.
    device      text NOT NULL REFERENCES devices (device),
    team        text NOT NULL,
    by          text NOT NULL,
    -- The key that signed it (lower-case hex).
    key         text NOT NULL,
    right_call  boolean NOT NULL,
    at          timestamptz NOT NULL,
    PRIMARY KEY (desk, case_id, device)
);

-- Screenshots and page snapshots that events deleted for retention named, to delete from
-- their desk's object store (outside the database's transaction, so listed here in it):
-- each goes unless an event the team still holds names it.
CREATE TABLE doomed_blobs (
    device      text NOT NULL,
    hash        text NOT NULL,
    deletion    bigint NOT NULL REFERENCES deletions (id),
    PRIMARY KEY (device, hash)
);
