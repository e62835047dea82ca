#!/usr/bin/env bash
# How Kitteh's costs grow with the number of pictures: SQLite and
# PostgreSQL seeded directly in SQL with N pictures each (SCALE_SIZES,
# default 10000 100000 1000000; SCALE_PG_SIZES for PostgreSQL, default
# 100000 1000000), measured against the binary that ships (static musl
# release build). See scripts/bench-scale.py for the figures. Loopback only;
# the 1M runs take a while (seeding is most of it) and several GB of disk.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
pick_build "$@"
kitteh_binary "$BUILD"
work=$(mktemp -d /tmp/kitteh-scale.XXXXXX)
trap 'pg_stop; rm -rf "$work"' EXIT
# shellcheck source=scripts/pg.sh
. scripts/pg.sh
pg_start
python3 scripts/bench-scale.py "$(pwd)/$KITTEH_BIN" "$work" sqlite ${SCALE_SIZES:-10000 100000 1000000}
python3 scripts/bench-scale.py "$(pwd)/$KITTEH_BIN" "$work" "$TEST_POSTGRES_URL" ${SCALE_PG_SIZES:-100000 1000000}
