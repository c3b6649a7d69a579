-- The migration's schema change: the new column, and the log of committed chunks. Safe to run again.
BEGIN;
SELECT pg_advisory_xact_lock(hashtextextended('postgres-backfill:prepare', 0)) \g /dev/null
-- Nullable and without a default: PostgreSQL adds it instantly, without rewriting the table.
ALTER TABLE orders ADD COLUMN IF NOT EXISTS total_cents bigint;
-- One row per committed chunk, written in the chunk's own transaction. The primary key is the tripwire: a
-- chunk committed twice would violate it and fail loudly (see README.md).
CREATE TABLE IF NOT EXISTS backfill_log (
  chunk_start bigint PRIMARY KEY,
  chunk_end bigint NOT NULL,
  rows_updated bigint NOT NULL,
  run_id text NOT NULL,
  committed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
COMMIT;
