-- Tidings schema, version 9: the e-mail channel's outcomes in the delivery log.
--
-- E-mail jobs are rows of tidings_push_jobs with channel 'email' (schema 5). An e-mail
-- the server took is 'sent'; one refused for its address is 'bounced' (the profile's
-- address is then marked bouncing, in the same transaction).
ALTER TABLE tidings_deliveries DROP CONSTRAINT tidings_deliveries_outcome_check;
ALTER TABLE tidings_deliveries ADD CONSTRAINT tidings_deliveries_outcome_check CHECK (outcome IN (
    'delivered', 'acked', 'pushed', 'failed', 'deactivated', 'retry', 'dead', 'throttled',
    'skipped', 'sending', 'digested', 'sent', 'bounced'));
