#!/usr/bin/env bash
# The console's figure: time to answer the Users page with 100,000 members (the first page, the
# next, searches, the status, role and group filters), measured over loopback against the release
# binary on a new SQLite file or a new Postgres database.
#   bash bench/console.sh [members, default 100000] [requests per page, default 200] [sqlite|postgres]
# Postgres: a database created for the run on SCIMD_CONSOLE_POSTGRES (default
# postgres://postgres@127.0.0.1:5432) and dropped afterwards; or SCIMD_CONSOLE_DATABASE_URL names
# an empty database to use. SCIMD_CONSOLE_BIN_DIR: measure the scimd and scimd-bench binaries
# there instead of building (to compare two builds on the same machine, back to back).
# Seeds members with scimd-bench (SCIM POSTs), then through SCIM: deactivates 1 in 100, and
# makes a group of 50 and one of 10,000 members. Makes one of them-to-be an admin through the
# admin API, signs in through the sign-in page as a browser does (cookie jar, form token), then
# GETs each page one request at a time and prints p50, p99 and max in milliseconds.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
reps=${2:-200}
backend=${3:-sqlite}
if [[ -n "${SCIMD_CONSOLE_BIN_DIR:-}" ]]; then
    bins=$SCIMD_CONSOLE_BIN_DIR
else
    cargo build --release --workspace --locked
    bins=target/release
fi
bin=$bins/scimd
dir=$(mktemp -d)
pgdb=
cleanup() {
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if [[ -n "$pgdb" ]]; then psql -q "$pgserver/postgres" -c "drop database if exists $pgdb" >/dev/null || true; fi
    rm -rf "$dir"
}
pid=
trap cleanup EXIT
case $backend in
    sqlite) db=${SCIMD_CONSOLE_DATABASE_URL:-sqlite:$dir/console.db} ;;
    postgres)
        if [[ -n "${SCIMD_CONSOLE_DATABASE_URL:-}" ]]; then
            db=$SCIMD_CONSOLE_DATABASE_URL
        else
            pgserver=${SCIMD_CONSOLE_POSTGRES:-postgres://postgres@127.0.0.1:5432}
            pgdb=scimd_console_bench_$$
            psql -q "$pgserver/postgres" -c "create database $pgdb" >/dev/null
            db=$pgserver/$pgdb
        fi ;;
    *) echo "backend must be sqlite or postgres" >&2; exit 2 ;;
esac
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
origin="http://127.0.0.1:$port"
"$bin" --database-url "$db" serve --listen "127.0.0.1:$port" >"$dir/out" 2>"$dir/err" &
pid=$!
for _ in $(seq 100); do curl -sf "$origin/healthz" >/dev/null && break; sleep 0.1; done
token=$(sed -n 's/.*Token (shown once, store it now): //p' "$dir/out")
"$bins/scimd-bench" --url "$origin/scim/v2" --token "$token" --sizes "$n" \
    --phases lookup --concurrency 1 --seconds 1 >/dev/null
