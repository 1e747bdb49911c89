#!/usr/bin/env bash
# Echo latency of two release builds of spaced at fixed offered rates (an open
# loop: hut-bench echo --rate), the builds taking turns, one client (the newer
# build's hut-bench), so that the latency is the server's and not a saturated
# client's queue. Prints every echo result line labelled with round, rate and
# build; bench/README.md says how the medians were taken.
#
#   bench/echo_rates.sh OLD_BUILD NEW_BUILD [ROUNDS] [RATES]
#
# ROUNDS defaults to 3, RATES to "20000 40000"; each round runs bench/run.sh
# (spaced only, three 5 s echo runs) per rate and build. Quiet machine only.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
old=$(cd "$1" && pwd)
new=$(cd "$2" && pwd)
rounds=${3:-3}
rates=${4:-"20000 40000"}
client=$new/bench/hut-bench
[ -x "$client" ] || { echo "echo_rates.sh: no $client" >&2; exit 1; }
echo "echo_rates.sh, $(date -u '+%Y-%m-%d %H:%M UTC'); old $old, new $new; load $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$rounds"); do
  for r in $rates; do
    for b in old new; do
      dir=$old; [ $b = new ] && dir=$new
      HUT_BENCH_RATE=$r HUT_BENCH_IDLE=1000 HUT_BENCH_BUILD=$dir HUT_BENCH_CLIENT=$client \
        HUT_BENCH_ONLY=spaced HUT_BENCH_REPEAT=3 bash "$root/bench/run.sh" 2>/dev/null |
        grep -E 'result mode=echo' | sed "s/^/r$round rate$r $b /"
    done
  done
done
echo "end $(date -u '+%H:%M') load $(cut -d' ' -f1-3 /proc/loadavg)"
