#!/usr/bin/env bash
# Runs the public SCIM 2.0 conformance suite (scim2-tester, via `scim2 test`) and the
# Okta and Entra ID replay suites
# against a freshly built scimd, on a throwaway database.
#
# Usage: conformance/run.sh [sqlite|postgres]    (default: sqlite)
#
# Fails when the build fails, the server never gets healthy, `scim2 test`
# exits non-zero, or any check reports a status other than SUCCESS.
set -euo pipefail

backend="${1:-sqlite}"
case "$backend" in
  sqlite | postgres) ;;
  *) echo "usage: $0 [sqlite|postgres]" >&2; exit 2 ;;
esac

# Work from the repo root so cargo and the relative paths below behave the
# same whatever directory the script is called from.
cd "$(dirname "$0")/.."

echo "=== conformance ($backend): building scimd"
cargo build --release --locked
scimd="$PWD/target/release/scimd"

# scim2-tester checks these statuses; anything but SUCCESS counts as a failure.
STATUSES='SUCCESS|COMPLIANT|ACCEPTABLE|DEVIATION|ERROR|CRITICAL|SKIPPED'
# -w: never prompt for a password (there is no stdin in CI); trust auth is expected.
psql_admin=(psql -h 127.0.0.1 -p 5432 -U postgres -d postgres -w -q -v ON_ERROR_STOP=1)

tmp="$(mktemp -d)"
server_pid=""
pg_db=""

# One cleanup path for every exit: stop the server, drop the throwaway
# database, remove the temp dir. On failure, show the server log tail first,
# since that is usually where the reason is.
cleanup() {
  local rc=$?
  if [[ -n "$server_pid" ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [[ $rc -ne 0 && -s "$tmp/server.log" ]]; then
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
    name="scimd_conf_$$_$RANDOM"
    "${psql_admin[@]}" -c "create database $name"
    pg_db="$name"
    db_url="postgres://postgres@127.0.0.1:5432/$pg_db"
    ;;
esac

# Let the kernel pick a free loopback port (tiny race until scimd binds it,
# acceptable for a test run).
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
base="http://127.0.0.1:$port"

echo "=== conformance ($backend): starting scimd on $base"
"$scimd" serve --listen "127.0.0.1:$port" --database-url "$db_url" >"$tmp/server.log" 2>&1 &
server_pid=$!

healthy=""
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

echo "=== conformance ($backend): creating org and token"
"$scimd" org create conformance --name Conformance --database-url "$db_url"
# The token is printed alone on the last line of stdout.
token="$("$scimd" token create --org conformance --name conformance --database-url "$db_url" | tail -n 1)"
if [[ -z "$token" ]]; then
  echo "FAIL: 'scimd token create' printed no token" >&2
  exit 1
fi

# A real organization always has an admin. Without one, the first admin the suite creates (it
# picks the organization-extension role at random) becomes the last active admin, and scimd
# rightly refuses to demote it: 409, and a flaky check. A standing admin makes every run the same.
admin_status="$(curl -sS -o "$tmp/admin.json" -w '%{http_code}' -X POST "$base/scim/v2/Users" \
  -H "Authorization: Bearer $token" -H 'content-type: application/scim+json' \
  -d '{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:scimd:params:scim:schemas:extension:organization:2.0:User"],
       "userName": "standing-admin@conformance.test", "active": true,
       "urn:scimd:params:scim:schemas:extension:organization:2.0:User": {"role": "admin"}}')"
if [[ "$admin_status" != 201 ]]; then
  echo "FAIL: creating the standing admin answered $admin_status: $(cat "$tmp/admin.json")" >&2
  exit 1
fi

# The suite lives in a local venv (git-ignored) so nothing is installed
# system-wide; install only when missing, so later runs work offline and fast.
venv=conformance/.venv
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
if [[ ! -x "$venv/bin/scim2" ]]; then
  echo "=== conformance ($backend): installing scim2-tester into $venv"
  "$venv/bin/pip" install -q 'scim2-tester==0.5.2' 'scim2-cli==0.6.0'
fi

echo "=== conformance ($backend): running scim2 test"
# The token goes through the environment, not argv, so `ps` cannot show it.
rc=0
SCIM_CLI_HEADERS="Authorization: Bearer $token" \
  "$venv/bin/scim2" --url "$base/scim/v2" test 2>&1 | tee "$tmp/tester.out" || rc=$?

# Output format (scim2-cli 0.6.0): one "<STATUS> <title>" line per check,
# optionally followed by an indented reason line. Strip colours defensively.
sed 's/\x1b\[[0-9;]*m//g' "$tmp/tester.out" >"$tmp/tester.txt"
total="$(grep -cE "^($STATUSES) " "$tmp/tester.txt" || true)"
bad="$(grep -E "^($STATUSES) " "$tmp/tester.txt" | grep -cv '^SUCCESS ' || true)"

if [[ $rc -ne 0 || $bad -ne 0 || $total -eq 0 ]]; then
  echo "--- checks per status ---"
  grep -oE "^($STATUSES) " "$tmp/tester.txt" | sort | uniq -c || true
  echo "--- checks that did not succeed ---"
  awk -v re="^($STATUSES) " '$0 ~ re { show = ($1 != "SUCCESS") } show' "$tmp/tester.txt"
  echo "conformance ($backend): FAILED: $total checks, $bad not SUCCESS, scim2 exit code $rc"
  exit 1
fi
echo "conformance ($backend): $total checks, all SUCCESS"

echo "=== conformance ($backend): replaying Okta and Entra ID requests"
# The request shapes each provider documents, as data (okta.json, entra.json).
rc=0
SCIMD_REPLAY_TOKEN="$token" python3 conformance/replay.py --url "$base/scim/v2" \
  conformance/okta.json conformance/entra.json || rc=$?
if [[ $rc -ne 0 ]]; then
  echo "conformance ($backend): FAILED: the Okta / Entra ID replay failed (exit code $rc)"
  exit 1
fi
echo "conformance ($backend): Okta and Entra ID replays passed"
