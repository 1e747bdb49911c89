#!/usr/bin/env bash
# One space on SQLite, on PostgreSQL and on two nodes, under the same load, in
# one run (bench/README.md, "One space on PostgreSQL and on two nodes"):
#   a  one spaced on SQLite
#   b  one spaced on PostgreSQL
#   c  two spaced nodes on PostgreSQL and Redis (members round-robin over the
#      two, posters on the first, so that half the deliveries cross nodes)
#   d  durable posts/s on PostgreSQL: one spaced, the same options followed by
#      HUT_BENCH_DURABLE (default "-c 10 --posters 10": every member posts)
# Each row is one bench/fanout.sh run with the options given here, e.g.
#
#   bench/cluster.sh -c 1000 --rate 5000 -w 1 -d 5
#
# PostgreSQL (fsync on: durable) and Redis are started here on Unix sockets in
# a temporary folder (scripts/lib/pg_redis.sh), with a fresh database per row,
# and stopped at the end. Prints each row's hut-bench `result` line labelled,
# then the ratios. Exit status 1 when a row failed.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
source scripts/lib/pg_redis.sh
source bench/server.sh
pg_redis_check || exit 1

work=$(mktemp -d /tmp/hut-cluster-bench.XXXXXX)
child=  # the fanout.sh of the row under way
cleanup() {
  trap - EXIT
  [ -z "$child" ] || stop_pids "$child"
  pg_redis_stop
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
pg_redis_start "$work" -c fsync=on -c synchronous_commit=on
new_db() {  # a fresh database for one row; prints its store url
  pg_psql "CREATE DATABASE $1" >/dev/null
  echo "postgresql:///$1?host=$pg_dir&user=hut"
}

echo "cluster.sh: spaced pinned to CPU 0 (in row c both nodes share it), hut-bench to CPU 1;"
echo "cluster.sh: PostgreSQL and Redis not pinned, and their CPU is not in the server figures"
echo "cluster.sh: PostgreSQL $(pg_psql "SELECT string_agg(name || '=' || setting, ' ' ORDER BY name) FROM pg_settings
  WHERE name IN ('fsync', 'synchronous_commit', 'wal_sync_method', 'full_page_writes', 'shared_buffers', 'server_version')")"
echo "cluster.sh: hut-bench fanout $*"

rc=0
results=()
row() {  # row LABEL [VAR=VALUE ...] -- OPTIONS...: one fanout.sh run
  local label=$1 line
  shift
  local env=()
  while [ "$1" != -- ]; do env+=("$1"); shift; done
  shift
  # In the background, so that a signal to this script stops the row at once.
  env "${env[@]}" bash bench/fanout.sh "$@" >"$work/row-$label.log" 2>&1 &
  child=$!
  wait "$child" || rc=1
  child=
  line=$(grep '^result ' "$work/row-$label.log" | tail -n 1 || true)
  if [ -z "$line" ]; then
    echo "row $label: no result line:" >&2
    tail -n 20 "$work/row-$label.log" >&2
    rc=1
  fi
  echo "$label $line"
  results+=("$label $line")
}
row a -- "$@"
row b "HUT_BENCH_STORE_URL=$(new_db row_b)" -- "$@"
row c "HUT_BENCH_STORE_URL=$(new_db row_c)" HUT_BENCH_NODES=2 "HUT_BENCH_REDIS=$REDIS_URL" -- "$@"
# shellcheck disable=SC2086  # HUT_BENCH_DURABLE is a list of options
row d "HUT_BENCH_STORE_URL=$(new_db row_d)" -- "$@" ${HUT_BENCH_DURABLE:--c 10 --posters 10}

printf '%s\n' "${results[@]}" | /usr/bin/python3 -c '
import sys
rows = {}
for line in sys.stdin:
    label, _, rest = line.strip().partition(" ")
    rows[label] = dict(kv.split("=", 1) for kv in rest.split()[1:] if "=" in kv)
def num(label, key):
    try:
        return float(rows[label][key])
    except (KeyError, ValueError):
        return None
def ratio(x, y):
    return f"{x / y:.2f}" if x is not None and y and y > 0 and x >= 0 else "n/a"
print("summary: b/a deliveries/s", ratio(num("b", "delivery_rate"), num("a", "delivery_rate")), "(target >= 0.8)")
print("summary: c/a server CPU per delivery",
      ratio(num("c", "server_cpu_us_per_delivery"), num("a", "server_cpu_us_per_delivery")), "(target <= 1.3)")
p99 = num("c", "cross_p99_us")
print("summary: c cross-node p99 post to delivery", f"{p99 / 1000:.2f} ms" if p99 is not None else "n/a",
      "at", rows.get("c", {}).get("post_rate", "n/a"), "posts/s (target < 20 ms at 5,000 posts/s)")
print("summary: d durable posts/s on PostgreSQL", rows.get("d", {}).get("post_rate", "n/a"))
print("summary: errors", " ".join(k + "=" + v.get("errors", "n/a") for k, v in sorted(rows.items())))
'
exit "$rc"
