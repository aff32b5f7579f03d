-- Buyer messages: conversations between a buyer (a customer's account) and the seller,
-- and their messages. Append-only: never edit a shipped migration, add a new file.

-- change_seq is the store's global change counter: every creation or update of a
-- conversation (a new message, a status change, an assignment) gives it the next value
-- (one more than the largest in the table; the single writer connection serialises
-- this). Clients read changes with `GET /conversations?since=<change_seq>`.
CREATE TABLE conversations (
    id          TEXT PRIMARY KEY,                     -- C-0001
    buyer_id    TEXT NOT NULL REFERENCES customers (customer_id),
    order_id    TEXT REFERENCES orders (order_id),
    status      TEXT NOT NULL CHECK (status IN ('open', 'waiting', 'resolved')),
    assignee    TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    change_seq  INTEGER NOT NULL UNIQUE
) STRICT;

CREATE INDEX conversations_by_buyer ON conversations (buyer_id, order_id);

-- seq orders every message of the store (the id is derived from it: M-000001).
CREATE TABLE messages (
    id              TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    seq             INTEGER NOT NULL UNIQUE,
    author          TEXT NOT NULL CHECK (author IN ('buyer', 'seller')),
    -- a note is internal to the seller: never shown to the buyer
    kind            TEXT NOT NULL CHECK (kind IN ('message', 'note')),
    author_name     TEXT NOT NULL,
    text            TEXT NOT NULL,
    created_at      TEXT NOT NULL
) STRICT;

CREATE INDEX messages_by_conversation ON messages (conversation_id, seq);

-- Present once the conversations were seeded from the sample cases (so a reopen never
-- seeds them twice).
CREATE TABLE conversation_seed_info (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    seeded_at     TEXT NOT NULL,
    source        TEXT NOT NULL,
    conversations INTEGER NOT NULL
) STRICT;
