-- Tidings schema, version 7: the operator's console.
--
-- Every admin action (a send, a dead letter requeued or discarded) is written to the
-- audit log before it takes effect (requeues and discards in the same transaction).
-- ``admin`` is the id of the admin key that acted (a fingerprint), never the key.
CREATE TABLE tidings_admin_audit (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    admin      text NOT NULL,
    action     text NOT NULL,
    target     text,
    detail     jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- A dead letter can be requeued: its 'dead' rows no longer end a device's attempts for
-- that notification, so the outcome of the requeued send is logged (and a takeover of the
-- requeued job does not skip the device).
DROP INDEX tidings_deliveries_final;
CREATE UNIQUE INDEX tidings_deliveries_final ON tidings_deliveries (notification_uid, device_id)
    WHERE outcome IN ('pushed', 'failed', 'deactivated', 'throttled');

-- The console's lists: dead letters newest first; the last hour of the delivery log
-- (BRIN: the log is appended in time order, and the index costs next to nothing to keep).
CREATE INDEX tidings_push_jobs_dead ON tidings_push_jobs (id) WHERE dead;
CREATE INDEX tidings_deliveries_created ON tidings_deliveries USING brin (created_at);
