#!/usr/bin/env bash
# The SCIM request log's cost, with one command:
#   bash bench/request-log.sh [--backends sqlite,postgres] [scimd-bench options, e.g. --sizes 10000 --seconds 5]
# Runs `userName eq` lookups and PATCH at concurrency 32 against a scimd with the request log
# off and on, back to back (off, on, off, on), on a new SQLite file and on a new Postgres
# database each time; prints each run's figures, the on/off ratio of each figure (mean of the
# two runs of each mode), and the request log's rows per organization after each run with the
# log on, against the bound (--request-log-max-rows, default 10000). SCIMD_BENCH_POSTGRES
# names the server (default: the test server).
set -euo pipefail
cd "$(dirname "$0")/.."
backends=(sqlite postgres)
if [[ ${1:-} == --backends ]]; then
    IFS=, read -r -a backends <<< "${2:?--backends needs a list, e.g. sqlite or sqlite,postgres}"
    shift 2
fi
for b in "${backends[@]}"; do
    [[ $b == sqlite || $b == postgres ]] || { echo "unknown backend $b (sqlite, postgres)" >&2; exit 2; }
done
cargo build --release --workspace --locked
pg=${SCIMD_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}
bin=${SCIMD_BIN:-target/release/scimd}
bench=target/release/scimd-bench
max_rows=10000
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fresh() {
    psql "$pg/postgres" -q -c "set client_min_messages = warning" -c "drop database if exists $1 with (force)" -c "create database $1"
}
for backend in "${backends[@]}"; do
    for round in 1 2; do
        for mode in off on; do
            if [[ $backend == sqlite ]]; then
                url="sqlite:$tmp/$mode$round.db"
            else
                fresh scimd_bench_log
                url="$pg/scimd_bench_log"
            fi
            echo "== $backend, request log $mode (round $round)"
            "$bench" --scimd "$bin" --database-url "$url" --concurrency 32 --phases lookup,patch \
                --serve-arg="--request-log=$mode" --serve-arg="--request-log-max-rows=$max_rows" "$@" \
                | tee "$tmp/out" | grep -v '^{'
            tail -n 1 "$tmp/out" > "$tmp/$backend-$mode-$round.json"
            if [[ $mode == on ]]; then
                q="select count(*) from request_log group by organization_id order by 1 desc limit 1"
                if [[ $backend == sqlite ]]; then
                    # On SQLite the log has a file of its own beside the main one.
                    rows=$(sqlite3 "$tmp/$mode$round-requests.db" "$q")
                else
                    rows=$(psql "$url" -tA -c "$q")
                fi
                echo "request_log rows after the run: $rows (bound $max_rows)"
                if (( rows > max_rows )); then
                    echo "FAIL: the request log holds more than its bound" >&2
                    exit 1
                fi
            fi
        done
    done
done
if [[ " ${backends[*]} " == *" postgres "* ]]; then
    psql "$pg/postgres" -q -c "set client_min_messages = warning" -c "drop database if exists scimd_bench_log with (force)"
fi
python3 - "$tmp" "${backends[@]}" <<'PY'
import json, sys, glob, os
tmp = sys.argv[1]
for backend in sys.argv[2:]:
    runs = {m: [json.load(open(f)) for f in sorted(glob.glob(f"{tmp}/{backend}-{m}-*.json"))] for m in ("off", "on")}
    print(f"== {backend}: request log on / off (mean of {len(runs['on'])} runs each)")
    for key in runs["off"][0]:
        if "lookup" not in key and "PATCH" not in key:
            continue
        mean = lambda m: sum(r[key]["req_per_s"] for r in runs[m]) / len(runs[m])
        off, on = mean("off"), mean("on")
        print(f"{key:<44} off {off:>8.0f} req/s  on {on:>8.0f} req/s  on/off {on / off:.3f}")
PY
