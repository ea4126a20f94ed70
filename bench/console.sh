#!/usr/bin/env bash
# The console's figure: time to answer the Users page with 100,000 members (the first page, a
# search and a filter), measured over loopback against the release binary on a new SQLite file
# (or on Postgres with SCIMD_CONSOLE_DATABASE_URL=postgres://…/EMPTY_DB).
#   bash bench/console.sh [members, default 100000] [requests per page, default 200]
# Seeds members with scimd-bench (SCIM POSTs), makes one of them-to-be an admin through the
# admin API, signs in through the sign-in page as a browser does (cookie jar, form token), then
# GETs each page one request at a time and prints p50, p99 and max in milliseconds.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
reps=${2:-200}
cargo build --release --workspace --locked
bin=target/release/scimd
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
db=${SCIMD_CONSOLE_DATABASE_URL:-sqlite:$dir/console.db}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
origin="http://127.0.0.1:$port"
"$bin" --database-url "$db" serve --listen "127.0.0.1:$port" >"$dir/out" 2>"$dir/err" &
pid=$!
for _ in $(seq 100); do curl -sf "$origin/healthz" >/dev/null && break; sleep 0.1; done
token=$(sed -n 's/.*Token (shown once, store it now): //p' "$dir/out")
target/release/scimd-bench --url "$origin/scim/v2" --token "$token" --sizes "$n" \
    --phases lookup --concurrency 1 --seconds 1 >/dev/null
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
        END { printf "%-34s %-16s p50 %6.1f ms  p99 %6.1f ms  max %6.1f ms  (%d requests)\n",
              label, total, t[int(NR*0.5)], t[int(NR*0.99)], t[NR], NR }'
}
echo "== Users page, $n members, ${db%%:*}"
measure "first page" "/o/default/users"
measure "next page (keyset)" "$(curl -sf -b "$jar" "$origin/o/default/users" | sed -n 's/.*href="\([^"]*\)" id="next-page".*/\1/p' | sed 's/&amp;/\&/g')"
measure "search: exact address" "/o/default/users?q=user0050000%40bench.example"
measure "search: part of a name" "/o/default/users?q=user00500"
measure "filter: inactive members" "/o/default/users?status=inactive"
measure "filter: admins" "/o/default/users?role=admin"
