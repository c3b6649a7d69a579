-- Demo data for the example: orders(id, quantity, unit_price_cents) with ids [0, :rows).
-- psql -v rows=1000000 -f sql/seed.sql
--
-- Created and filled in ONE transaction: a seed killed half-way leaves nothing behind and its next try starts
-- over; an existing table is left alone, so the step is safe to run again after it committed.
BEGIN;
-- A killed attempt's psql may still be running when the step is tried again: the second one waits here until
-- the first has committed or rolled back, then sees what it left.
SELECT pg_advisory_xact_lock(hashtextextended('postgres-backfill:seed', 0)) \g /dev/null
SELECT to_regclass('orders') IS NOT NULL AS have_orders \gset
\if :have_orders
  \echo 'orders exists already: not seeded again'
  ROLLBACK;
\else
  CREATE TABLE orders (
    id bigint NOT NULL,
    quantity integer NOT NULL,
    unit_price_cents integer NOT NULL
  );
  -- Set-based: one statement, no round trip per row. The primary key is built after the load (faster).
  INSERT INTO orders (id, quantity, unit_price_cents)
    SELECT g, 1 + g % 7, 99 + (g * 7919) % 10000
    FROM generate_series(0::bigint, :rows - 1) AS g;
  ALTER TABLE orders ADD PRIMARY KEY (id);
  COMMIT;
  \echo orders seeded with :rows rows
\endif
