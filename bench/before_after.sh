#!/usr/bin/env bash
# Compares two release builds of spaced in one run, with one client (the
# newer build's hut-bench): the echo table of bench/run.sh (spaced only) and
# three fan-out rows of bench/fanout.sh, the builds taking turns, ROUNDS times.
# Prints every result line with the build it came from; the ratios are
# computed from these by hand or with the awk below each section.
#
#   bench/before_after.sh OLD_BUILD NEW_BUILD [ROUNDS]
#
# OLD_BUILD and NEW_BUILD are meson build folders (-Dbuildtype=release) of two
# trees, each with daemons/spaced/spaced, plugins/echo.so and bench/hut-bench
# built. Run it on a quiet machine: nothing else running.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
old=$(cd "$1" && pwd)
new=$(cd "$2" && pwd)
rounds=${3:-2}
client=$new/bench/hut-bench
[ -x "$client" ] || { echo "before_after.sh: no $client" >&2; exit 1; }
fanout_rows=("-c 1000 -w 1 -d 5" "-c 1000 --inflight 1 -w 1 -d 5" "-c 10 --posters 10 -w 1 -d 5")

echo "before_after.sh, $(date -u '+%Y-%m-%d %H:%M UTC'); old $old, new $new; client $client"
echo "machine: nproc $(nproc), $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $(uname -sr); load $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$rounds"); do
  for b in old new; do
    dir=$old; [ $b = new ] && dir=$new
    echo "== round $round, $b: echo (bench/run.sh, spaced only, 3 runs), load $(cut -d' ' -f1-3 /proc/loadavg)"
    # The source tree of the build provides run.sh (its config matches its spaced).
    HUT_BENCH_BUILD=$dir HUT_BENCH_CLIENT=$client HUT_BENCH_ONLY=spaced HUT_BENCH_REPEAT=3 \
      bash "$root/bench/run.sh" 2>/dev/null | grep -E '^\| (echo|idle|storm)' | sed "s/^/$b /"
    for args in "${fanout_rows[@]}"; do
      # shellcheck disable=SC2086
      out=$(HUT_BENCH_BUILD=$dir HUT_BENCH_CLIENT=$client bash "$root/bench/fanout.sh" $args 2>&1 | grep '^result ' | tail -n 1)
      echo "$b fanout $args | load $(cut -d' ' -f1 /proc/loadavg) | $out"
    done
  done
done
