#!/usr/bin/env bash
# Serving speed, side by side with nginx on the same files, an upload load
# test, and an attack of slow and idle connections, on the binary that
# ships: the static musl release build (`--glibc` measures the glibc build
# instead). Starts `kitteh serve` and an nginx on 127.0.0.1 only, runs wrk
# against both in alternation, prints req/s, p50, p99, the kitteh/nginx
# ratio and kitteh's RSS, then stops everything it started.
#
# BEFORE_BIN=path/to/older/kitteh adds that build to the same run: the show
# page, /img, the CSS, the uploads and the attack are measured on it too,
# with the ratio of this build to it (pages: the median of ROUNDS=3
# rounds). It runs on data of its own, so any older build will do.
#
# Needs nginx, libnginx-mod-http-brotli-static, wrk (installed when root),
# and the photos fetched by scripts/bench-variants.sh (fetched here too).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
ATTACK_SECONDS=${ATTACK_SECONDS:-20}
UPLOAD_DURATION=${UPLOAD_DURATION:-30}
CONNECTIONS=${CONNECTIONS:-64}

if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null || [ ! -e /usr/lib/nginx/modules/ngx_http_brotli_static_module.so ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx wrk libnginx-mod-http-brotli-static >/dev/null
    service nginx stop >/dev/null 2>&1 || true
  else
    echo "missing tools: apt-get install nginx wrk libnginx-mod-http-brotli-static" >&2
    exit 1
  fi
fi
photos=target/bench-photos
if [ ! -d "$photos/mate" ]; then
  mkdir -p "$photos"
  (cd "$photos" && apt-get download mate-backgrounds >/dev/null && dpkg-deb -x mate-backgrounds_*.deb mate)
fi
command -v vips >/dev/null || { [ "$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libvips-tools >/dev/null; }

# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
pick_build "$@"
kitteh_binary "$BUILD"
tmp=$(mktemp -d /tmp/kitteh-bench.XXXXXX)
# nginx's workers run as another user: they must be able to read the files
# (a 403 is fast, and would be measured as nginx's speed).
chmod 755 "$tmp"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# A ~100 KB photo and a ~1 MB photo, cut from the same real photograph.
src=$photos/mate/usr/share/backgrounds/mate/abstract/Elephants_5640x3172.jpg
vips thumbnail "$src" "$tmp/photo100k.jpg[Q=85,strip]" 800
vips thumbnail "$src" "$tmp/photo1m.jpg[Q=92,strip]" 2200
echo "photos: $(stat -c %s "$tmp/photo100k.jpg") and $(stat -c %s "$tmp/photo1m.jpg") bytes"

kport=$(free_port)
export KITTEH_DATABASE__URL="sqlite://$tmp/k.db" KITTEH_STORAGE__UPLOADS_DIR="$tmp/uploads" \
       KITTEH_SERVER__PORT=$kport KITTEH_LOG__LEVEL=warn
# The load comes from one address: per-address upload limits would turn
# it into a measurement of 429s. Only builds that have them know the key
# (an older BEFORE_BIN would refuse it as unknown).
if "$KITTEH_BIN" config 2>/dev/null | grep -q '^uploads_per_minute'; then
  export KITTEH_RATE_LIMITS__UPLOADS_PER_MINUTE=0
fi
before_env=()
if [ -n "${BEFORE_BIN:-}" ] && ! "$BEFORE_BIN" config 2>/dev/null | grep -q '^uploads_per_minute'; then
  before_env=(-u KITTEH_RATE_LIMITS__UPLOADS_PER_MINUTE)
fi
"$KITTEH_BIN" serve --migrate > "$tmp/kitteh.log" 2>&1 &
kpid=$!
pids+=("$kpid")
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$kport/readyz" >/dev/null && break; sleep 0.1; done
rss() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; }
echo "kitteh idle RSS: $(( $(rss "$kpid") / 1024 )) MiB"

reply=$(curl -sf -F "file=@$tmp/photo100k.jpg" "http://127.0.0.1:$kport/api/images")
token=$(printf '%s' "$reply" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
name=$(printf '%s' "$reply" | python3 -c 'import json,sys; print(json.load(sys.stdin)["name"])')
until curl -sf "http://127.0.0.1:$kport/api/images/$token" | python3 -c 'import json,sys; sys.exit(0 if all(s["state"]=="ready" for s in json.load(sys.stdin)["sizes"]) else 1)'; do sleep 0.1; done
css=$(curl -sf "http://127.0.0.1:$kport/" | grep -o '/assets/app-[0-9a-f]*\.css' | head -1)

# nginx serves the very same files: the stored original and variant, the
# digested CSS with its pre-compressed copies, and the rendered show page.
root=$tmp/nginx-root
mkdir -p "$root/img" "$root/assets"
cp "$tmp/uploads/$token.jpg" "$root/img/$token"
cp "$tmp/uploads/$token-large.jpg" "$root/img/large$token"
curl -sf "http://127.0.0.1:$kport$css" -o "$root$css"
curl -sf -H 'Accept-Encoding: br' "http://127.0.0.1:$kport$css" -o "$root$css.br"
curl -sf -H 'Accept-Encoding: gzip' "http://127.0.0.1:$kport$css" -o "$root$css.gz"
curl -sf -H 'Accept: text/html' "http://127.0.0.1:$kport/$name" -o "$root/$name.html"
nport=$(free_port)
cat > "$tmp/nginx.conf" <<NGINX
load_module /usr/lib/nginx/modules/ngx_http_brotli_static_module.so;
worker_processes auto;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_requests 100000;
  types { image/jpeg jpg; text/css css; text/html html; }
  default_type image/jpeg;
  server {
    listen 127.0.0.1:$nport;
    root $root;
    location /assets/ { brotli_static on; gzip_static on; expires max; }
    location /img/ { etag on; expires max; }
    location / { default_type text/html; try_files \$uri.html =404; }
  }
}
NGINX
chmod -R a+rX "$root"
nginx -c "$tmp/nginx.conf" -p "$tmp"
for _ in $(seq 50); do [ -f "$tmp/nginx.pid" ] && break; sleep 0.1; done
pids+=("$(cat "$tmp/nginx.pid")")
for path in "/img/$token" "/img/large$token" "$css" "/$name"; do
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$nport$path")
  [ "$code" = 200 ] || { echo "nginx answers $code for $path: not measuring that" >&2; exit 1; }
done
# The ceiling of hyper on this machine: a bare server answering the same
# original from memory (examples/bare-hyper.rs, built like the binary).
case "$BUILD" in
  musl) cargo build -q --release --locked --target "$MUSL_TARGET" --example bare-hyper
        BARE_BIN=$TARGET_DIR/$MUSL_TARGET/release/examples/bare-hyper ;;
  *) cargo build -q --release --locked --example bare-hyper
     BARE_BIN=$TARGET_DIR/release/examples/bare-hyper ;;
