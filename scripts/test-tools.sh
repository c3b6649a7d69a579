#!/usr/bin/env bash
# `npm test` runs this first (pretest). The postgres-backfill example's test starts a throwaway PostgreSQL
# server (test/support/postgres.ts) and fails, rather than skips, without one: install Debian's PostgreSQL
# when no initdb is found. Nothing else the tests need is outside node_modules.
set -euo pipefail
if compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null; then
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "pretest: PostgreSQL (initdb) is not installed and apt-get is not available: install PostgreSQL 13 or newer so that initdb is on PATH or under /usr/lib/postgresql/*/bin, then run npm test again" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "pretest: PostgreSQL is not installed and this user cannot install it: run 'apt-get install postgresql' as root, then npm test again" >&2
    exit 1
  fi
  sudo="sudo"
fi
echo "pretest: installing Debian's postgresql for the postgres-backfill example's test" >&2
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
