#!/usr/bin/env bash
# Every figure of the performance targets on both databases, with one command:
#   bash bench/run.sh [scimd-bench options, e.g. --sizes 10000,100000 --seconds 5]
# Builds the release binaries, then runs scimd-bench against a scimd it starts on a new SQLite
# file, on a new Postgres database, and against two scimd replicas on one new Postgres database
# (creates and lookups). SCIMD_BENCH_POSTGRES names the server (default: the test server) and
# SCIMD_BIN the scimd binary to measure (default: target/release/scimd).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --locked
pg=${SCIMD_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}
bin=${SCIMD_BIN:-target/release/scimd}
bench=target/release/scimd-bench
fresh() {
    psql "$pg/postgres" -q -c "set client_min_messages = warning" -c "drop database if exists $1 with (force)" -c "create database $1"
}
echo "== SQLite"
"$bench" --scimd "$bin" --concurrency 32 --phases lookup,page,patch,put "$@"
echo "== Postgres"
fresh scimd_bench
"$bench" --scimd "$bin" --database-url "$pg/scimd_bench" --concurrency 32 --phases lookup,page,patch,put "$@"
echo "== Postgres, two replicas"
fresh scimd_bench_replicas
"$bench" --scimd "$bin" --database-url "$pg/scimd_bench_replicas" --replicas 2 --concurrency 32 --phases lookup "$@"
fresh scimd_bench
fresh scimd_bench_replicas
