# Shared by the benchmark scripts (sourced, not run). Benchmarks measure the
# binary that ships: the static musl release build, unless a script is given
# --glibc. Every server started here listens on 127.0.0.1 only.

MUSL_TARGET=x86_64-unknown-linux-musl
# Where cargo puts what it builds (CARGO_TARGET_DIR when set).
TARGET_DIR=${CARGO_TARGET_DIR:-target}

# Sets KITTEH_BIN to the release binary for BUILD ("musl" or "glibc"),
# building it first.
kitteh_binary() { # musl|glibc
  case "$1" in
    musl)
      cargo build -q --release --locked --target "$MUSL_TARGET" --bin kitteh
      KITTEH_BIN=$TARGET_DIR/$MUSL_TARGET/release/kitteh ;;
    glibc)
      cargo build -q --release --locked --bin kitteh
      KITTEH_BIN=$TARGET_DIR/release/kitteh ;;
    *) echo "unknown build $1" >&2; return 1 ;;
  esac
  echo "binary: $KITTEH_BIN ($("$KITTEH_BIN" version --verbose | awk -F': *' '/^(target|allocator)/{printf "%s ", $2}'))"
}

# Reads --glibc / --musl from the arguments into BUILD (default musl).
pick_build() {
  BUILD=musl
  for arg in "$@"; do
    case "$arg" in
      --glibc) BUILD=glibc ;;
      --musl) BUILD=musl ;;
    esac
  done
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

rss_kib() { awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# Photos from Debian's mate-backgrounds package (fetched once, never
# committed): a 17.9 MP photograph and a 1.8 MP one.
bench_photos() {
  PHOTOS=target/bench-photos
  if [ ! -d "$PHOTOS/mate" ]; then
    mkdir -p "$PHOTOS"
    (cd "$PHOTOS" && apt-get download mate-backgrounds >/dev/null && dpkg-deb -x mate-backgrounds_*.deb mate)
  fi
  BIG_PHOTO=$PHOTOS/mate/usr/share/backgrounds/mate/abstract/Elephants_5640x3172.jpg
  MID_PHOTO=$PHOTOS/mate/usr/share/backgrounds/mate/nature/Dune.jpg
}

# Starts BIN serve on a fresh SQLite database and folder under DIR, on a
# free port, with any extra environment given as NAME=VALUE; sets KPORT and
# KPID and waits until it is ready.
start_kitteh() { # bin dir [NAME=VALUE...]
  local bin=$1 dir=$2
  shift 2
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
  KPORT=$(free_port)
  # Run in the data folder: no config file is read, every setting is the
  # binary's own default (older builds know fewer keys).
  (cd "$dir" && exec env KITTEH_DATABASE__URL="sqlite://$dir/k.db" KITTEH_STORAGE__UPLOADS_DIR="$dir/uploads" \
      KITTEH_SERVER__PORT="$KPORT" KITTEH_LOG__LEVEL=warn "$@" \
      "$bin" serve --migrate > "$dir/kitteh.log" 2>&1) &
  KPID=$!
  for _ in $(seq 200); do curl -sf "http://127.0.0.1:$KPORT/readyz" >/dev/null && return 0; sleep 0.05; done
  echo "kitteh did not become ready:" >&2
  cat "$dir/kitteh.log" >&2
  return 1
}

stop_kitteh() {
  kill "$KPID" 2>/dev/null || true
  wait "$KPID" 2>/dev/null || true
}

# Uploads FILE to the server on KPORT; prints the token.
upload_token() { # file
  curl -sf -F "file=@$1" "http://127.0.0.1:$KPORT/api/images" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])'
}

# Waits until every size of TOKEN is ready.
wait_sizes() { # token
  until curl -sf "http://127.0.0.1:$KPORT/api/images/$1" \
      | python3 -c 'import json,sys; sys.exit(0 if all(s["state"]=="ready" for s in json.load(sys.stdin)["sizes"]) else 1)'; do
    sleep 0.005
  done
}

# wrk with latency percentiles: prints "req/s p50 p99 non2xx".
run_wrk() { # seconds connections url [header]
  local out
  if [ -n "${4:-}" ]; then
    out=$(wrk -t2 -c"$2" -d"$1s" --latency -H "$4" "$3")
  else
    out=$(wrk -t2 -c"$2" -d"$1s" --latency "$3")
  fi
  local rps p50 p99 non2xx
  rps=$(awk '/^Requests\/sec/{print $2}' <<<"$out")
  p50=$(awk '$1=="50%"{print $2}' <<<"$out")
  p99=$(awk '$1=="99%"{print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/{print $NF}' <<<"$out")
  echo "$rps $p50 $p99 ${non2xx:-0}"
}

# Median of the numbers given as arguments.
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
