-- One chunk of the backfill: ids [:start, :end), as ONE transaction that updates the rows AND records the chunk
-- in backfill_log. Both commit together or neither does.
-- psql -v start=0 -v end=50000 -v run_id=... -f sql/backfill-chunk.sql
--
-- Safe to repeat: a chunk whose transaction committed but whose unit was not recorded done (the runner was
-- killed in between) runs again in the next attempt; it finds its row in backfill_log and does nothing.
-- Never committed twice: the log insert is a plain INSERT on the primary key, not ON CONFLICT DO NOTHING, so
-- if two transactions ever both wrote the chunk, the second would fail with a unique violation instead of
-- passing silently. README.md explains the reasoning.
BEGIN;
-- One transaction per chunk at a time: a re-run waits here while a killed attempt's psql (or its server
-- backend, which finishes the statement it is running) still holds the chunk, then sees its outcome.
SELECT pg_advisory_xact_lock(hashtextextended('postgres-backfill:chunk:' || :start, 0)) \g /dev/null
SELECT EXISTS (SELECT 1 FROM backfill_log WHERE chunk_start = :start) AS committed_before \gset
\if :committed_before
  ROLLBACK;
  \echo chunk [:start, :end) is in backfill_log already (committed by a try that was not recorded done): nothing to do
\else
  -- Idempotent: the value depends only on the row, so running it again writes the same values.
  UPDATE orders SET total_cents = quantity::bigint * unit_price_cents
    WHERE id >= :start AND id < :end;
  \set updated :ROW_COUNT
  INSERT INTO backfill_log (chunk_start, chunk_end, rows_updated, run_id)
    VALUES (:start, :end, :updated, :'run_id');
  COMMIT;
  \echo chunk [:start, :end) committed: :updated rows
\endif
