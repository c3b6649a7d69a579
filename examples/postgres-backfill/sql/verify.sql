-- One line: rows, rows_wrong, first_wrong_id (-1: none), chunks, rows_logged, gaps.
-- gaps counts breaks in the tiling of [0, :rows) by backfill_log's chunks: a missing chunk, an overlap, or a
-- chunk that does not start where the previous one ended. 0 when the chunks cover every id exactly once.
WITH o AS (
  SELECT count(*) AS n,
         count(*) FILTER (WHERE total_cents IS DISTINCT FROM quantity::bigint * unit_price_cents) AS wrong,
         coalesce(min(id) FILTER (WHERE total_cents IS DISTINCT FROM quantity::bigint * unit_price_cents), -1)
           AS first_wrong
  FROM orders
), l AS (
  SELECT chunk_start, chunk_end, rows_updated,
         lag(chunk_end, 1, 0::bigint) OVER (ORDER BY chunk_start) AS previous_end,
         row_number() OVER (ORDER BY chunk_start DESC) AS from_last
  FROM backfill_log
), g AS (
  SELECT count(*) AS chunks,
         coalesce(sum(rows_updated), 0) AS logged,
         count(*) FILTER (WHERE chunk_start <> previous_end)
           + count(*) FILTER (WHERE from_last = 1 AND chunk_end <> :rows)
           + CASE WHEN count(*) = 0 THEN 1 ELSE 0 END AS gaps
  FROM l
)
SELECT o.n, o.wrong, o.first_wrong, g.chunks, g.logged, g.gaps FROM o, g;
