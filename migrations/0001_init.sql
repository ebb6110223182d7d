-- Tidings schema, version 1: inbox, per-user state, devices, idempotency, outbox.

CREATE TABLE tidings_user_state (
    user_id      text PRIMARY KEY,
    last_seq     bigint NOT NULL DEFAULT 0,      -- seq of the newest stored notification
    total_count  bigint NOT NULL DEFAULT 0,      -- ACTIVE notifications
    unread_count bigint NOT NULL DEFAULT 0,      -- ACTIVE and unread
    version      bigint NOT NULL DEFAULT 0,      -- bumped on every change: orders counts messages
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (unread_count >= 0 AND unread_count <= total_count)
);

CREATE TABLE tidings_notifications (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uid          uuid NOT NULL UNIQUE,
    user_id      text NOT NULL,
    seq          bigint NOT NULL,
    message      text NOT NULL,
    type         text,
    title        text,
    data         jsonb,
    created_by   text,
    model        text,
    instance     text,
    method       text,
    changed_data jsonb,
    custom_info  jsonb,
    status       text NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'REMOVED')),
    read_at      timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, seq)
);

-- Inbox pages and replays: newest first / seq ranges of one user's live notifications.
CREATE INDEX tidings_notifications_active
    ON tidings_notifications (user_id, seq)
    WHERE status = 'ACTIVE';
CREATE INDEX tidings_notifications_unread
    ON tidings_notifications (user_id, seq)
    WHERE status = 'ACTIVE' AND read_at IS NULL;
CREATE INDEX tidings_notifications_read
    ON tidings_notifications (user_id, seq)
    WHERE status = 'ACTIVE' AND read_at IS NOT NULL;

CREATE TABLE tidings_devices (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id             text NOT NULL,
    platform            text NOT NULL CHECK (platform IN ('apns', 'fcm')),
    token               text NOT NULL,
    app_id              text,
    name                text,
    active              boolean NOT NULL DEFAULT true,
    deactivated_reason  text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (platform, token)
);
CREATE INDEX tidings_devices_user ON tidings_devices (user_id) WHERE active;

CREATE TABLE tidings_idempotency (
    key          text PRIMARY KEY,
    request_hash text NOT NULL,
    status       integer,
    response     jsonb,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- Publishes committed but not yet handed to Redis (live routing and push jobs).
-- A row is deleted once its event is on the bus; the relay publishes leftovers.
CREATE TABLE tidings_outbox (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notification_ids bigint[] NOT NULL,
    push             jsonb,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tidings_outbox_created ON tidings_outbox (created_at);

-- Publishes asked for later (``delay``): the relay publishes each once it is due.
CREATE TABLE tidings_scheduled (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request    jsonb NOT NULL,
    due_at     timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tidings_scheduled_due ON tidings_scheduled (due_at);
