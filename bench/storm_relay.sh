#!/usr/bin/env bash
# The connect storm with relay tokens (EdDSA) against OpenSSL's own Ed25519
# verification rate on the same core: a relayd (pinned to CPU 1, idle once
# spaced has its key set) makes the signing key and serves its key set; spaced
# (pinned to CPU 0) trusts it; hut-bench (CPU 1) signs one token per
# connection with the relay's key and connects, upgrades, says hello and
# closes, CONCURRENCY at once. Then `openssl speed ed25519` runs on CPU 0.
#
#   bench/storm_relay.sh [CONNECTIONS [ROUNDS]]     (defaults 10000, 3)
#
# Prints every run's result line, then one line:
#   storm_relay connections=N rate=R openssl_verify_per_s=V ratio=R/V
# with the median rate over the rounds. Environment: HUT_BENCH_BUILD (default
# build/release), HUT_BENCH_CLIENT (the hut-bench binary). Loopback only.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
source bench/server.sh
build=${HUT_BENCH_BUILD:-build/release}
many=${1:-10000}
rounds=${2:-3}
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --wrap-mode=nodownload -Dbuildtype=release -Dtests=false >/dev/null
fi
meson compile -C "$build" -j 2 bench/hut-bench daemons/spaced/spaced daemons/relayd/relayd >/dev/null
bench_bin=${HUT_BENCH_CLIENT:-$build/bench/hut-bench}
ulimit -n "$(ulimit -Hn)"
if [ "$(nproc)" -ge 2 ]; then pin0=(taskset -c 0); pin1=(taskset -c 1); else pin0=(); pin1=(); fi

work=$(mktemp -d /tmp/hut-storm-relay.XXXXXX)
server_pids=()
cleanup_on_exit

relay_port=$(/usr/bin/python3 bench/free_port.py)
relay_admin=$(/usr/bin/python3 bench/free_port.py)
issuer="http://127.0.0.1:$relay_port"
mkdir -p "$work/relay"
cat >"$work/relayd.toml" <<EOF
[relay]
listen = "127.0.0.1:$relay_port"
issuer = "$issuer"
data_dir = "$work/relay"

[admin]
listen = "127.0.0.1:$relay_admin"
EOF
"${pin1[@]}" "$build/daemons/relayd/relayd" --config "$work/relayd.toml" >"$work/relayd.log" 2>&1 &
server_pids+=($!)
for _ in $(seq 200); do [ -s "$work/relay/keys/current" ] && break; sleep 0.05; done
kid=$(tr -d ' \n' <"$work/relay/keys/current" 2>/dev/null || true)
key=$work/relay/keys/$kid.pem
[ -n "$kid" ] && [ -f "$key" ] || { echo "storm_relay.sh: relayd made no key:" >&2; cat "$work/relayd.log" >&2; exit 1; }

rates=()
for round in $(seq "$rounds"); do
  dir=$work/space-$round
  admin_port=$(/usr/bin/python3 bench/free_port.py)
  space_config "$dir" "$admin_port"
  printf '\n[auth]\nrelay_issuer = "%s"\nrelay_jwks = "%s/.well-known/jwks.json"\n' "$issuer" "$issuer" >>"$dir/spaced.toml"
  "${pin0[@]}" "$build/daemons/spaced/spaced" --config "$dir/spaced.toml" >"$dir/spaced.log" 2>&1 &
  pid=$!
  server_pids+=("$pid")
  port=$(bus_port "$dir/spaced.log" "$admin_port" "$pid")
  [ -n "$port" ] || { echo "storm_relay.sh: spaced did not start:" >&2; cat "$dir/spaced.log" >&2; exit 1; }
  # The space fetches the key set at its start: wait for it, so that the
  # storm measures token checks, not the first fetch.
  for _ in $(seq 200); do grep -q 'trusting' "$dir/spaced.log" && break; sleep 0.05; done
  line=$(timeout 600 "${pin1[@]}" "$bench_bin" storm --port "$port" --server-pid "$pid" \
    --signing-key "$key" --issuer "$issuer" --audience bench -c "$many" --concurrency 512 2>&1 |
    grep '^result ' | tail -n 1 || true)
  echo "relay-token storm round $round: ${line:-no result}"
  stop_pids "$pid"
  server_pids=("${server_pids[0]}")
  grep -q ' errors=0' <<<"$line" && rates+=("$(sed -n 's/.* rate=\([^ ]*\).*/\1/p' <<<"$line")")
done
median=$(printf '%s\n' "${rates[@]}" | sort -g | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]}')
verify=$("${pin0[@]}" openssl speed -seconds 3 ed25519 2>/dev/null | awk '/Ed25519/ {print $NF}')
ratio=$(awk -v a="${median:-0}" -v b="${verify:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
echo "storm_relay connections=$many rate=${median:-none} openssl_verify_per_s=${verify:-none} ratio=$ratio"
