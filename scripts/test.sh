#!/usr/bin/env bash
# Runs the whole test suite: unit and integration tests on SQLite and on a
# throwaway PostgreSQL cluster (started here unless TEST_POSTGRES_URL is set).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/pg.sh
. scripts/pg.sh
if [ -z "${TEST_POSTGRES_URL:-}" ]; then
  pg_start
  trap pg_stop EXIT
fi
cargo test --workspace "$@"
