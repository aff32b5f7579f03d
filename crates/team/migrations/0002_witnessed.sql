-- The team service's co-signature of each desk checkpoint it verified: a C2SP signed
-- note (countersign_trust::witness), also published to the control bucket under
-- `witness.<device>` for the desk to check its own log against.
CREATE TABLE witnessed (
    device     text NOT NULL REFERENCES devices (device),
    count      bigint NOT NULL,
    head       text NOT NULL CHECK (length(head) = 64),
    note       text NOT NULL,
    signed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device, count)
);
