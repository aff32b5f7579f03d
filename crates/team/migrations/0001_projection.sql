-- The team's copy of every desk's evidence, verified as it arrived (crates/team/src/project.rs).
-- Append-only: never edit a shipped migration; add a new one.

-- Where the projection is in the evidence stream: the last stream sequence a committed
-- batch held (the consumer is made afresh from the next one at every start).
CREATE TABLE projection (
    consumer    text PRIMARY KEY,
    stream_seq  bigint NOT NULL
);

-- Each desk the team has heard from, and how far its chain is projected.
CREATE TABLE devices (
    device       text PRIMARY KEY,
    -- The public key (64 hex digits) that signs this desk's checkpoints: pinned by the
    -- first checkpoint that verified.
    device_key   text,
    -- The last projected event: its seq (0: none yet) and hash (genesis before the first).
    last_seq     bigint NOT NULL CHECK (last_seq >= 0),
    last_hash    text NOT NULL CHECK (length(last_hash) = 64),
    -- The first bad event, once one arrived: nothing of this desk is projected past it.
    held_at_seq  bigint,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Every projected event: its chain link and the exact canonical body its hash covers
-- (so the chain can be verified again from here), and that body's payload as jsonb for
-- queries. Money stays inside the payload as integers (minor units), never floats.
-- Keyed by desk and seq: two desks may hold the very same event (a data folder copied
-- and enrolled under another name), and each keeps its own.
CREATE TABLE events (
    hash        text NOT NULL CHECK (length(hash) = 64),
    device      text NOT NULL REFERENCES devices (device),
    seq         bigint NOT NULL CHECK (seq > 0),
    prev_hash   text NOT NULL CHECK (length(prev_hash) = 64),
    at          timestamptz NOT NULL,
    case_id     text,
    kind        text NOT NULL,
    actor       text NOT NULL,
    body        text NOT NULL,
    payload     jsonb NOT NULL,
    -- Where it sits in the team's evidence stream.
    stream_seq  bigint NOT NULL,
    PRIMARY KEY (device, seq),
    UNIQUE (device, hash)
);
CREATE INDEX events_case ON events (case_id) WHERE case_id IS NOT NULL;
CREATE INDEX events_kind_at ON events (kind, at);
CREATE INDEX events_at ON events (at);

-- Every checkpoint that verified: the desk's own signature over (count, head).
CREATE TABLE checkpoints (
    device      text NOT NULL REFERENCES devices (device),
    -- The checkpoint event's own seq.
    seq         bigint NOT NULL,
    count       bigint NOT NULL,
    head        text NOT NULL CHECK (length(head) = 64),
    device_key  text NOT NULL,
    signature   text NOT NULL,
    PRIMARY KEY (device, seq)
);

-- What a lead must look at: the first bad event of a desk, and why.
CREATE TABLE alerts (
    id          bigserial PRIMARY KEY,
    device      text NOT NULL,
    -- The first bad event (for a gap: the first missing one).
    seq         bigint NOT NULL,
    -- Its hash as it arrived, when it had one.
    hash        text,
    kind        text NOT NULL CHECK (kind IN ('gap', 'fork', 'bad_hash', 'bad_signature')),
    detail      text NOT NULL,
    stream_seq  bigint NOT NULL,
    raised_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (device, seq, kind)
);
