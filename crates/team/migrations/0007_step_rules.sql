-- The rules behind each step (crates/team/src/facets.rs), for the leads' per-rule view:
-- which rules fire most, which are overridden, which never fire. Rule ids hold no space,
-- so each list is kept as one space-separated text ('' when none).
ALTER TABLE steps ADD COLUMN fired text NOT NULL DEFAULT '';
ALTER TABLE steps ADD COLUMN rules text NOT NULL DEFAULT '';
