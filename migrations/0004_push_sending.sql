-- Tidings schema, version 4: push attempts are logged before they are sent.
--
-- A push worker writes a 'sending' row for each send before it starts it, and the
-- send's outcome after. A worker killed between the two leaves the 'sending' row
-- without an outcome: the delivery log shows the attempt whose outcome was lost,
-- and the job (still a row in tidings_push_jobs) is sent again after takeover.
ALTER TABLE tidings_deliveries DROP CONSTRAINT tidings_deliveries_outcome_check;
ALTER TABLE tidings_deliveries ADD CONSTRAINT tidings_deliveries_outcome_check CHECK (outcome IN (
    'delivered', 'acked', 'pushed', 'failed', 'deactivated', 'retry', 'dead', 'throttled',
    'skipped', 'sending'));
