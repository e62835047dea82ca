#!/usr/bin/env bash
# Upload and serving throughput with storage in a bucket (a local Garage
# node) against storage in a folder, same images, same run, on the static
# musl release build (`--glibc` for the glibc one). Starts `kitteh serve`
# processes and Garage on 127.0.0.1 only and stops everything
# it started. Serving is measured with the image cache on (the default: hot
# images never touch storage) and off (`cache.image_bytes = 0`: every request
# reads storage). Needs wrk, libvips-tools, garage (installed when missing
# and root / through cargo) and the photos of scripts/bench-variants.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
UPLOAD_DURATION=${UPLOAD_DURATION:-20}
CONNECTIONS=${CONNECTIONS:-64}

if ! command -v wrk >/dev/null || ! command -v vips >/dev/null; then
  [ "$(id -u)" = 0 ] || { echo "missing tools: apt-get install wrk libvips-tools" >&2; exit 1; }
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk libvips-tools >/dev/null
fi
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
command -v garage >/dev/null || cargo install garage --locked
photos=target/bench-photos
if [ ! -d "$photos/mate" ]; then
  mkdir -p "$photos"
  (cd "$photos" && apt-get download mate-backgrounds >/dev/null && dpkg-deb -x mate-backgrounds_*.deb mate)
fi

# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
pick_build "$@"
kitteh_binary "$BUILD"
tmp=$(mktemp -d /tmp/kitteh-bench-s3.XXXXXX)
pids=()
# shellcheck source=scripts/garage.sh
. scripts/garage.sh
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  garage_stop
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
garage_start

src=$photos/mate/usr/share/backgrounds/mate/abstract/Elephants_5640x3172.jpg
vips thumbnail "$src" "$tmp/photo100k.jpg[Q=85,strip]" 800
vips thumbnail "$src" "$tmp/photo1m.jpg[Q=92,strip]" 2200
echo "photos: $(stat -c %s "$tmp/photo100k.jpg") and $(stat -c %s "$tmp/photo1m.jpg") bytes; $(nproc) cores"

# start NAME CACHE_BYTES BACKEND: a server on its own SQLite file per backend
# (cache-off servers share the cache-on server's database and storage).
declare -A port
start() {
  local name=$1 cache=$2 backend=$3 p
  p=$(free_port)
  port[$name]=$p
  env KITTEH_DATABASE__URL="sqlite://$tmp/$backend.db" KITTEH_STORAGE__UPLOADS_DIR="$tmp/uploads-$backend" \
      KITTEH_STORAGE__BACKEND="$backend" KITTEH_STORAGE__S3__ENDPOINT="$TEST_S3_ENDPOINT" \
      KITTEH_STORAGE__S3__BUCKET="$TEST_S3_BUCKET" KITTEH_STORAGE__S3__REGION="$TEST_S3_REGION" \
      KITTEH_STORAGE__S3__ACCESS_KEY_ID="$TEST_S3_KEY_ID" KITTEH_STORAGE__S3__SECRET_ACCESS_KEY="$TEST_S3_SECRET" \
      KITTEH_CACHE__IMAGE_BYTES="$cache" KITTEH_SERVER__PORT="$p" KITTEH_LOG__LEVEL=warn \
      "$KITTEH_BIN" serve --migrate > "$tmp/$name.log" 2>&1 &
  pids+=("$!")
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$p/readyz" >/dev/null && return; sleep 0.1; done
  echo "$name did not start" >&2; cat "$tmp/$name.log" >&2; exit 1
}
start local 64MiB local
start s3 64MiB s3

python3 scripts/wrk-upload.py "$tmp/photo1m.jpg" "$tmp/upload.lua"
stats() { # wrk output -> "req/s p50 p99 errors"
  local rps p50 p99 bad
  rps=$(awk '/^Requests\/sec/{print $2}' <<<"$1")
  p50=$(awk '$1=="50%"{print $2}' <<<"$1")
  p99=$(awk '$1=="99%"{print $2}' <<<"$1")
  bad=$(awk '/Non-2xx/{print $NF}' <<<"$1")
  echo "$rps $p50 $p99 ${bad:-0}"
}
row() { # label local-stats s3-stats
  read -r lr lp50 lp99 lbad <<<"$2"
  read -r sr sp50 sp99 sbad <<<"$3"
  printf '%-34s %10s %8s %8s %10s %8s %8s %7.2fx\n' "$1" "$lr" "$lp50" "$lp99" "$sr" "$sp50" "$sp99" "$(awk "BEGIN{print $sr/$lr}")"
  [ "$lbad$sbad" = 00 ] || echo "  errors: local $lbad, s3 $sbad non-2xx"
}
printf '\n%-34s %10s %8s %8s %10s %8s %8s %8s\n' "target" "local r/s" "p50" "p99" "s3 r/s" "p50" "p99" "s3/local"

upload() { stats "$(wrk -t2 -c16 -d"${UPLOAD_DURATION}s" --latency --timeout 30s -s "$tmp/upload.lua" "http://127.0.0.1:${port[$1]}/api/images")"; }
row "upload, 16 clients, $(( $(stat -c %s "$tmp/photo1m.jpg") / 1024 )) KiB JPEG" "$(upload local)" "$(upload s3)"

# Let both queues drain before measuring reads.
for b in local s3; do
  until [ "$(env KITTEH_DATABASE__URL="sqlite://$tmp/$b.db" "$KITTEH_BIN" variants status | awk '$1=="pending"||$1=="running"{s+=$2} END{print s+0}')" = 0 ]; do sleep 1; done
done

declare -A token
for b in local s3; do
  reply=$(curl -sf -F "file=@$tmp/photo100k.jpg" "http://127.0.0.1:${port[$b]}/api/images")
  token[$b]=$(printf '%s' "$reply" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  until curl -sf "http://127.0.0.1:${port[$b]}/api/images/${token[$b]}" | python3 -c 'import json,sys; sys.exit(0 if all(s["state"]=="ready" for s in json.load(sys.stdin)["sizes"]) else 1)'; do sleep 0.1; done
done
start local-nocache 0 local
start s3-nocache 0 s3
serve() { stats "$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency "http://127.0.0.1:${port[$1]}$2")"; }
size=$(( $(curl -sf "http://127.0.0.1:${port[local]}/img/${token[local]}" | wc -c) / 1024 ))
row "original ${size} KiB, cache on" "$(serve local "/img/${token[local]}")" "$(serve s3 "/img/${token[s3]}")"
row "original ${size} KiB, cache off" "$(serve local-nocache "/img/${token[local]}")" "$(serve s3-nocache "/img/${token[s3]}")"
row "tiny size, cache off" "$(serve local-nocache "/img/tiny${token[local]}")" "$(serve s3-nocache "/img/tiny${token[s3]}")"
objects=$(garage_cli bucket info "$TEST_S3_BUCKET" 2>/dev/null | awk -F': *' '/^Objects/{print $2}')
echo
echo "bucket $TEST_S3_BUCKET holds ${objects:-?} objects; local folder $(find "$tmp/uploads-local" -type f | wc -l) files"
