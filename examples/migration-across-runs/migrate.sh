#!/usr/bin/env bash
# Stand-in for a real migration, so the example runs anywhere: each command only sleeps and prints what it
# would do. Replace the bodies with your database's commands, for example with psql:
#
#   schema)      psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -c 'ALTER TABLE orders ADD COLUMN IF NOT EXISTS total_cents bigint' ;;
#   backfill)    psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -c "UPDATE orders SET total_cents = round(total * 100)
#                  WHERE id >= $2 AND id < $3 AND total_cents IS NULL" ;;
#   verify)      test "$(psql "$DATABASE_URL" -Atc 'SELECT count(*) FROM orders WHERE total_cents IS NULL')" = 0 ;;
#
# Each chunk must be safe to run twice (a chunk interrupted at the time budget runs again): hence the
# `IS NULL` condition above, and `IF NOT EXISTS` for the schema.
set -euo pipefail

case "${1:-}" in
  schema) echo "ALTER TABLE orders ADD COLUMN total_cents bigint" ;;
  drop-schema) echo "ALTER TABLE orders DROP COLUMN total_cents" ;;
  backfill)
    sleep "${CHUNK_SECONDS:-0.1}"
    echo "UPDATE orders SET total_cents = … WHERE id >= $2 AND id < $3"
    ;;
  verify) echo "0 rows without total_cents" ;;
  *)
    echo "usage: $0 schema | drop-schema | backfill START END | verify" >&2
    exit 2
    ;;
esac
