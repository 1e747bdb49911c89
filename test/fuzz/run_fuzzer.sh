#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time: run_fuzzer.sh TARGET SEED_DIR.
# New corpus entries go to a scratch folder, never into the source tree.
set -euo pipefail
target=$1
seeds=$2
seconds=${HUT_FUZZ_SECONDS:-20}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dirs=("$work")
[ -d "$seeds" ] && dirs+=("$seeds")
"$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
  -print_final_stats=1 "${dirs[@]}" 2>"$work.log" || { tail -60 "$work.log"; rm -f "$work.log"; exit 1; }
tail -5 "$work.log"
rm -f "$work.log"
