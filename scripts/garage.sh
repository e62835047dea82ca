# Throwaway single-node Garage (S3-compatible object store) for tests and
# benchmarks; sourced by scripts/test.sh, .ci/run and scripts/bench-s3.sh.
# garage_start exports TEST_S3_ENDPOINT, TEST_S3_REGION, TEST_S3_KEY_ID,
# TEST_S3_SECRET, TEST_S3_BUCKET and TEST_GARAGE_CONFIG (tests create more
# buckets through `garage -c $TEST_GARAGE_CONFIG`); garage_stop removes
# every trace.

garage_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

garage_cli() {
  garage -c "$GARAGE_TMP/garage.toml" "$@"
}

garage_start() {
  if ! command -v garage >/dev/null 2>&1; then
    echo "garage not found: cargo install garage --locked" >&2
    return 1
  fi
  GARAGE_TMP=$(mktemp -d /tmp/kitteh-garage.XXXXXX)
  local s3_port rpc_port admin_port node
  s3_port=$(garage_free_port)
  rpc_port=$(garage_free_port)
  admin_port=$(garage_free_port)
  cat >"$GARAGE_TMP/garage.toml" <<EOF
metadata_dir = "$GARAGE_TMP/meta"
data_dir = "$GARAGE_TMP/data"
db_engine = "sqlite"
replication_factor = 1
metadata_fsync = false
data_fsync = false
rpc_bind_addr = "127.0.0.1:$rpc_port"
rpc_public_addr = "127.0.0.1:$rpc_port"
rpc_secret = "$(python3 -c 'import secrets; print(secrets.token_hex(32))')"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3_port"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$admin_port"
admin_token = "$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
EOF
  # Garage refuses a config file that others can read when it holds secrets.
  chmod 600 "$GARAGE_TMP/garage.toml"
  garage -c "$GARAGE_TMP/garage.toml" server >"$GARAGE_TMP/server.log" 2>&1 &
  GARAGE_PID=$!
  local i
  for i in $(seq 1 100); do
    node=$(garage_cli node id -q 2>/dev/null | cut -d@ -f1) && [ -n "$node" ] && break
    if ! kill -0 "$GARAGE_PID" 2>/dev/null; then
      cat "$GARAGE_TMP/server.log" >&2
      return 1
    fi
    sleep 0.2
  done
  if [ -z "${node:-}" ]; then
    echo "garage did not come up" >&2
    cat "$GARAGE_TMP/server.log" >&2
    return 1
  fi
  # `node id` reads the key from disk; the layout commands need the RPC
  # listener, which may come up a moment later.
  for i in $(seq 1 100); do
    garage_cli status >/dev/null 2>&1 && break
    sleep 0.2
  done
  garage_cli layout assign -z dc1 -c 1G "$node" >/dev/null
  garage_cli layout apply --version 1 >/dev/null
  # A fixed key pair (Garage's formats: GK + 24 hex digits, 64 hex digits).
  TEST_S3_KEY_ID="GK$(python3 -c 'import secrets; print(secrets.token_hex(12))')"
  TEST_S3_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
  garage_cli key import --yes -n kitteh-test "$TEST_S3_KEY_ID" "$TEST_S3_SECRET" >/dev/null
  # The key may create buckets so that every test gets its own.
  garage_cli key allow --create-bucket kitteh-test >/dev/null
  garage_cli bucket create kitteh >/dev/null
  garage_cli bucket allow --read --write --owner kitteh --key kitteh-test >/dev/null
  export TEST_S3_ENDPOINT="http://127.0.0.1:$s3_port"
  export TEST_S3_REGION=garage
  export TEST_S3_BUCKET=kitteh
  export TEST_S3_KEY_ID TEST_S3_SECRET
  export TEST_GARAGE_CONFIG="$GARAGE_TMP/garage.toml"
  echo "Garage $(garage --version 2>/dev/null | awk '{print $2}' | sed 's/^cargo://') running for tests at $TEST_S3_ENDPOINT" >&2
}

garage_stop() {
  [ -n "${GARAGE_TMP:-}" ] || return 0
  kill "$GARAGE_PID" 2>/dev/null || true
  wait "$GARAGE_PID" 2>/dev/null || true
  rm -rf "$GARAGE_TMP"
  GARAGE_TMP=
}