# Inactive members and two groups, through SCIM: prints the two groups' ids.
read -r small large < <(python3 - "$port" "$token" <<'PY'
import http.client, json, re, sys
port, token = int(sys.argv[1]), sys.argv[2]
c = http.client.HTTPConnection("127.0.0.1", port)
h = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
def call(method, path, body=None):
    c.request(method, "/scim/v2" + path, body=json.dumps(body) if body is not None else None, headers=h)
    r = c.getresponse()
    data = r.read()
    if r.status >= 300:
        sys.exit(f"{method} {path}: {r.status} {data[:300]!r}")
    return json.loads(data) if data else None
ids, start = {}, 1
while True:
    page = call("GET", f"/Users?attributes=userName&count=1000&startIndex={start}")
    for u in page["Resources"]:
        m = re.match(r"user(\d+)@bench\.example$", u["userName"])
        if m:
            ids[int(m.group(1))] = u["id"]
    start += len(page["Resources"])
    if not page["Resources"] or start > page["totalResults"]:
        break
patch = lambda ops: {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops}
for i, uid in ids.items():
    if i % 100 == 7:
        call("PATCH", f"/Users/{uid}", patch([{"op": "replace", "value": {"active": False}}]))
def group(name, members):
    g = call("POST", "/Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name})
    for k in range(0, len(members), 1000):
        chunk = [{"value": m} for m in members[k:k + 1000]]
        call("PATCH", f"/Groups/{g['id']}", patch([{"op": "add", "path": "members", "value": chunk}]))
    return g["id"]
small = group("Bench 50", [ids[i] for i in sorted(ids) if i % 2000 == 3])
large = group("Bench 10000", [ids[i] for i in sorted(ids) if i % 10 == 5])
print(small, large)
PY
)
provider=$("$bin" --database-url "$db" admin token create --name console-bench | tail -1)
curl -sf -X POST "$origin/admin/v1/orgs/default/members" -H "Authorization: Bearer $provider" \
    -H 'Content-Type: application/json' \
    -d '{"email": "bench-admin@example.com", "role": "admin"}' >/dev/null
echo 'console bench password' | "$bin" --database-url "$db" account set-password bench-admin@example.com >/dev/null
jar="$dir/jar"
form=$(curl -sf -c "$jar" "$origin/signin" | sed -n 's/.*name="form_token" value="\([^"]*\)".*/\1/p')
curl -sf -b "$jar" -c "$jar" -o /dev/null "$origin/signin" \
    --data-urlencode "form_token=$form" --data-urlencode email=bench-admin@example.com \
    --data-urlencode 'password=console bench password'
measure() {
    local label=$1 path=$2
    curl -sf -b "$jar" -o "$dir/page" "$origin$path"
    grep -q 'id="total"' "$dir/page" || { echo "FAIL: $path is not the Users page" >&2; exit 1; }
    local total
    total=$(sed -n 's/.*<p id="total">\([^<]*\)<.*/\1/p' "$dir/page")
    for _ in $(seq "$reps"); do
        curl -sf -b "$jar" -o /dev/null -w '%{time_total}\n' "$origin$path"
    done | sort -n | awk -v label="$label" -v total="$total" '
        { t[NR] = $1 * 1000 }
        END { printf "%-34s %-24s p50 %6.1f ms  p99 %6.1f ms  max %6.1f ms  (%d requests)\n",
              label, total, t[int(NR*0.5)], t[int(NR*0.99)], t[NR], NR }'
}
# A database that has just been filled has no planner statistics yet; autovacuum gathers them
# soon after in a real deployment, so measure the steady state rather than that minute.
if [[ $backend == postgres ]]; then psql -q "$db" -c analyze; fi
echo "== Users page, $n members, ${db%%:*}, load average $(cut -d' ' -f1-3 /proc/loadavg)"
measure "first page" "/o/default/users"
measure "next page (keyset)" "$(curl -sf -b "$jar" "$origin/o/default/users" | sed -n 's/.*href="\([^"]*\)" id="next-page".*/\1/p' | sed 's/&amp;/\&/g')"
# A member in the middle (user0050000 at 100,000).
measure "search: exact address" "/o/default/users?q=user$(printf %07d $((n / 2)))%40bench.example"
measure "search: part of a name (100)" "/o/default/users?q=user00500"
measure "search: part of a name (11,111)" "/o/default/users?q=GIVEN1"
measure "search: two characters" "/o/default/users?q=n9"
measure "filter: inactive members" "/o/default/users?status=inactive"
measure "filter: active members" "/o/default/users?status=active"
measure "filter: admins" "/o/default/users?role=admin"
measure "filter: group of 50" "/o/default/users?group=$small"
measure "filter: group of 10,000" "/o/default/users?group=$large"
measure "group of 10,000, inactive" "/o/default/users?group=$large&status=inactive"
measure "search in a group of 10,000" "/o/default/users?group=$large&q=given1"
