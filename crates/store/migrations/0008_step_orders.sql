-- 0008: the order a step acts on. APPEND-ONLY FILE: never edit a shipped migration, add a new one.
--
-- '' for a step that names no order (a goodwill coupon); NULL for steps queued before this
-- column existed (unknown: whoever needs their order reads it from `step`). A decision's
-- money history reads only the steps of its case and its orders (and the unknown ones),
-- not every step the desk ever queued.
ALTER TABLE steps ADD COLUMN order_id TEXT;
CREATE INDEX steps_by_order ON steps (order_id);
