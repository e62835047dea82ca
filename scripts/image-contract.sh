#!/usr/bin/env bash
# Tests what the Dockerfile's final stage promises, without a Docker engine:
# builds the static musl binary, lays out an empty root folder exactly as the
# `FROM scratch` stage does (the layout is read from the Dockerfile itself,
# so the two cannot drift apart), and runs the binary there under chroot as
# the image's non-root user: version, migrate, serve, healthcheck, an upload
# whose sizes appear, and a clean SIGTERM. Also enforces the size budget.
# Needs root (chroot), the musl target, musl-tools and lld (the linker
# .cargo/config.toml names for the static binary).
set -euo pipefail
cd "$(dirname "$0")/.."

budget=$((16 * 1000 * 1000))    # fail above 16 MB
goal=$((15 * 1000 * 1000))      # aim: 15 MB or less
target=x86_64-unknown-linux-musl

command -v ld.lld >/dev/null || { echo "FAIL: ld.lld not found: apt-get install lld" >&2; exit 1; }
echo "== building the static binary"
cargo build -q --release --locked --target "$target" --bin kitteh
bin=target/$target/release/kitteh
size=$(stat -c %s "$bin")
ldd_out=$(ldd "$bin" 2>&1 || true)
if ! grep -qE 'not a dynamic executable|statically linked' <<<"$ldd_out"; then
  echo "FAIL: $bin is dynamically linked" >&2
  ldd "$bin" >&2
  exit 1
fi
certs=/etc/ssl/certs/ca-certificates.crt
image_size=$((size + $(stat -c %s "$certs") + $(stat -c %s config/kitteh.toml)))
echo "binary: $size bytes ($(awk "BEGIN{printf \"%.2f\", $size/1e6}") MB), statically linked"
echo "image contents: $image_size bytes ($(awk "BEGIN{printf \"%.2f\", $image_size/1e6}") MB); goal $((goal/1000000)) MB, budget $((budget/1000000)) MB"
mkdir -p target
printf '%s\t%s\t%s\n' "$(date -u +%Y-%m-%dT%H:%MZ)" "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" "$size" >> target/binary-size-history.tsv
# The output is captured first: `grep -q` stops reading at the first match.
version_out=$("$bin" version --verbose)
grep -q '^allocator: *mimalloc' <<<"$version_out" || { echo "FAIL: the static binary does not use mimalloc" >&2; exit 1; }
if [ "$image_size" -gt "$budget" ]; then
  echo "FAIL: the image would be $image_size bytes, over the $budget byte budget" >&2
  exit 1
fi

echo "== laying out the final stage"
final=$(awk '/^FROM scratch/{f=1} f' Dockerfile)
copies=$(printf '%s\n' "$final" | awk '$1=="COPY"{print $NF}' | sort | tr '\n' ' ')
expected="/config/kitteh.toml /data /etc/ssl/certs/ca-certificates.crt /kitteh "
if [ "$copies" != "$expected" ]; then
  echo "FAIL: the Dockerfile's final stage copies [$copies], this script lays out [$expected]" >&2
  exit 1
fi
uid=$(printf '%s\n' "$final" | awk '$1=="USER"{split($2,a,":"); print a[1]}')
# ENV lines, with their continuations, as KEY=VALUE words.
mapfile -t envs < <(printf '%s\n' "$final" | awk '
  /^ENV /{on=1; sub(/^ENV /,"")}
  on{line=$0; cont=sub(/\\$/,"",line); n=split(line,w," "); for(i=1;i<=n;i++) if (w[i] ~ /=/) print w[i]; if(!cont) on=0}')
root=$(mktemp -d /tmp/kitteh-root.XXXXXX)
chmod 0755 "$root"
pid=
cleanup() {
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  rm -rf "$root"
}
trap cleanup EXIT
install -m 0755 "$bin" "$root/kitteh"
install -D -m 0644 "$certs" "$root/etc/ssl/certs/ca-certificates.crt"
install -D -m 0644 config/kitteh.toml "$root/config/kitteh.toml"
mkdir -p "$root/data"
chown "$uid:$uid" "$root/data"
echo "root folder: $(cd "$root" && find . -mindepth 1 | sort | tr '\n' ' ')"
echo "user: $uid; environment: ${envs[*]}"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
chroot_bin=$(command -v chroot)
in_image() {
  env -i "${envs[@]}" KITTEH_SERVER__PORT="$port" "$chroot_bin" --userspec="$uid:$uid" "$root" /kitteh "$@"
}

echo "== kitteh version"
in_image version --verbose
echo "== kitteh migrate"
in_image migrate
echo "== kitteh serve"
# Started directly, not through the function, so that $! is the server's
# own pid (env and chroot exec into it) and SIGTERM reaches it.
env -i "${envs[@]}" KITTEH_SERVER__PORT="$port" "$chroot_bin" --userspec="$uid:$uid" "$root" /kitteh serve > "$root.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  in_image healthcheck >/dev/null 2>&1 && break
  sleep 0.1
done
echo "== kitteh healthcheck"
in_image healthcheck
echo "== upload through the API"
photo=$(mktemp /tmp/kitteh-photo.XXXXXX)
python3 - "$photo" <<'PY'
import struct, sys, zlib
w, h = 640, 400
raw = b"".join(b"\0" + bytes(v for x in range(w) for v in (x * 255 // w, y * 255 // h, 128)) for y in range(h))
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)
PY
reply=$(curl -sf -F "file=@$photo;filename=contract.png" "http://127.0.0.1:$port/api/images")
rm -f "$photo"
token=$(printf '%s' "$reply" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
echo "uploaded: $token"
for _ in $(seq 200); do
  state=$(curl -sf "http://127.0.0.1:$port/api/images/$token" | python3 -c 'import json,sys; print(" ".join(s["name"]+"="+s["state"] for s in json.load(sys.stdin)["sizes"]))')
  case "$state" in *pending*|*running*) sleep 0.1 ;; *) break ;; esac
done
echo "sizes: $state"
# Every configured size, each ready: an empty or partial list fails too.
if [ "$state" != "tiny=ready large=ready monstrous=ready" ]; then
  echo "FAIL: expected tiny, large and monstrous ready, got [$state]" >&2
  cat "$root.log" >&2
  exit 1
fi
for size in tiny large monstrous; do
  [ -s "$root/data/uploads/$token-$size.png" ] || { echo "FAIL: $token-$size.png was not written" >&2; exit 1; }
done
ls -l "$root/data/uploads" | sed 's/^/  /'
echo "== SIGTERM"
kill -TERM "$pid"
set +e
wait "$pid"
code=$?
set -e
pid=
echo "serve exited with $code"
if [ "$code" != 0 ]; then
  cat "$root.log" >&2
  exit 1
fi
rm -f "$root.log"
echo "image contract: OK"
