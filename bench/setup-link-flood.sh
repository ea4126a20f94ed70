#!/usr/bin/env bash
# Measures scimd's memory under a flood of password posts to one account-setup link: 64
# concurrent POSTs of a password to the same /setup/{secret}. Each Argon2id hash takes 19 MiB,
# so the peak shows how many ran at once. Prints the answers' status counts and the server's
# resident memory before and at its peak (VmHWM). Uses target/release/scimd (build it first:
# cargo build --release) on a throwaway SQLite database, loopback only.
#
# Usage: bench/setup-link-flood.sh [CONCURRENCY]   (default 64)
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-64}"
scimd="$PWD/target/release/scimd"
tmp="$(mktemp -d)"
db="sqlite://$tmp/flood.db"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
base="http://127.0.0.1:$port"
"$scimd" serve --listen "127.0.0.1:$port" --database-url "$db" >"$tmp/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 50); do curl -fsS -o /dev/null "$base/healthz" 2>/dev/null && break; sleep 0.2; done
token="$("$scimd" --database-url "$db" admin token create | tail -n 1)"
curl -fsS -o /dev/null -H "Authorization: Bearer $token" -H 'content-type: application/json' \
  -d '{"email":"flood@example.com","memberships":[{"org":"default"}]}' "$base/admin/v1/accounts"
# Without SMTP the setup mail waits in the outbox; the operator's command shows its link.
link="$("$scimd" --database-url "$db" mail list | grep -o "http://[^ ]*/setup/scimd_[A-Za-z0-9_-]*" | head -n 1)"
path="/setup/${link##*/setup/}"
rss() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
before="$(rss)"
seq "$n" | xargs -P "$n" -I{} curl -s -o /dev/null -w '%{http_code}\n' \
  --data "given_name=Flo&family_name=Od&password=flood+password+number+{}" "$base$path" >"$tmp/codes"
peak="$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")"
echo "answers: $(sort "$tmp/codes" | uniq -c | tr '\n' ' ')"
echo "server RSS before: $((before / 1024)) MiB; peak (VmHWM) after $n concurrent posts: $((peak / 1024)) MiB"
