-- Tidings schema, version 3: push jobs owed for committed notifications live in PostgreSQL.
--
-- A publish's push options are stored once (tidings_push_options) and shared by its
-- jobs: a 10,000-recipient publish adds one options row and 10,000 small job rows,
-- not 10,000 copies of its content (the content is read from the notification row).
-- Jobs are written in the transaction that retires the publish's outbox row, so a
-- push owed for an acknowledged notification survives Redis losing its data and any
-- crash: the outbox row and the jobs are never both absent.
-- Workers claim due jobs with FOR UPDATE SKIP LOCKED and hold them under a lease;
-- a job whose lease ran out (its worker died) is claimed again. A finished job is
-- deleted in the transaction that logs its outcome; a job out of attempts stays
-- as a dead letter (dead = true).
CREATE TABLE tidings_push_options (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    options    jsonb NOT NULL,                    -- the publish's "push" object
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tidings_push_jobs (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notification_id bigint NOT NULL REFERENCES tidings_notifications (id) ON DELETE CASCADE,
    options_id      bigint NOT NULL REFERENCES tidings_push_options (id),
    check_unread    boolean NOT NULL DEFAULT false, -- unread_after: send only if still unread
    devices         bigint[],                     -- a retry: only these; NULL: all active devices
    attempt         integer NOT NULL DEFAULT 1,    -- the attempt the next send will be
    due_at          timestamptz NOT NULL DEFAULT now(),
    lease_until     timestamptz,                  -- claimed by leased_by until then
    leased_by       text,
    dead            boolean NOT NULL DEFAULT false,
    dead_reason     text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tidings_push_jobs_due ON tidings_push_jobs (due_at) WHERE NOT dead;
CREATE INDEX tidings_push_jobs_options ON tidings_push_jobs (options_id);
