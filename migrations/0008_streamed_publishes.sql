-- Tidings schema, version 8: large publishes are stored in chunks, and never left half done.
--
-- A publish to more recipients than one chunk is stored chunk by chunk, each chunk in its
-- own transaction and routed live as soon as it commits. The first chunk's transaction
-- also writes this row: every recipient of the publish, in order, and what fixes their
-- uids, so whatever stops the publishing request midway (PostgreSQL going away, the node
-- dying), the relay stores the rest from this row (idempotently: rows already stored
-- are read back). The request deletes the row once its last chunk is stored; the relay
-- only takes rows past due_at, set beyond the time a request may spend on it.
CREATE TABLE tidings_streamed (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uid_base        uuid NOT NULL UNIQUE,   -- recipient i's uid: this uid with i XORed into its last 48 bits
    users           text[] NOT NULL,        -- every recipient, in the publish's order
    content         jsonb NOT NULL,         -- the content fields every recipient shares
    push            jsonb,                  -- the publish's push options
    idempotency_key text UNIQUE,            -- the key whose answer the publish writes, if any
    due_at          timestamptz NOT NULL,   -- the relay completes the publish from then on
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tidings_streamed_due ON tidings_streamed (due_at);
