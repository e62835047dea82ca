#!/usr/bin/env bash
# Benchmarks making the Tiny/Large/Monstrous sizes of real photos against
# ImageMagick and libvips, in one run on the same files, then measures the
# peak RSS of one large render and the end-to-end time from upload to all
# sizes done on a `kitteh serve` (E2E_ONLY=1 runs just that). Everything is
# built as it ships, for the static musl target with the release profile
# (`--glibc` for the glibc build). Photos come from Debian's
# mate-backgrounds package (fetched here, never committed).
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

echo "== end to end: upload of the 17.9 MP JPEG until all three sizes are done"
kitteh_binary "$BUILD"
tmp=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export KITTEH_DATABASE__URL="sqlite://$tmp/k.db" KITTEH_STORAGE__UPLOADS_DIR="$tmp/uploads" KITTEH_SERVER__PORT=$port KITTEH_LOG__LEVEL=warn
"$KITTEH_BIN" serve --migrate & pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
for i in 1 2 3; do
  start=$(date +%s%N)
  token=$(curl -sf -F "file=@$big" "http://127.0.0.1:$port/api/images" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  uploaded=$(date +%s%N)
  until curl -sf "http://127.0.0.1:$port/api/images/$token" | python3 -c 'import json,sys; sys.exit(0 if all(s["state"]=="ready" for s in json.load(sys.stdin)["sizes"]) else 1)'; do sleep 0.005; done
  done_at=$(date +%s%N)
  echo "run $i: upload answered in $(( (uploaded-start)/1000000 )) ms; all sizes done $(( (done_at-start)/1000000 )) ms after the upload began"
done
