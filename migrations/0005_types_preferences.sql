-- Tidings schema, version 5: notification types, users' profiles and preferences,
-- channels and digests of the owed-delivery jobs.
--
-- A type is declared by the producer (its definition is the JSON document of the API).
-- A profile holds a user's address, name, locale and timezone, and the state of the
-- address (ok / bouncing, set by the e-mail channel). Preferences hold only what the
-- user chose (global channel switches, per-type channel choices, quiet hours); the
-- effective settings are the types' defaults with these choices laid over them.
CREATE TABLE tidings_types (
    name        text PRIMARY KEY,
    definition  jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tidings_profiles (
    user_id          text PRIMARY KEY,
    email            text,
    name             text,
    locale           text,
    timezone         text,                         -- an IANA name, checked when saved
    email_status     text NOT NULL DEFAULT 'ok' CHECK (email_status IN ('ok', 'bouncing')),
    email_bounce     text,                         -- the server's answer that marked it
    email_bounced_at timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tidings_preferences (
    user_id     text PRIMARY KEY,
    choices     jsonb NOT NULL DEFAULT '{}',       -- {"channels", "types", "quiet_hours"}
    version     bigint NOT NULL DEFAULT 0,         -- bumped on every change
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Every job belongs to one channel ('push' here; 'email' for the e-mail channel);
-- workers claim only their channel's jobs. A job whose digest_ids is set is a
-- digest: due at the end of its window, it sends once for the notifications listed
-- (those still unread then). Jobs of the same user, type and channel that come due
-- while a digest is open are added to it (and deleted).
ALTER TABLE tidings_push_jobs
    ADD COLUMN channel text NOT NULL DEFAULT 'push' CHECK (channel IN ('push', 'email')),
    ADD COLUMN digest_user text,
    ADD COLUMN digest_type text,
    ADD COLUMN digest_ids bigint[];
DROP INDEX tidings_push_jobs_due;
CREATE INDEX tidings_push_jobs_due ON tidings_push_jobs (channel, due_at) WHERE NOT dead;
CREATE INDEX tidings_push_jobs_digest ON tidings_push_jobs (digest_user, digest_type, channel)
    WHERE digest_ids IS NOT NULL AND NOT dead;

-- 'digested': held for a digest (sent later, once, with the others of its window).
ALTER TABLE tidings_deliveries DROP CONSTRAINT tidings_deliveries_outcome_check;
ALTER TABLE tidings_deliveries ADD CONSTRAINT tidings_deliveries_outcome_check CHECK (outcome IN (
    'delivered', 'acked', 'pushed', 'failed', 'deactivated', 'retry', 'dead', 'throttled',
    'skipped', 'sending', 'digested'));
