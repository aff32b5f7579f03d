-- The lead's team view (crates/team/src/view.rs): each desk's cases and decided steps,
-- derived by the projection from the events it verified (crates/team/src/facets.rs), in
-- the same transaction; and every answer that showed a lead customer data.

-- What pack each desk decides under (its last `policy_loaded`), and who sat at it when
-- it last gathered a case's facts (its last `context_read`): its next steps' agent.
ALTER TABLE devices ADD COLUMN pack_id text, ADD COLUMN pack_version bigint, ADD COLUMN agent text,
    -- Its last plan revision an agent made by editing: [plan, [steps]] (the steps with a
    -- value the agent typed), for the `edited` of that plan's steps.
    ADD COLUMN edited_plan jsonb;

-- Each case a desk opened or received, and its tenant (what a lead's grant names).
CREATE TABLE cases (
    device      text NOT NULL REFERENCES devices (device),
    case_id     text NOT NULL,
    tenant      text NOT NULL,
    channel     text NOT NULL,
    first_at    timestamptz NOT NULL,
    -- An escalation signal handed it to a human (a `decided` event with `handoff`).
    escalated   boolean NOT NULL DEFAULT false,
    PRIMARY KEY (device, case_id)
);
CREATE INDEX cases_case ON cases (case_id);

-- Each decided step, as its desk's later events tell how it went.
CREATE TABLE steps (
    device        text NOT NULL REFERENCES devices (device),
    plan_id       text NOT NULL,
    step_id       text NOT NULL,
    case_id       text,
    tenant        text,
    action        text NOT NULL,
    decision      text NOT NULL,
    agent         text NOT NULL,
    pack_id       text,
    pack_version  bigint,
    -- An agent edited it before it was decided (a value they typed, in a revision).
    edited        boolean NOT NULL DEFAULT false,
    decided_at    timestamptz NOT NULL,
    verdict       text CHECK (verdict IN ('approved', 'rejected')),
    reviewed_by   text,
    reviewed_at   timestamptz,
    -- How it ended: succeeded, failed, unknown, needs_human, settled_applied,
    -- settled_not_applied, or superseded (decided again; it will not run as it was).
    outcome       text,
    ended_at      timestamptz,
    PRIMARY KEY (device, plan_id, step_id)
);
-- Newest first, and the same within each filter a lead uses.
CREATE INDEX steps_at ON steps (decided_at DESC, device DESC, plan_id DESC, step_id DESC);
CREATE INDEX steps_agent ON steps (agent, decided_at DESC);
CREATE INDEX steps_device ON steps (device, decided_at DESC);
CREATE INDEX steps_action ON steps (action, decided_at DESC);
CREATE INDEX steps_decision ON steps (decision, decided_at DESC);
CREATE INDEX steps_outcome ON steps (outcome, decided_at DESC);
CREATE INDEX steps_pack ON steps (pack_version, decided_at DESC);
CREATE INDEX steps_tenant ON steps (tenant, decided_at DESC);

-- Who saw what, when: every team-view answer that showed customer data. Append-only.
CREATE TABLE views (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    -- The desk that asked and the lead (roster id) whose signature the ask carried.
    device      text NOT NULL,
    by          text NOT NULL,
    -- `steps`, `case`, `blob` or `export`.
    kind        text NOT NULL,
    query       jsonb NOT NULL,
    -- How many rows or events it showed, and the cases they belong to.
    shown       bigint NOT NULL,
    cases       text[] NOT NULL
);
CREATE INDEX views_by ON views (by, at);
