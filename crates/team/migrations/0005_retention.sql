-- Retention (crates/team/src/retention.rs): a tenant's cases past the retention the signed
-- pack sets (`[team.retention]`) leave the team's store. What stays of each deleted event
-- is its place in its desk's chain (seq, hash, the hash before it), so the chain and the
-- witnessed checkpoints still verify what remains; and each deletion is recorded.

CREATE TABLE deletions (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    tenant      text NOT NULL,
    -- The cases (device, case) whose events were deleted, and how many events.
    device      text NOT NULL,
    case_id     text NOT NULL,
    events      bigint NOT NULL,
    -- Why: the retention in days and the pack that set it.
    days        integer NOT NULL,
    pack        text NOT NULL
);

CREATE TABLE tombstones (
    device      text NOT NULL REFERENCES devices (device),
    seq         bigint NOT NULL CHECK (seq > 0),
    hash        text NOT NULL CHECK (length(hash) = 64),
    prev_hash   text NOT NULL CHECK (length(prev_hash) = 64),
    deletion    bigint NOT NULL REFERENCES deletions (id),
    PRIMARY KEY (device, seq)
);
