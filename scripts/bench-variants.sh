#!/usr/bin/env bash
# Benchmarks making the Tiny/Large/Monstrous sizes of real photos against
# ImageMagick and libvips, in one run on the same files, then measures the
# peak RSS of one large render; then, on a `kitteh serve`, the time from
# upload to all sizes ready for each photo (sizes made within the upload,
# and by a job, next to ImageMagick ×3 and vipsthumbnail ×3 on the same
# file), and upload throughput with the sizes made, both ways
# (E2E_ONLY=1 runs just the server part; E2E_RUNS, LOAD_SECONDS tune it).
# Everything is built as it ships, for the static musl target with the
# release profile (`--glibc` for the glibc build). Photos come from
# Debian's mate-backgrounds package (fetched here, never committed).
set -euo pipefail
cd "$(dirname "$0")/.."
work=target/bench-photos
mkdir -p "$work"

if ! command -v vipsthumbnail >/dev/null || ! [ -x /usr/bin/convert ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libvips-tools imagemagick >/dev/null
  else
    echo "reference tools missing: apt-get install libvips-tools imagemagick" >&2
  fi
fi
if [ ! -d "$work/mate" ]; then
  (cd "$work" && apt-get download mate-backgrounds >/dev/null && dpkg-deb -x mate-backgrounds_*.deb mate)
fi
photos=$work/mate/usr/share/backgrounds/mate
big=$photos/abstract/Elephants_5640x3172.jpg     # 17.9 MP photograph
mid=$photos/nature/Dune.jpg                      # 1.8 MP photograph
png=$work/Storm.png                              # 2.5 MP photograph, as PNG
[ -f "$png" ] || /usr/bin/convert "$photos/nature/Storm.jpg" "$png"

# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
pick_build "$@"
bench_target=()
[ "$BUILD" = musl ] && bench_target=(--target "$MUSL_TARGET")
if [ -z "${E2E_ONLY:-}" ]; then
  echo "== in-process sizes vs ImageMagick and libvips (medians; $BUILD build)"
  cargo bench -q "${bench_target[@]}" --bench variants -- "$big" "$mid" "$png" --runs "${RUNS:-7}"

  echo "== peak RSS of one render"
  cargo bench -q "${bench_target[@]}" --bench variants -- --rss "$big"
fi

# The references make the same three sizes from the same file, one process
# per size as the original app did; prints the median milliseconds.
reference_ms() { # convert|vips file runs
  local tool=$1 file=$2 runs=$3 times=() ext=${2##*.}
  for _ in $(seq "$runs"); do
    local start end
    start=$(date +%s%N)
    for width in 90 300 600; do
      case "$tool" in
        convert) /usr/bin/convert "$file" -resize "$width" "$tmp/ref-$width.$ext" ;;
        vips) vipsthumbnail "$file" -s "$width" -o "$tmp/ref-$width.$ext" ;;
      esac
    done
    end=$(date +%s%N)
    times+=($(( (end - start) / 1000000 )))
  done
  median "${times[@]}"
}

e2e_runs=${E2E_RUNS:-7}
kitteh_binary "$BUILD"
tmp=$(mktemp -d)
trap 'stop_kitteh; rm -rf "$tmp"' EXIT
# Modes: inline (sizes within the upload, the default), job (the same binary
# with variants.inline_max_pixels = 0), and, when BEFORE_BIN names an older
# kitteh binary, before (that binary with its defaults).
modes=(inline job)
[ -n "${BEFORE_BIN:-}" ] && modes+=(before)
start_mode() { # mode
  case "$1" in
    inline) start_kitteh "$KITTEH_BIN" "$tmp/$1" ;;
    job) start_kitteh "$KITTEH_BIN" "$tmp/$1" KITTEH_VARIANTS__INLINE_MAX_PIXELS=0 ;;
    before) start_kitteh "$BEFORE_BIN" "$tmp/$1" ;;
  esac
}
[ -n "${BEFORE_BIN:-}" ] && echo "before: $BEFORE_BIN ($("$BEFORE_BIN" version --verbose | awk -F': *' '/^commit/{print "commit " $2}'))"

