#!/usr/bin/env bash
# Hostile load against the binary that ships (static musl release build;
# --glibc for the other): WORKERS threads send worst-case uploads in
# parallel (frame-bomb GIFs, 16-bit PNGs of 7745² (inside the pixel limit)
# and 5000² (inside the decode budget),
# an ICC bomb, bodies that stall) for DURATION seconds while one normal client
# uploads a ~100 KB photo in a loop. Prints the server's peak RSS against
# limits.decode_memory + 150 MB, the normal client's p99 (target: under
# 2 s) and how long each hostile request took to be refused or accepted
# (target: under 3 s). Loopback only, bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
WORKERS=${WORKERS:-4}
DURATION=${DURATION:-30}
pick_build "$@"
command -v vips >/dev/null || { [ "$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libvips-tools >/dev/null; }
bench_photos
kitteh_binary "$BUILD"
tmp=$(mktemp -d /tmp/kitteh-hostile.XXXXXX)
KPID=
trap 'stop_kitteh; rm -rf "$tmp"' EXIT
vips thumbnail "$BIG_PHOTO" "$tmp/photo.jpg[Q=85,strip]" 800
# Defaults throughout: the figures are for an instance as it ships.
start_kitteh "$KITTEH_BIN" "$tmp/data"
budget=$("$KITTEH_BIN" config | awk -F'"' '/^decode_memory/{print $2}')
echo "machine: $(nproc) cores; decode_memory $budget; $WORKERS hostile clients for ${DURATION}s"
python3 scripts/hostile.py "http://127.0.0.1:$KPORT" "$KPID" "$tmp/photo.jpg" --workers "$WORKERS" --seconds "$DURATION"
echo "kitteh still ready after the load: $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$KPORT/readyz")"
