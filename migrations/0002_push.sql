-- Tidings schema, version 2: the delivery log (socket deliveries and push outcomes).

-- One row per outcome, appended, never updated. notification_uid is the
-- recipient's copy (live-only notifications are not stored, so no foreign key).
-- A device gets at most one final row per notification ('pushed', 'failed',
-- 'deactivated', 'dead', 'throttled'): the worker skips devices that have one,
-- so a job taken over from a killed worker is not sent twice.
CREATE TABLE tidings_deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notification_uid uuid NOT NULL,
    user_id          text NOT NULL,
    channel          text NOT NULL,               -- 'socket' | 'apns' | 'fcm' | 'push'
    device_id        bigint REFERENCES tidings_devices (id) ON DELETE SET NULL,
    outcome          text NOT NULL CHECK (outcome IN (
        'delivered', 'acked', 'pushed', 'failed', 'deactivated', 'retry', 'dead', 'throttled',
        'skipped')),
    detail           text,
    attempt          integer NOT NULL DEFAULT 1,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tidings_deliveries_uid ON tidings_deliveries (notification_uid, id);
CREATE UNIQUE INDEX tidings_deliveries_final ON tidings_deliveries (notification_uid, device_id)
    WHERE outcome IN ('pushed', 'failed', 'deactivated', 'dead', 'throttled');
