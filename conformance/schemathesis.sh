#!/usr/bin/env bash
# Runs schemathesis (property-based API testing from the OpenAPI document) against the admin
# API of a freshly built scimd on a throwaway database, with a provider admin token.
#
# Usage: conformance/schemathesis.sh [sqlite|postgres]    (default: sqlite)
#
# Environment: SCIMD_SCHEMATHESIS_EXAMPLES (default 30) examples per operation and phase;
# SCIMD_SCHEMATHESIS_SEED (default 1) the generator's seed, fixed so that CI runs repeat; set
# another one (or "random") for a longer exploratory run. No example database is kept between
# runs, so a run depends on its seed alone.
#
# Fails when the build fails, the server never gets healthy, or schemathesis reports a failure
# of these checks: no 5xx, every status code documented for its operation, every response's
# content type, headers and body matching the document.
set -euo pipefail

backend="${1:-sqlite}"
case "$backend" in
  sqlite | postgres) ;;
  *) echo "usage: $0 [sqlite|postgres]" >&2; exit 2 ;;
esac
examples="${SCIMD_SCHEMATHESIS_EXAMPLES:-30}"
seed="${SCIMD_SCHEMATHESIS_SEED:-1}"

cd "$(dirname "$0")/.."

suite=schemathesis
source conformance/server.sh
start_scimd

# The token is printed alone on the last line of stdout.
token="$("$scimd" admin token create --name schemathesis --database-url "$db_url" | tail -n 1)"
if [[ -z "$token" ]]; then
  echo "FAIL: 'scimd admin token create' printed no token" >&2
  exit 1
fi

# A git-ignored venv of its own, installed only when missing (later runs work offline).
venv="$PWD/conformance/.venv-schemathesis"
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
if [[ ! -x "$venv/bin/st" ]]; then
  echo "=== schemathesis ($backend): installing schemathesis into $venv"
  "$venv/bin/pip" install -q 'schemathesis==4.32.5'
fi

checks=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance
echo "=== schemathesis ($backend): $examples examples per operation, seed $seed, checks $checks"
seed_args=()
[[ "$seed" == random ]] || seed_args=(--seed "$seed")
rc=0
# The token goes through the environment into the header, never onto the command line. It
# runs in the temp dir, where schemathesis leaves its cache.
cd "$tmp"
SCIMD_ST_TOKEN="$token" timeout 1200 "$venv/bin/python" - "$base" "$checks" "$examples" "${seed_args[@]}" <<'PY' || rc=$?
import os, sys
from schemathesis.cli import schemathesis as st
base, checks, examples, *seed = sys.argv[1:]
args = ["run", f"{base}/admin/v1/openapi.json", "--url", f"{base}/admin/v1",
        "-H", f"Authorization: Bearer {os.environ['SCIMD_ST_TOKEN']}",
        "--checks", checks, "--max-examples", examples, "--request-timeout", "30",
        "--no-color", "--warnings", "off", "--generation-database", "none", *seed]
st.main(args=args, prog_name="st")
PY
if [[ $rc -ne 0 ]]; then
  echo "schemathesis ($backend): FAILED (exit code $rc)"
  exit 1
fi
echo "schemathesis ($backend): no failures"
