#!/usr/bin/env bash
# A fuzz campaign: runs every target of a fuzz build one after the other,
# each in one process on one core for SECONDS seconds or RUNS executions, whichever
# comes first, from its seed corpus and a scratch corpus that persists between
# campaigns (build/fuzz/campaign/<target>), and prints one line per target:
# executions, coverage edges, features, corpus size, crashes.
#
#   test/fuzz/campaign.sh [BUILD_DIR] [SECONDS] [RUNS]
#   test/fuzz/campaign.sh build/fuzz 180              # a short campaign
#   test/fuzz/campaign.sh build/fuzz 86400 10000000   # ten million runs each (a quiet machine)
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${1:-$root/build/fuzz}
seconds=${2:-180}
runs=${3:--1}
printf '%-12s %12s %8s %8s %8s %s\n' target executions edges features corpus result
for exe in "$build"/test/fuzz/*_fuzz; do
  name=$(basename "$exe" _fuzz)
  work="$build/campaign/$name"
  mkdir -p "$work"
  seeds=()
  [ -d "$root/test/fuzz/corpus/$name" ] && seeds=("$root/test/fuzz/corpus/$name")
  log="$build/campaign/$name.log"
  ("$exe" -max_total_time="$seconds" -runs="$runs" -timeout=10 \
    -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 -artifact_prefix="$build/campaign/$name-" \
    "$work" "${seeds[@]}") >"$log" 2>&1
  rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
  last=$(grep -E '^#[0-9]+' "$log" | grep -o 'cov: [0-9]* ft: [0-9]* corp: [0-9]*' | tail -1)
  edges=$(echo "$last" | awk '{print $2}')
  ft=$(echo "$last" | awk '{print $4}')
  corp=$(echo "$last" | awk '{print $6}')
  result=ok
  [ $rc -ne 0 ] && result="FAILED (rc $rc, see $log)"
  printf '%-12s %12s %8s %8s %8s %s\n' "$name" "${execs:-?}" "${edges:-?}" "${ft:-?}" "${corp:-?}" "$result"
done