echo "== end to end: upload until all three sizes are ready (medians of $e2e_runs; $BUILD build)"
printf '%-28s %5s' file MP
for mode in "${modes[@]}"; do printf ' %9s' "${mode}_ms"; done
printf ' %9s %9s' convert×3 vips×3
for mode in "${modes[@]}"; do [ "$mode" = inline ] || printf ' %9s' "$mode/in"; done
printf ' %9s %9s\n' "IM/in" "vips/in"
for photo in "$big" "$mid" "$png"; do
  mp=$(identify -format '%w %h' "$photo" | awk '{printf "%.1f", $1*$2/1e6}')
  declare -A ready=()
  for mode in "${modes[@]}"; do
    start_mode "$mode"
    # One warm-up upload, not counted.
    python3 scripts/upload-bench.py ready "$KPORT" "$photo" 1 >/dev/null
    out=$(python3 scripts/upload-bench.py ready "$KPORT" "$photo" "$e2e_runs")
    ready[$mode]=$(awk -F'[= ]' '/^median/{print $3}' <<<"$out")
    if [ "$mode" = inline ] && ! grep -q "sizes_in_answer=$e2e_runs/$e2e_runs" <<<"$out"; then
      echo "   note: not every upload of $(basename "$photo") had its sizes in the answer: $(tail -1 <<<"$out")"
    fi
    stop_kitteh
    rm -rf "${tmp:?}/$mode"
  done
  im=$(reference_ms convert "$photo" "$e2e_runs")
  vp=$(reference_ms vips "$photo" "$e2e_runs")
  printf '%-28s %5s' "$(basename "$photo")" "$mp"
  for mode in "${modes[@]}"; do printf ' %9.1f' "${ready[$mode]}"; done
  printf ' %9d %9d' "$im" "$vp"
  for mode in "${modes[@]}"; do
    [ "$mode" = inline ] || awk -v a="${ready[$mode]}" -v b="${ready[inline]}" 'BEGIN{printf " %8.2f×", a/b}'
  done
  awk -v im="$im" -v vp="$vp" -v b="${ready[inline]}" 'BEGIN{printf " %8.2f× %8.2f×\n", im/b, vp/b}'
done

# A 13 MP JPEG of about 1.5 MB, baseline with 4:2:0 chroma as phones write
# them, made from the big photo (whose detail needs a low quality to get
# there).
phone=$work/phone-13mp-1.6mb.jpg
[ -f "$phone" ] || /usr/bin/convert "$big" -resize '4160x3120!' -quality 35 -sampling-factor 2x2 -interlace none "$phone"
echo "== upload throughput with the sizes made: 8 clients, ${LOAD_SECONDS:-30} s, $(basename "$phone") ($(stat -c %s "$phone") bytes), workers on"
echo "   per_s counts each upload once all its sizes are ready; peak RSS is the server's VmHWM"
declare -A rate=()
for mode in "${modes[@]}"; do
  start_mode "$mode"
  out=$(python3 scripts/upload-bench.py load "$KPORT" "$phone" 8 "${LOAD_SECONDS:-30}")
  peak=$(awk '/^VmHWM:/{print $2}' "/proc/$KPID/status")
  echo "$mode: $out peak_rss_mib=$((peak / 1024))"
  rate[$mode]=$(sed -E 's/.*per_s=([0-9.]+).*/\1/' <<<"$out")
  stop_kitteh
  rm -rf "${tmp:?}/$mode"
done
for mode in "${modes[@]}"; do
  [ "$mode" = inline ] || awk -v i="${rate[inline]}" -v o="${rate[$mode]}" -v m="$mode" \
    'BEGIN{printf "inline / %s throughput: %.2f×\n", m, i/o}'
done
