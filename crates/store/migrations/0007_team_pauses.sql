-- 0007: pauses from a team's plane. APPEND-ONLY FILE: never edit a shipped migration, add a new one.
--
-- The team a pause came from (signed by one of its leads and seen by this desktop);
-- NULL for a pause set on this desktop alone. The signed entry itself is in the
-- pause's `pause_changed` evidence event.

ALTER TABLE pauses ADD COLUMN team TEXT;
