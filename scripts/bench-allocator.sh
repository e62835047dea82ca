#!/usr/bin/env bash
# Which global allocator the shipped binary should use, measured: builds the
# release binary four ways (musl and glibc, each with mimalloc and with the
# C library's allocator) and runs the same loads against each, round after
# round in turn so that machine noise spreads over all four. Prints the
# median of each figure and its ratio to the musl build without mimalloc
# (what shipped before). Loopback only; every load is bounded in time.
#
#   image     wrk -t2 -c64 on /img/{token}, a ~110 KB JPEG from the cache
#   healthz   wrk -t2 -c64 on /healthz
#   uploads   16 clients POSTing a ~1 MB JPEG, workers off (uploads/s)
#   variants  upload of a 17.9 MP JPEG until its three sizes are done (ms)
#
# ROUNDS (default 3), DURATION (wrk seconds, default 5) and UPLOAD_DURATION
# (default 15) tune it. BEFORE_BIN=path adds a fifth binary (an older build,
# say) to every round as "before". PREBUILT=dir skips the builds and takes
# the four binaries (and "before", if there) from dir, built earlier by this
# script. Needs wrk, curl and vips (installed when root).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
UPLOAD_DURATION=${UPLOAD_DURATION:-15}

if ! command -v wrk >/dev/null || ! command -v vips >/dev/null; then
  [ "$(id -u)" = 0 ] || { echo "missing tools: apt-get install wrk libvips-tools" >&2; exit 1; }
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk libvips-tools >/dev/null
fi
bench_photos

bins=${PREBUILT:-target/bench-bin}
builds=(musl-system musl-mimalloc glibc-system glibc-mimalloc)
if [ -z "${PREBUILT:-}" ]; then
  mkdir -p "$bins"
  echo "== building four release binaries (several minutes each)"
  cargo build -q --release --locked --target "$MUSL_TARGET" --bin kitteh
  cp "$TARGET_DIR/$MUSL_TARGET/release/kitteh" "$bins/musl-mimalloc"
  cargo build -q --release --locked --target "$MUSL_TARGET" --bin kitteh --no-default-features --target-dir "$TARGET_DIR/system-alloc"
  cp "$TARGET_DIR/system-alloc/$MUSL_TARGET/release/kitteh" "$bins/musl-system"
  cargo build -q --release --locked --bin kitteh
  cp "$TARGET_DIR/release/kitteh" "$bins/glibc-mimalloc"
  cargo build -q --release --locked --bin kitteh --no-default-features --target-dir "$TARGET_DIR/system-alloc"
  cp "$TARGET_DIR/system-alloc/release/kitteh" "$bins/glibc-system"
  if [ -n "${BEFORE_BIN:-}" ]; then
    cp "$BEFORE_BIN" "$bins/before"
  fi
fi
if [ -x "$bins/before" ] && { [ -n "${BEFORE_BIN:-}" ] || [ -n "${PREBUILT:-}" ]; }; then
  builds=(before "${builds[@]}")
fi
for b in "${builds[@]}"; do
  echo "$b: $("$bins/$b" version --verbose | awk -F': *' '/^(target|allocator)/{printf "%s ", $2}')"
done

tmp=$(mktemp -d /tmp/kitteh-alloc.XXXXXX)
KPID=
trap 'stop_kitteh; rm -rf "$tmp"' EXIT
vips thumbnail "$BIG_PHOTO" "$tmp/photo100k.jpg[Q=85,strip]" 800
vips thumbnail "$BIG_PHOTO" "$tmp/photo1m.jpg[Q=92,strip]" 2200
python3 scripts/wrk-upload.py "$tmp/photo1m.jpg" "$tmp/upload.lua"
echo "photos: $(stat -c %s "$tmp/photo100k.jpg") B served, $(stat -c %s "$tmp/photo1m.jpg") B uploaded, $(stat -c %s "$BIG_PHOTO") B resized"
echo "machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"

declare -A results
record() { results[$1,$2]="${results[$1,$2]:-} $3"; }

for round in $(seq "$ROUNDS"); do
  echo "== round $round of $ROUNDS"
  for b in "${builds[@]}"; do
    dir=$tmp/$b-$round
    start_kitteh "$bins/$b" "$dir"
    token=$(upload_token "$tmp/photo100k.jpg")
    wait_sizes "$token"
    curl -sf "http://127.0.0.1:$KPORT/img/$token" >/dev/null
    read -r rps _ p99 bad <<<"$(run_wrk "$DURATION" 64 "http://127.0.0.1:$KPORT/img/$token")"
    [ "$bad" = 0 ] || echo "  $b image: $bad non-2xx"
    record image "$b" "$rps"
    record image_p99 "$b" "$p99"
    read -r rps _ _ _ <<<"$(run_wrk "$DURATION" 64 "http://127.0.0.1:$KPORT/healthz")"
    record healthz "$b" "$rps"
    stop_kitteh

    # Uploads alone: no workers competing for the two cores.
    start_kitteh "$bins/$b" "$dir-up" KITTEH_VARIANTS__WORKERS=0
    out=$(wrk -t2 -c16 -d"${UPLOAD_DURATION}s" --timeout 30s -s "$tmp/upload.lua" "http://127.0.0.1:$KPORT/api/images")
    record uploads "$b" "$(awk '/^Requests\/sec/{print $2}' <<<"$out")"
    stop_kitteh

    start_kitteh "$bins/$b" "$dir-var"
    for _ in 1 2 3; do
      t0=$(date +%s%N)
      token=$(upload_token "$BIG_PHOTO")
      wait_sizes "$token"
      record variants "$b" "$(( ($(date +%s%N) - t0) / 1000000 ))"
    done
    stop_kitteh
    rm -rf "$dir" "$dir-up" "$dir-var"
    echo "  $b done"
  done
done

unit() { case "$1" in image|healthz) echo "req/s" ;; image_p99) echo "" ;; uploads) echo "uploads/s" ;; variants) echo "ms" ;; esac; }
printf '\n%-12s' "median"
for b in "${builds[@]}"; do printf '%18s' "$b"; done
printf '\n'
for metric in image image_p99 healthz uploads variants; do
  printf '%-12s' "$metric"
  for b in "${builds[@]}"; do
    # shellcheck disable=SC2086
    if [ "$metric" = image_p99 ]; then
      printf '%18s' "$(printf '%s\n' ${results[$metric,$b]} | sort -V | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')"
    else
      printf '%18s' "$(median ${results[$metric,$b]}) $(unit "$metric")"
    fi
  done
  printf '\n'
done
printf '\nratio to musl-system (higher is better; for variants, lower time is better and the ratio is time/time)\n'
for metric in image healthz uploads variants; do
  # shellcheck disable=SC2086
  base=$(median ${results[$metric,musl-system]})
  printf '%-12s' "$metric"
  for b in "${builds[@]}"; do
    # shellcheck disable=SC2086
    printf '%17.2fx' "$(awk "BEGIN{print $(median ${results[$metric,$b]})/$base}")"
  done
  printf '\n'
done
