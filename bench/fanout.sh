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
# Environment: HUT_BENCH_BUILD (default build/release); HUT_BENCH_CLIENT (the
# hut-bench binary, default the build's own: one client for two builds of the
# server, see bench/before_after.sh); HUT_BENCH_SERVER=feed
# runs against bench/fanout_feed.py instead of spaced, to measure the client
# by itself.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
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
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
# The admin listener gets a free port chosen here (below the ephemeral range,
# where the client's own sockets could take it), so that the other
# `listening on` line is the bus's.
admin_port=$(/usr/bin/python3 "$root/bench/free_port.py")
mkdir -p "$work/data" "$work/plugins"
cat >"$work/spaced.toml" <<TOML
[space]
id = "bench"
name = "Benchmark space"
listen = "127.0.0.1:0"
data_dir = "$work/data"
plugins_dir = "$work/plugins"

[admin]
listen = "127.0.0.1:$admin_port"

[auth]
app_issuer = "hut-bench"

[store]
url = "sqlite://$work/data/space.db"
TOML
if [ "${HUT_BENCH_SERVER:-spaced}" = feed ]; then
  # The stand-in that measures hut-bench by itself (bench/fanout_feed.py).
  "${pin_server[@]}" /usr/bin/python3 "$root/bench/fanout_feed.py" 0 >"$work/spaced.log" 2>&1 &
else
  HUTOPIA_AUTH_APP_SECRET=$secret HUTOPIA_LIMITS_POST_RATE=1000000 HUTOPIA_LIMITS_POST_BURST=1000000 \
    "${pin_server[@]}" "$build/daemons/spaced/spaced" --config "$work/spaced.toml" >"$work/spaced.log" 2>&1 &
fi
server_pid=$!
port=
for _ in $(seq 200); do
  port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$work/spaced.log" | grep -vx "$admin_port" | head -n 1 || true)
  [ -n "$port" ] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.05
done
[ -n "$port" ] || { echo "fanout.sh: spaced did not start:" >&2; cat "$work/spaced.log" >&2; exit 1; }
sleep 0.3
rc=0
timeout 900 "${pin_client[@]}" "${HUT_BENCH_CLIENT:-$build/bench/hut-bench}" fanout --port "$port" --server-pid "$server_pid" \
  --secret "$secret" --issuer hut-bench --audience bench "$@" || rc=$?
kill -0 "$server_pid" 2>/dev/null || { echo "fanout.sh: spaced exited during the run:" >&2; tail -n 20 "$work/spaced.log" >&2; }
exit "$rc"
