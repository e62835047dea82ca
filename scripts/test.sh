#!/usr/bin/env bash
# Runs the whole test suite: unit and integration tests on SQLite and on a
# throwaway PostgreSQL cluster (started here unless TEST_POSTGRES_URL is set),
# with storage in a folder and in a throwaway Garage S3 node (started here
# unless TEST_S3_ENDPOINT is set).
set -euo pipefail
cd "$(dirname "$0")/.."
# On a fresh machine, fetch what the suite runs against (as root only).
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v python3 >/dev/null 2>&1 || need+=(python3)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${need[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The S3 tests run against a real Garage; building it takes several minutes,
# once.
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
if ! command -v garage >/dev/null 2>&1 && [ -z "${TEST_S3_ENDPOINT:-}" ]; then
  # The longest step on a fresh machine: say what it is and how long it
  # takes, then show cargo's progress instead of going quiet.
  echo "== building Garage, the S3 server the storage tests run against" >&2
  echo "   (cargo install garage --locked: once per machine, about 15-20 minutes on 2 cores)" >&2
  started=$(date +%s)
  cargo install garage --locked
  echo "== Garage built in $(( $(date +%s) - started )) s" >&2
fi
# shellcheck source=scripts/pg.sh
. scripts/pg.sh
# shellcheck source=scripts/garage.sh
. scripts/garage.sh
trap 'pg_stop; garage_stop' EXIT
if [ -z "${TEST_POSTGRES_URL:-}" ]; then
  pg_start
fi
if [ -z "${TEST_S3_ENDPOINT:-}" ]; then
  garage_start
fi
# The layers as the imports draw them: no circle, no import upwards.
scripts/check-layers.sh
cargo test --workspace "$@"
