-- The rules behind each step (crates/team/src/facets.rs), for the leads' per-rule view:
-- which rules fire most, which are overridden, which never fire. Rule ids hold no space,
-- so each list is kept as one space-separated text ('' when none).
ALTER TABLE steps ADD COLUMN fired text NOT NULL DEFAULT '';
ALTER TABLE steps ADD COLUMN rules text NOT NULL DEFAULT '';

-- Steps projected before these columns existed get them from their newest `decided` event
-- (the same lists the projection derives: every rule that fired; those at the outcome).
UPDATE steps s
SET fired = x.fired, rules = x.rules
FROM (
    SELECT DISTINCT ON (e.device, e.payload #>> '{decision,plan_id}', st ->> 'step_id')
           e.device,
           e.payload #>> '{decision,plan_id}' AS plan_id,
           st ->> 'step_id' AS step_id,
           coalesce(array_to_string(ARRAY(
               SELECT DISTINCT replace(r, ' ', '_') FROM jsonb_array_elements_text(st -> 'rule_ids') AS r
           ), ' '), '') AS fired,
           coalesce(array_to_string(ARRAY(
               SELECT DISTINCT replace(r ->> 'rule', ' ', '_') FROM jsonb_array_elements(st -> 'reasons') AS r
               WHERE r ->> 'decision' = st ->> 'decision'
           ), ' '), '') AS rules
    FROM events e
    CROSS JOIN LATERAL jsonb_array_elements(e.payload #> '{decision,steps}') AS st
    WHERE e.kind = 'decided' AND jsonb_typeof(e.payload #> '{decision,steps}') = 'array'
    ORDER BY e.device, e.payload #>> '{decision,plan_id}', st ->> 'step_id', e.seq DESC
) x
WHERE s.device = x.device AND s.plan_id = x.plan_id AND s.step_id = x.step_id;
