# shellcheck shell=bash
# Sourced by bench/run.sh, bench/fanout.sh, bench/cluster.sh and
# bench/storm_relay.sh: the servers (and scripts) they start in the background.
#
# bus_port LOG ADMIN_PORT PID: waits (at most about 10 s) for the server PID,
# writing to LOG, to print a `listening on` line for a port other than
# ADMIN_PORT, and prints that port; prints nothing when PID exits first or the
# time runs out.
bus_port() {
  local port=
  for _ in $(seq 200); do
    port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$1" | grep -vx "$2" | head -n 1 || true)
    [ -n "$port" ] && break
    kill -0 "$3" 2>/dev/null || break
    sleep 0.05
  done
  echo "$port"
}

# stop_pids PID...: SIGTERM to each, then waits (at most about 10 s each) for
# it to end, and SIGKILL when it has not.
stop_pids() {
  local pid
  for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "$@"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
}

# space_config DIR ADMIN_PORT: writes the first part of a benchmark space's
# DIR/spaced.toml (the space "bench", its data and plugins folders under DIR,
# made here, and the admin listener on ADMIN_PORT); the caller appends [auth],
# [store] and the rest.
space_config() {
  mkdir -p "$1/data" "$1/plugins"
  cat >"$1/spaced.toml" <<EOF
[space]
id = "bench"
name = "Benchmark space"
listen = "127.0.0.1:0"
data_dir = "$1/data"
plugins_dir = "$1/plugins"

[admin]
listen = "127.0.0.1:$2"
EOF
}

# cleanup_on_exit: when the script ends, stops every pid in the caller's
# array `server_pids` and removes the caller's folder `$work`.
cleanup_on_exit() {
  trap '[ ${#server_pids[@]} -eq 0 ] || stop_pids "${server_pids[@]}"; rm -rf "$work"' EXIT
  trap 'exit 130' INT TERM
}
