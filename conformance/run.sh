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

# scim2-tester checks these statuses; anything but SUCCESS counts as a failure.
STATUSES='SUCCESS|COMPLIANT|ACCEPTABLE|DEVIATION|ERROR|CRITICAL|SKIPPED'

suite=conformance
source conformance/server.sh
start_scimd

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
