-- Web Push: a browser subscription is a device of platform 'webpush'. Its token is derived
-- from the endpoint (the devices API's id for it); the endpoint and the browser's keys
-- (P-256 public key, auth secret; base64url) are what a send needs.
ALTER TABLE tidings_devices DROP CONSTRAINT tidings_devices_platform_check;
ALTER TABLE tidings_devices ADD CONSTRAINT tidings_devices_platform_check
    CHECK (platform IN ('apns', 'fcm', 'webpush'));
ALTER TABLE tidings_devices
    ADD COLUMN endpoint text,
    ADD COLUMN p256dh   text,
    ADD COLUMN auth     text,
    ADD CONSTRAINT tidings_devices_webpush_keys CHECK (
        (platform = 'webpush') = (endpoint IS NOT NULL AND p256dh IS NOT NULL AND auth IS NOT NULL));