esac
bare_port=$(free_port)
"$BARE_BIN" "$root/img/$token" "$bare_port" & pids+=("$!")

peak_rss=0
sample_rss() { # sample kitteh RSS while wrk runs
  while kill -0 "$kpid" 2>/dev/null; do
    local r; r=$(rss "$kpid"); [ "$r" -gt "$peak_rss" ] && peak_rss=$r && echo "$r" > "$tmp/peak"
    sleep 0.2
  done
}
echo 0 > "$tmp/peak"
sample_rss & pids+=("$!")

printf '\n%-28s %12s %9s %9s %12s %9s %9s %8s\n' "target" "kitteh r/s" "p50" "p99" "nginx r/s" "p50" "p99" "ratio"
bench() { # label kitteh-path nginx-path [header]
  local k n
  k=$(run_wrk "$DURATION" "$CONNECTIONS" "http://127.0.0.1:$kport$2" "${4:-}")
  n=$(run_wrk "$DURATION" "$CONNECTIONS" "http://127.0.0.1:$nport$3" "${4:-}")
  read -r krps kp50 kp99 kbad <<<"$k"
  read -r nrps np50 np99 nbad <<<"$n"
  printf '%-28s %12s %9s %9s %12s %9s %9s %7.2fx\n' "$1" "$krps" "$kp50" "$kp99" "$nrps" "$np50" "$np99" "$(awk "BEGIN{print $krps/$nrps}")"
  [ "$kbad" = 0 ] || echo "  kitteh non-2xx: $kbad"
  [ "$nbad" = 0 ] || echo "  nginx non-2xx: $nbad"
}
bench "original ($(stat -c %s "$root/img/$token") B JPEG)" "/img/$token" "/img/$token"
b=$(run_wrk "$DURATION" "$CONNECTIONS" "http://127.0.0.1:$bare_port/")
read -r brps bp50 bp99 _ <<<"$b"
printf '%-28s %12s %9s %9s %12s %9s %9s %7.2fx\n' "  bare hyper, same bytes" "$brps" "$bp50" "$bp99" "$nrps" "$np50" "$np99" "$(awk "BEGIN{print $brps/$nrps}")"
bench "variant ($(stat -c %s "$root/img/large$token") B JPEG)" "/img/large$token" "/img/large$token"
bench "digested CSS, br" "$css" "$css" "Accept-Encoding: br"
bench "show page" "/$name" "/$name"
# A copy of the SQLite database with its write-ahead log.
copy_db() { # from to
  for suffix in "" -wal -shm; do [ -e "$1$suffix" ] && cp "$1$suffix" "$2$suffix"; done; return 0
}
if [ -n "${BEFORE_BIN:-}" ]; then
  # The older build on data of its own (it may not know this build's
  # schema), holding the same photo: the ratio of each path is the median
  # of ROUNDS rounds, the two builds measured in alternation.
  bdir=$tmp/before-pages; mkdir -p "$bdir"; bport=$(free_port)
  KITTEH_DATABASE__URL="sqlite://$bdir/k.db" KITTEH_STORAGE__UPLOADS_DIR="$bdir/uploads" \
    KITTEH_SERVER__PORT=$bport env "${before_env[@]}" "$BEFORE_BIN" serve --migrate > "$bdir/log" 2>&1 &
  bpid=$!; pids+=("$bpid")
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$bport/readyz" >/dev/null && break; sleep 0.1; done
  echo "before idle RSS: $(( $(rss "$bpid") / 1024 )) MiB"
  breply=$(curl -sf -F "file=@$tmp/photo100k.jpg" "http://127.0.0.1:$bport/api/images")
  btoken=$(printf '%s' "$breply" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  bname=$(printf '%s' "$breply" | python3 -c 'import json,sys; print(json.load(sys.stdin)["name"])')
  until curl -sf "http://127.0.0.1:$bport/api/images/$btoken" | python3 -c 'import json,sys; sys.exit(0 if all(s["state"]=="ready" for s in json.load(sys.stdin)["sizes"]) else 1)'; do sleep 0.1; done
  bcss=$(curl -sf "http://127.0.0.1:$bport/" | grep -o '/assets/app-[0-9a-f]*\.css' | head -1)
  echo "before: $BEFORE_BIN ($("$BEFORE_BIN" version --verbose | awk -F': *' '/^commit/{print "commit " $2}'))"
  printf '%-28s %12s %12s %8s   %s\n' "target" "this r/s" "before r/s" "median" "(ratio of each round)"
  median() { tr ' ' '\n' | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
  compare() { # label this-path before-path [header]
    local ratios="" i k b krps brps ks="" bs=""
    for i in $(seq "${ROUNDS:-3}"); do
      k=$(run_wrk "$DURATION" "$CONNECTIONS" "http://127.0.0.1:$kport$2" "${4:-}")
      b=$(run_wrk "$DURATION" "$CONNECTIONS" "http://127.0.0.1:$bport$3" "${4:-}")
      read -r krps _ <<<"$k"; read -r brps _ <<<"$b"
      ks="$ks $krps"; bs="$bs $brps"
      ratios="$ratios $(awk "BEGIN{printf \"%.2f\", $krps/$brps}")"
    done
    printf '%-28s %12s %12s %7.2fx  (%s)\n' "$1" "$(median <<<"${ks# }")" "$(median <<<"${bs# }")" \
      "$(median <<<"${ratios# }")" "${ratios# }"
  }
  compare "show page" "/$name" "/$bname"
  compare "/img original" "/img/$token" "/img/$btoken"
  compare "digested CSS, br" "$css" "$bcss" "Accept-Encoding: br"
  kill "$bpid"; wait "$bpid" 2>/dev/null || true
fi
echo "kitteh RSS under the serving load (peak): $(( $(cat "$tmp/peak") / 1024 )) MiB (image cache budget 64 MiB)"

echo
echo "== upload load: 16 clients, ${UPLOAD_DURATION}s, $(stat -c %s "$tmp/photo1m.jpg") B JPEG"
python3 scripts/wrk-upload.py "$tmp/photo1m.jpg" "$tmp/upload.lua"
upload_load() { # port label
  echo 0 > "$tmp/peak"; peak_rss=0
  local up
  up=$(wrk -t2 -c16 -d"${UPLOAD_DURATION}s" --latency --timeout 30s -s "$tmp/upload.lua" "http://127.0.0.1:$1/api/images")
  echo "$2 uploads/s: $(awk '/^Requests\/sec/{print $2}' <<<"$up"), p50 $(awk '$1=="50%"{print $2}' <<<"$up"), p99 $(awk '$1=="99%"{print $2}' <<<"$up"), errors: $(awk '/Non-2xx/{print $NF}' <<<"$up" | grep . || echo 0) non-2xx, $(awk '/Socket errors/{print $0}' <<<"$up" | grep . || echo 'no socket errors')"
  awk '/^Requests\/sec/{print $2}' <<<"$up" > "$tmp/ups-$2"
}
upload_load "$kport" this
echo "kitteh peak RSS during uploads: $(( $(cat "$tmp/peak") / 1024 )) MiB"
start=$(date +%s)
while :; do
  status=$("$KITTEH_BIN" variants status)
  pending=$(awk '$1=="pending"||$1=="running"{s+=$2} END{print s+0}' <<<"$status")
  [ "$pending" = 0 ] && break
  [ $(( $(date +%s) - start )) -gt 600 ] && { echo "queue did NOT drain in 10 minutes"; break; }
  sleep 1
done
echo "variants queue after the load: $(tr '\n' ' ' <<<"$status")(drained $(( $(date +%s) - start )) s after the load ended)"

if [ -n "${BEFORE_BIN:-}" ]; then
  bdir=$tmp/before-up; mkdir -p "$bdir"; bport=$(free_port)
  KITTEH_DATABASE__URL="sqlite://$bdir/k.db" KITTEH_STORAGE__UPLOADS_DIR="$bdir/uploads" \
    KITTEH_SERVER__PORT=$bport env "${before_env[@]}" "$BEFORE_BIN" serve --migrate > "$bdir/log" 2>&1 &
  bpid=$!; pids+=("$bpid")
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$bport/readyz" >/dev/null && break; sleep 0.1; done
  upload_load "$bport" before
  echo "uploads, this build / before: $(awk "BEGIN{printf \"%.2f\", $(cat "$tmp/ups-this")/$(cat "$tmp/ups-before")}")x"
  kill "$bpid"; wait "$bpid" 2>/dev/null || true
fi

# Under attack: 1000 connections sending headers a byte a second and 1000
# idle keep-alive ones, all from 127.0.0.2, while a normal client on
# 127.0.0.1 fetches the image. Each server runs with the open-file limit
# services commonly get (1024), where this attack used to lock everyone out.
attack() { # bin label
  local dir=$tmp/attack-$2 port
  mkdir -p "$dir"; port=$(free_port)
  copy_db "$tmp/k.db" "$dir/k.db"; cp -r "$tmp/uploads" "$dir/uploads"
  (ulimit -n 1024; exec env KITTEH_DATABASE__URL="sqlite://$dir/k.db" KITTEH_STORAGE__UPLOADS_DIR="$dir/uploads" \
    KITTEH_SERVER__PORT=$port KITTEH_LOG__LEVEL=warn env -u KITTEH_RATE_LIMITS__UPLOADS_PER_MINUTE "$1" serve > "$dir/log" 2>&1) &
  local apid=$!; pids+=("$apid")
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
  python3 scripts/attack.py "$port" 127.0.0.2 1000 1000 "$ATTACK_SECONDS" > "$dir/attack.out" &
  local attacker=$!
  sleep 3
  # Meanwhile a client that opens a new connection for each of 100
  # requests (10 at a time, 2 s timeout): where the attack holds every file
  # descriptor, these are the ones that fail.
  (seq 100 | xargs -P10 -I{} curl -s -o /dev/null -m 2 -w '%{http_code}\n' "http://127.0.0.1:$port/img/$token" > "$dir/fresh.out" 2>/dev/null || true) &
  local fresh=$!
  local out
  out=$(wrk -t1 -c8 -d"$((ATTACK_SECONDS - 6))s" --latency --timeout 5s "http://127.0.0.1:$port/img/$token" 2>&1 || true)
  wait "$fresh" || true
  wait "$attacker" || true
  local errors
  errors=$(( $(awk '/Non-2xx/{print $NF}' <<<"$out" | grep . || echo 0) + $(awk -F'[ ,]+' '/Socket errors/{print $4+$6+$8+$10}' <<<"$out" | grep . || echo 0) ))
  echo "$2: normal client $(awk '/^Requests\/sec/{print $2}' <<<"$out") req/s, p50 $(awk '$1=="50%"{print $2}' <<<"$out"), p99 $(awk '$1=="99%"{print $2}' <<<"$out"), errors $errors"
  echo "$2: fresh connections: $(grep -c '^200$' "$dir/fresh.out" || true) of 100 answered 200"
  sed "s/^/$2: /" "$dir/attack.out"
  echo "$2: $(grep -c 'refused or closed' "$dir/log" || true) rate-limited warning lines in the log"
  kill "$apid" 2>/dev/null; wait "$apid" 2>/dev/null || true
}
echo
echo "== under attack: 1000 slow-header + 1000 idle connections from 127.0.0.2, ulimit -n 1024, ${ATTACK_SECONDS}s"
attack "$KITTEH_BIN" this
[ -n "${BEFORE_BIN:-}" ] && attack "$BEFORE_BIN" before
echo "kitteh idle RSS at the end: $(( $(rss "$kpid") / 1024 )) MiB"
