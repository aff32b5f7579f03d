-- The lead's two outcome filters that are no one column's value (crates/team/src/view.rs):
-- `rejected` (verdict = 'rejected') and `open` (not ended and not rejected), each in the
-- order a page reads them. Without them, either one beside a filter that matches many
-- steps (decision `auto`, which no one reviews) read that filter's whole index to find
-- the few rows, or none, that are both: 50–110 ms at 2 million events, growing with the
-- table (docs/benchmarks.md). Both hold few rows: rejected and open steps are a small part.
CREATE INDEX steps_rejected ON steps (decided_at DESC, device DESC, plan_id DESC, step_id DESC)
    WHERE verdict = 'rejected';
CREATE INDEX steps_open ON steps (decided_at DESC, device DESC, plan_id DESC, step_id DESC)
    WHERE outcome IS NULL AND verdict IS DISTINCT FROM 'rejected';
