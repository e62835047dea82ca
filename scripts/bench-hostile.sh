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
# Defaults throughout (but the per-address upload limit, which would
# refuse nearly all of this one address's requests with 429 before any
# reached a decoder): the figures are for an instance as it ships.
start_kitteh "$KITTEH_BIN" "$tmp/data" KITTEH_RATE_LIMITS__UPLOADS_PER_MINUTE=0
budget=$("$KITTEH_BIN" config | awk -F'"' '/^decode_memory/{print $2}')
echo "machine: $(nproc) cores; decode_memory $budget; $WORKERS hostile clients for ${DURATION}s"
python3 scripts/hostile.py "http://127.0.0.1:$KPORT" "$KPID" "$tmp/photo.jpg" --workers "$WORKERS" --seconds "$DURATION"
echo "kitteh still ready after the load: $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$KPORT/readyz")"

# Floods from many addresses, stalled readers and a scan bomb, against a
# server with the open-file limit most services get (1024, soft and hard)
# and its defaults otherwise. For each: the normal client's errors and p99,
# the server's RSS and the CPU seconds it used.
stop_kitteh
FLOOD_SECONDS=${FLOOD_SECONDS:-15}
cpu_s() { awk '{printf "%.1f", ($14 + $15) / 100}' "/proc/$1/stat" 2>/dev/null || echo 0; }
start_limited() {
  KPORT=$(free_port)
  mkdir -p "$tmp/flood"
  local bin
  bin="$(cd "$(dirname "$KITTEH_BIN")" && pwd)/$(basename "$KITTEH_BIN")"
  (cd "$tmp/flood" && ulimit -n 1024 && exec env KITTEH_DATABASE__URL="sqlite://$tmp/flood/k.db" \
      KITTEH_STORAGE__UPLOADS_DIR="$tmp/flood/uploads" KITTEH_SERVER__PORT="$KPORT" KITTEH_LOG__LEVEL=info \
      "$bin" serve --migrate > "$tmp/flood/kitteh.log" 2>&1) &
  KPID=$!
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$KPORT/readyz" >/dev/null && return 0; sleep 0.05; done
  cat "$tmp/flood/kitteh.log" >&2; return 1
}
start_limited
echo "server: ulimit -n 1024; $(grep -o 'max_connections=[0-9]*' "$tmp/flood/kitteh.log" | head -1), $(grep -o 'max_connections_per_client=[0-9]*' "$tmp/flood/kitteh.log" | head -1)"
token=$(upload_token "$tmp/photo.jpg")
name=$(curl -s "http://127.0.0.1:$KPORT/api/images/$token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["name"])')
for kind in heads idle; do
  for addresses in 1 16 64; do
    before=$(cpu_s "$KPID"); peak=0
    python3 scripts/flood.py "$kind" "$KPORT" "$addresses" "$FLOOD_SECONDS" "/$name" "/img/$token" &
    fpid=$!
    while kill -0 "$fpid" 2>/dev/null; do r=$(rss_kib "$KPID"); [ "$r" -gt "$peak" ] && peak=$r; sleep 0.2; done
    wait "$fpid" || true
    echo "  $kind flood from $addresses address(es): server RSS peak $((peak / 1024)) MiB, CPU $(echo "$(cpu_s "$KPID") - $before" | bc) s"
  done
done
# A picture too large for the byte cache (over cache.image_bytes / 8).
python3 - "$tmp/large.png" <<'PY'
import os, struct, sys, zlib
w = h = 1800
raw = b''.join(b'\x00' + os.urandom(w * 3) for _ in range(h))
def chunk(kind, data):
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)
png = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)) + chunk(b'IDAT', zlib.compress(raw, 1)) + chunk(b'IEND', b'')
open(sys.argv[1], 'wb').write(png)
PY
large=$(upload_token "$tmp/large.png")
echo "  large picture: $(stat -c %s "$tmp/large.png") bytes"
rss_before=$(rss_kib "$KPID"); peak=0; before=$(cpu_s "$KPID")
python3 scripts/flood.py stalled "$KPORT" 100 "$FLOOD_SECONDS" "/img/$large" &
fpid=$!
while kill -0 "$fpid" 2>/dev/null; do r=$(rss_kib "$KPID"); [ "$r" -gt "$peak" ] && peak=$r; sleep 0.2; done
wait "$fpid" || true
echo "  100 stalled readers: server RSS $((rss_before / 1024)) MiB before, peak $((peak / 1024)) MiB (budget: decode_memory + upload_memory + 150 MB), CPU $(echo "$(cpu_s "$KPID") - $before" | bc) s"
# The scan bomb, from one address at the upload rate limit (30 a minute).
vips black "$tmp/grey.v" 2048 2048 && vips linear "$tmp/grey.v" "$tmp/grey.jpg[interlace,Q=90]" 1 128
python3 scripts/scanbomb.py "$tmp/grey.jpg" 10000 "$tmp/bomb.jpg"
before=$(cpu_s "$KPID"); worst=0
for i in $(seq 12); do
  ms=$(curl -s -o /dev/null -w '%{time_total}' -F "file=@$tmp/bomb.jpg" "http://127.0.0.1:$KPORT/api/images" | awk '{printf "%d", $1 * 1000}')
  [ "$ms" -gt "$worst" ] && worst=$ms
  [ "$i" -gt 10 ] && sleep 2
done
echo "  scan bomb ($(stat -c %s "$tmp/bomb.jpg") bytes, 10000 scans) x12: slowest refusal $worst ms (target: under 50 ms), CPU $(echo "$(cpu_s "$KPID") - $before" | bc) s"
