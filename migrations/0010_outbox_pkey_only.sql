-- Tidings schema, version 10: the outbox keeps only its primary key.
--
-- Every publish inserts an outbox row and retires it milliseconds later; the index on
-- created_at cost one more index entry (and WAL record) per publish. The relay reads
-- stale rows in id order (ids grow with created_at), through the primary key: rows
-- left behind are the oldest, so its scan stops at the first rows it locks.
DROP INDEX IF EXISTS tidings_outbox_created;
