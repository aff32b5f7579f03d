-- The demo store's schema. Append-only: never edit a shipped migration, add a new file.
-- Customers, orders and products are kept as one JSON document per row (the API shape);
-- the columns beside the document are the ones the store looks up by.

CREATE TABLE seed_info (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    seeded_at  TEXT NOT NULL,
    customers  INTEGER NOT NULL,
    orders     INTEGER NOT NULL,
    products   INTEGER NOT NULL
) STRICT;

CREATE TABLE customers (
    customer_id TEXT PRIMARY KEY,
    -- lower-cased email: unique across customers
    email_key   TEXT NOT NULL UNIQUE,
    first_name  TEXT NOT NULL,
    last_name   TEXT NOT NULL,
    zip         TEXT NOT NULL,
    doc         TEXT NOT NULL
) STRICT;

CREATE INDEX customers_by_name_zip
    ON customers (first_name COLLATE NOCASE, last_name COLLATE NOCASE, zip);

CREATE TABLE products (
    product_id TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    doc        TEXT NOT NULL
) STRICT;

CREATE TABLE orders (
    order_id    TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (customer_id),
    status      TEXT NOT NULL,
    doc         TEXT NOT NULL
) STRICT;

CREATE INDEX orders_by_customer ON orders (customer_id);

CREATE TABLE coupons (
    code        TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (customer_id),
    amount      TEXT NOT NULL,
    currency    TEXT NOT NULL,
    reason      TEXT NOT NULL,
    created_at  TEXT NOT NULL
) STRICT;

CREATE INDEX coupons_by_customer ON coupons (customer_id);

CREATE TABLE password_resets (
    reference   TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers (customer_id),
    sent_to     TEXT NOT NULL,
    created_at  TEXT NOT NULL
) STRICT;

CREATE INDEX password_resets_by_customer ON password_resets (customer_id);

-- One row per Idempotency-Key: written in the same transaction as the change it guards.
CREATE TABLE idempotency_keys (
    key         TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    status      INTEGER NOT NULL,
    body        TEXT NOT NULL,
    created_at  TEXT NOT NULL
) STRICT;
