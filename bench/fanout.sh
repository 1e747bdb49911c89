#!/usr/bin/env bash
# One fan-out measurement: a fresh spaced (fresh data dir, high post limits)
# pinned to CPU 0, hut-bench fanout pinned to CPU 1 with the given options;
# prints hut-bench's output. Loopback only; the server is stopped here.
#
#   bench/fanout.sh -c 1000 -w 1 -d 5                  # 1,000 members, one poster, window 64
#   bench/fanout.sh -c 1000 --inflight 1 -w 1 -d 5     # one post at a time (commit latency)
#   bench/fanout.sh -c 10 --posters 10 --rate 10000 -w 1 -d 5   # 10,000 posts/s offered
#   bench/fanout.sh -c 10000 --threads 2 -w 1 -d 5     # the client on two loops (more cores)
#
# Any hut-bench fanout option passes through (--inflight K posts in flight per
# poster, default 64; --threads T client loops, default 1). With --threads T > 1
# the client is pinned to CPUs 1..T when there are that many, else it is not
# pinned (and shares CPU 0 with the server: say so beside the figures).
#
# Environment: HUT_BENCH_STORE_URL (the spaced [store] url; default a fresh
# SQLite file); HUT_BENCH_NODES=N with HUT_BENCH_REDIS=URL runs N spaced nodes
# of one space (the same store, that Redis), all pinned to CPU 0, and gives
# hut-bench each node's port (bench/cluster.sh); HUT_BENCH_BUILD (default build/release); HUT_BENCH_CLIENT (the
# hut-bench binary, default the build's own: one client for two builds of the
# server, see bench/before_after.sh); HUT_BENCH_SERVER=feed
# runs against bench/fanout_feed.py instead of spaced, to measure the client
# by itself.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
source bench/server.sh
build=${HUT_BENCH_BUILD:-build/release}
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --wrap-mode=nodownload -Dbuildtype=release -Dtests=false >/dev/null
fi
meson compile -C "$build" -j 2 bench/hut-bench daemons/spaced/spaced >/dev/null
ulimit -n "$(ulimit -Hn)"
pin_server=(taskset -c 0)
pin_client=(taskset -c 1)
threads=1
prev=
for a in "$@"; do
  [ "$prev" = --threads ] && threads=$a
  case $a in --threads=*) threads=${a#--threads=} ;; esac
  prev=$a
done
if [ "$threads" -gt 1 ] 2>/dev/null; then
  if [ "$(nproc)" -gt "$threads" ]; then pin_client=(taskset -c "1-$threads"); else pin_client=(); fi
fi
[ "$(nproc)" -ge 2 ] || { pin_server=(); pin_client=(); echo "fanout.sh: one CPU only: no pinning" >&2; }

work=$(mktemp -d /tmp/hut-fanout.XXXXXX)
nodes=${HUT_BENCH_NODES:-1}
[ "$nodes" -ge 1 ] && [ "$nodes" -le 8 ] || { echo "fanout.sh: HUT_BENCH_NODES is 1 to 8" >&2; exit 2; }
[ "$nodes" = 1 ] || [ -n "${HUT_BENCH_REDIS:-}" ] || { echo "fanout.sh: several nodes need HUT_BENCH_REDIS" >&2; exit 2; }
server_pids=()
cleanup_on_exit

secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
# start_node N: node N (0, 1, ...) with its own data dir, config and log; its
# bus port is appended to client_args once it listens.
client_args=()
start_node() {
  local dir=$work/node-$1 admin_port port
  # The admin listener gets a free port chosen here (below the ephemeral range,
  # where the client's own sockets could take it), so that the other
  # `listening on` line is the bus's.
  admin_port=$(/usr/bin/python3 "$root/bench/free_port.py")
  space_config "$dir" "$admin_port"
  printf '\n[auth]\napp_issuer = "hut-bench"\n\n[store]\nurl = "%s"\n' \
    "${HUT_BENCH_STORE_URL:-sqlite://$dir/data/space.db}" >>"$dir/spaced.toml"
  if [ "$nodes" -gt 1 ]; then
    printf '\n[cluster]\nredis = "%s"\nnode = "n%s"\n' "$HUT_BENCH_REDIS" "$1" >>"$dir/spaced.toml"
  fi
  if [ "${HUT_BENCH_SERVER:-spaced}" = feed ]; then
    # The stand-in that measures hut-bench by itself (bench/fanout_feed.py).
    "${pin_server[@]}" /usr/bin/python3 "$root/bench/fanout_feed.py" 0 >"$dir/spaced.log" 2>&1 &
  else
    HUTOPIA_AUTH_APP_SECRET=$secret HUTOPIA_LIMITS_POST_RATE=1000000 HUTOPIA_LIMITS_POST_BURST=1000000 \
      "${pin_server[@]}" "$build/daemons/spaced/spaced" --config "$dir/spaced.toml" >"$dir/spaced.log" 2>&1 &
  fi
  server_pids+=($!)
  port=$(bus_port "$dir/spaced.log" "$admin_port" "${server_pids[-1]}")
  [ -n "$port" ] || { echo "fanout.sh: spaced did not start:" >&2; cat "$dir/spaced.log" >&2; exit 1; }
  client_args+=(--port "$port" --server-pid "${server_pids[-1]}")
}
for ((n = 0; n < nodes; n++)); do start_node "$n"; done
sleep 0.3
rc=0
timeout 900 "${pin_client[@]}" "${HUT_BENCH_CLIENT:-$build/bench/hut-bench}" fanout "${client_args[@]}" \
  --secret "$secret" --issuer hut-bench --audience bench "$@" || rc=$?
for pid in "${server_pids[@]}"; do
  kill -0 "$pid" 2>/dev/null || { echo "fanout.sh: spaced $pid exited during the run" >&2; rc=1; }
done
exit "$rc"
