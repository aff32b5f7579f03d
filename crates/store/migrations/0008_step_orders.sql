-- 0008: the order a step acts on. APPEND-ONLY FILE: never edit a shipped migration, add a new one.
--
-- `order_id`: '' for a step that names no order (a goodwill coupon); `order_param`: the
-- parameter it was read from (the deciding policy's `order_param` for the action; '' for
-- none). Both NULL for steps queued before these columns existed (unknown: whoever needs
-- their order reads it from `step`). A decision's money history reads only the steps of
-- its case and its orders, those of unknown order, and those whose order was read from
-- another parameter than the one the policy now names: not every step the desk ever queued.
ALTER TABLE steps ADD COLUMN order_id TEXT;
ALTER TABLE steps ADD COLUMN order_param TEXT;
CREATE INDEX steps_by_order ON steps (order_id);
CREATE INDEX steps_by_order_param ON steps (action, order_param);
