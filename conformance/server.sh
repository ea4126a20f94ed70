# Sourced by the suites in conformance/ (run.sh, schemathesis.sh): builds scimd, gives it a
# throwaway database and a loopback port, starts it and waits until it is healthy, and cleans
# up on every exit (server stopped, database dropped, temp dir removed).
#
# The caller runs from the repo root with `set -euo pipefail`, sets `suite` (a name for
# messages and the database) and `backend` (sqlite or postgres), then calls start_scimd.
# Afterwards $scimd, $db_url, $base and $tmp are set.

# -w: never prompt for a password (there is no stdin in CI); trust auth is expected.
psql_admin=(psql -h 127.0.0.1 -p 5432 -U postgres -d postgres -w -q -v ON_ERROR_STOP=1)

tmp="$(mktemp -d)"
server_pid=""
pg_db=""

# One cleanup path for every exit. On failure, show the server log first, since that is
# usually where the reason is.
cleanup() {
  local rc=$?
  if [[ -n "$server_pid" ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [[ $rc -ne 0 && -s "$tmp/server.log" ]]; then
    echo "--- errors in the server log ---"
    grep -E 'ERROR|panicked' "$tmp/server.log" | tail -n 50 || true
    echo "--- last 100 lines of the server log ---"
    tail -n 100 "$tmp/server.log"
  fi
  if [[ -n "$pg_db" ]]; then
    # WITH (FORCE) so a lingering pooled connection cannot keep it alive.
    "${psql_admin[@]}" -c "drop database if exists $pg_db with (force)" ||
      echo "warning: could not drop database $pg_db" >&2
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
# Make Ctrl-C / SIGTERM go through the EXIT trap too.
trap 'exit 130' INT
trap 'exit 143' TERM

start_scimd() {
  echo "=== $suite ($backend): building scimd"
  cargo build --release --locked
  scimd="$PWD/target/release/scimd"

  case "$backend" in
    sqlite)
      db_url="sqlite://$tmp/scimd.db"
      ;;
    postgres)
      # Postgres is a hard requirement here: a silent skip would hide regressions.
      if ! pg_isready -q -h 127.0.0.1 -p 5432; then
        echo "FAIL: PostgreSQL is not reachable on 127.0.0.1:5432" >&2
        exit 1
      fi
      # A unique name, so parallel or leftover runs never share state.
      pg_db="scimd_${suite}_$$_$RANDOM"
      "${psql_admin[@]}" -c "create database $pg_db"
      db_url="postgres://postgres@127.0.0.1:5432/$pg_db"
      ;;
  esac

  # Let the kernel pick a free loopback port (tiny race until scimd binds it, acceptable for
  # a test run).
  local port
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
  base="http://127.0.0.1:$port"

  echo "=== $suite ($backend): starting scimd on $base"
  "$scimd" serve --listen "127.0.0.1:$port" --database-url "$db_url" >"$tmp/server.log" 2>&1 &
  server_pid=$!

  local healthy=""
  for _ in $(seq 30); do
    if curl -fsS -o /dev/null --max-time 2 "$base/healthz" 2>/dev/null; then
      healthy=1
      break
    fi
    # Stop waiting early if the server already died (bad flag, port taken, ...).
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 1
  done
  if [[ -z "$healthy" ]]; then
    if kill -0 "$server_pid" 2>/dev/null; then
      echo "FAIL: scimd did not answer $base/healthz within 30 s" >&2
    else
      echo "FAIL: scimd exited before answering $base/healthz" >&2
    fi
    exit 1 # the EXIT trap prints the server log
  fi
}
