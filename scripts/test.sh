#!/usr/bin/env bash
# Runs the whole test suite: unit and integration tests on SQLite and on a
# throwaway PostgreSQL cluster (started here unless TEST_POSTGRES_URL is set).
set -euo pipefail
cd "$(dirname "$0")/.."
# On a fresh machine, fetch what the suite runs against (as root only).
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# shellcheck source=scripts/pg.sh
. scripts/pg.sh
if [ -z "${TEST_POSTGRES_URL:-}" ]; then
  pg_start
  trap pg_stop EXIT
fi
cargo test --workspace "$@"
