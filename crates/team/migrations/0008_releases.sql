-- A held desk released after someone looked at its alert (countersign-team release):
-- who, why, where it was held and under which alert, and the evidence key the team held
-- it to before. The projection reads the stream again from `from_stream_seq` (the alert's
-- place) once: `projection.release_id` is the newest release it has applied. A desk
-- whose cause remains is held again at the same event (its alert raised anew).
CREATE TABLE releases (
    id                 bigserial PRIMARY KEY,
    device             text NOT NULL,
    held_at_seq        bigint NOT NULL,
    alert_kind         text,
    by_whom            text NOT NULL,
    reason             text NOT NULL,
    device_key_before  text,
    device_key_after   text,
    from_stream_seq    bigint NOT NULL,
    released_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX releases_device ON releases (device);

ALTER TABLE projection ADD COLUMN release_id bigint NOT NULL DEFAULT 0;
