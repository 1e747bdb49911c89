#!/usr/bin/env bash
# Runs the whole comparison in one go: builds a release, then measures spaced
# (with the echo plugin; its rooms for fan-out), raw-lws-echo (--broadcast for
# fan-out) and the Node ws servers (echo.js, broadcast.js) with hut-bench, one
# fresh server per measurement, the server pinned to CPU 0 and hut-bench to
# CPU 1, and prints a Markdown table with the ratios. The parts: echo, room
# fan-out, idle memory at each HUT_BENCH_IDLE_SIZES size, connect storm (and,
# for spaced, the storm with relay tokens against OpenSSL's own Ed25519
# verification rate: bench/storm_relay.sh).
#
#   bench/run.sh
#
# Environment (all optional):
#   HUT_BENCH_BUILD    build folder (default build/release)
#   HUT_BENCH_REPEAT   echo, fan-out and storm runs per server, medians
#                      reported (default 5)
#   HUT_BENCH_SECONDS  measured seconds per echo and fan-out run (default 5)
#   HUT_BENCH_IDLE     connections for the storm (default 10000)
#   HUT_BENCH_IDLE_SIZES  connection counts idle memory is measured at
#                      (default "10000 50000"); above 20,000 the client's
#                      sockets are spread over 127.0.0.1..127.0.0.N (hut-bench
#                      --sources), and a size the open-file hard limit does not
#                      allow is skipped with a note
#   HUT_BENCH_FANOUT   fan-out members (default 1000), HUT_BENCH_POSTERS
#                      posters among them (default 10), HUT_BENCH_INFLIGHT posts
#                      in flight per poster (default 1); spaced stores every
#                      post (durable) with its post limits lifted
#   HUT_BENCH_PARTS    space-separated subset of: echo fanout idle storm
#   HUT_BENCH_CONNS    echo connections, one request in flight each (default 100)
#   HUT_BENCH_RATE     echo requests/s offered (hut-bench echo --rate; default:
#                      closed loop). A rate the client keeps up with easily
#                      makes the latency columns the server's, not the client's
#   HUT_BENCH_ONLY     space-separated subset of: spaced raw node
#   HUT_BENCH_CLIENT   the hut-bench binary (default: the build's own), so that
#                      two builds of the server are measured with one client
#   HUT_BENCH_NICE     a nice value for the server and hut-bench (e.g. -10, as
#                      root) so that other work on a shared machine takes less
#                      CPU from them; default: not changed
#
# Loopback only; every server and client is bounded in time and stopped here.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
source bench/server.sh

build=${HUT_BENCH_BUILD:-build/release}
repeat=${HUT_BENCH_REPEAT:-5}
seconds=${HUT_BENCH_SECONDS:-5}
many=${HUT_BENCH_IDLE:-10000}
idle_sizes=${HUT_BENCH_IDLE_SIZES:-"10000 50000"}
members=${HUT_BENCH_FANOUT:-1000}
posters=${HUT_BENCH_POSTERS:-10}
inflight=${HUT_BENCH_INFLIGHT:-1}
only=${HUT_BENCH_ONLY:-"spaced raw node"}
parts=${HUT_BENCH_PARTS:-"echo fanout idle storm"}
for part in $parts; do
  case $part in echo | fanout | idle | storm) ;; *)
    echo "run.sh: HUT_BENCH_PARTS: unknown part '$part' (echo fanout idle storm)" >&2; exit 2 ;;
  esac
done
part() { [[ " $parts " == *" $1 "* ]]; }
conns=${HUT_BENCH_CONNS:-100}
payload=64

say() { echo "run.sh: $*" >&2; }

# --- build ------------------------------------------------------------------
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --wrap-mode=nodownload -Dbuildtype=release -Dtests=false >/dev/null
fi
# Only what is measured: faster, and independent of unrelated targets.
meson compile -C "$build" -j 2 bench/hut-bench bench/raw-lws-echo >/dev/null
if [[ " $only " == *" spaced "* ]]; then
  meson compile -C "$build" -j 2 daemons/spaced/spaced plugins/echo >/dev/null ||
    say "spaced or the echo plugin did not build"
fi
bench_bin=${HUT_BENCH_CLIENT:-$build/bench/hut-bench}
raw_bin=$build/bench/raw-lws-echo
spaced_bin=$build/daemons/spaced/spaced
echo_plugin=$build/plugins/echo.so
[ -x "$bench_bin" ] || { say "no $bench_bin: hut-bench was not built"; exit 1; }

have_node=0
if [[ " $only " == *" node "* ]] && command -v node >/dev/null && command -v npm >/dev/null; then
  if [ ! -d bench/node_ws/node_modules/ws ]; then
    (cd bench/node_ws && npm ci --no-audit --no-fund >/dev/null 2>&1) || say "npm ci failed: no Node ws figures"
  fi
  [ -d bench/node_ws/node_modules/ws ] && have_node=1
fi
have_spaced=0
if [[ " $only " == *" spaced "* ]]; then
  if [ -x "$spaced_bin" ] && [ -f "$echo_plugin" ]; then have_spaced=1; else
    say "spaced or the echo plugin is not built: no spaced figures"
  fi
fi

# Every connection is a file descriptor, on both sides: the hard limit is
# raised for the largest idle size where that is allowed (as root), and the
# soft limit to the hard one.
largest=$many
for n in $idle_sizes; do [ "$n" -gt "$largest" ] && largest=$n; done
[ "$(ulimit -Hn)" = unlimited ] || [ "$(ulimit -Hn)" -ge $((largest + 1024)) ] ||
  ulimit -Hn $((largest + 1024)) 2>/dev/null || true
ulimit -n "$(ulimit -Hn)"
fd_limit=$(ulimit -n)
[ "$fd_limit" = unlimited ] && fd_limit=$((1 << 30))
cpus=$(nproc)
if [ "$cpus" -ge 2 ]; then pin_server=(taskset -c 0); pin_client=(taskset -c 1); else
  pin_server=(); pin_client=(); say "one CPU only: no pinning"
fi
if [ -n "${HUT_BENCH_NICE:-}" ]; then
  pin_server=(nice -n "$HUT_BENCH_NICE" "${pin_server[@]}")
  pin_client=(nice -n "$HUT_BENCH_NICE" "${pin_client[@]}")
fi

work=$(mktemp -d /tmp/hut-bench.XXXXXX)
server_pid=
server_port=
stop_server() {
  [ -n "$server_pid" ] || return 0
  kill -TERM "$server_pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}
cleanup() { stop_server; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# The app secret spaced is given (in its environment, not the file) and
# hut-bench signs with.
secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
issuer=hut-bench
space_id=bench

# spaced prints a `listening on` line for each listener: the admin listener
# gets a port chosen here so that the other line is the bus's. It is below the
# ephemeral range, where the client's own sockets could take it.
admin_port=$(/usr/bin/python3 "$root/bench/free_port.py")
write_spaced_config() {
  local dir=$work/spaced-$1
  rm -rf "$dir"
  space_config "$dir" "$admin_port"
  printf '\n[auth]\napp_issuer = "%s"\n\n[store]\nurl = "sqlite://%s/data/space.db"\n' "$issuer" "$dir" >>"$dir/spaced.toml"
  cp "$echo_plugin" "$dir/plugins/"
  echo "$dir/spaced.toml"
}

# start_server NAME: starts a fresh server on CPU 0 and sets server_pid and
# server_port from its first `listening on` line.
start_server() {
  local name=$1 log=$work/$1.log
  : >"$log"
  case $name in
    # The widget budget is lifted: echo measures the bus, not the budget.
    # The widget budget and the post limits are lifted: echo and fan-out
    # measure the bus and the rooms, not the budgets (as bench/fanout.sh).
    spaced) HUTOPIA_AUTH_APP_SECRET=$secret HUTOPIA_ADMIN_TOKEN=$secret \
              HUTOPIA_LIMITS_WIDGET_RATE=1000000000 HUTOPIA_LIMITS_WIDGET_BURST=1000000000 \
              HUTOPIA_LIMITS_POST_RATE=1000000 HUTOPIA_LIMITS_POST_BURST=1000000 \
              "${pin_server[@]}" "$spaced_bin" --config "$(write_spaced_config "$RANDOM")" >"$log" 2>&1 & ;;
    raw) "${pin_server[@]}" "$raw_bin" 0 >"$log" 2>&1 & ;;
    raw-broadcast) "${pin_server[@]}" "$raw_bin" --broadcast 0 >"$log" 2>&1 & ;;
    node) "${pin_server[@]}" node bench/node_ws/echo.js 0 >"$log" 2>&1 & ;;
    node-broadcast) "${pin_server[@]}" node bench/node_ws/broadcast.js 0 >"$log" 2>&1 & ;;
  esac
  server_pid=$!
  server_port=$(bus_port "$log" "$admin_port" "$server_pid")
  if [ -z "$server_port" ]; then
    say "$name did not start:"; cat "$log" >&2; stop_server; return 1
  fi
  sleep 0.3  # let it settle before its RSS is read
}

# bench NAME MODE ARGS...: one hut-bench run against a fresh NAME server (for
# fanout, raw and node run their broadcast servers); sets `line` to its result
# line. No subshell, so that cleanup always knows the server.
line=
bench() {
  local name=$1 mode=$2; shift 2
  local auth=(--raw) out=$work/bench.out server=$name
  [ "$name" = spaced ] && auth=(--secret "$secret" --issuer "$issuer" --audience "$space_id")
  [ "$mode" = fanout ] && [ "$name" != spaced ] && server=$name-broadcast
  line="result failed=start"
  start_server "$server" || return 0
  timeout 900 "${pin_client[@]}" "$bench_bin" "$mode" --port "$server_port" --server-pid "$server_pid" \
    "${auth[@]}" "$@" >"$out" 2>&1 || true
  if ! kill -0 "$server_pid" 2>/dev/null; then say "$name exited during the run:"; tail -n 20 "$work/$server.log" >&2; fi
  stop_server
  line=$(grep '^result ' "$out" | tail -n 1 || true)
  if [ -z "$line" ]; then say "$name $mode gave no result:"; cat "$out" >&2; line="result failed=noresult"; fi
  if ! grep -q ' errors=0$' <<<"$line"; then
    say "$name $mode had errors:"; sed -n '/^problems:/,$p' "$out" >&2
  fi
}
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }
median() { sort -g | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]; else print ""}'; }

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
targets=()
[ $have_spaced = 1 ] && targets+=(spaced)
[[ " $only " == *" raw "* ]] && targets+=(raw)
[ $have_node = 1 ] && targets+=(node)

declare -A rate p50 p99 cpu ccpu per_cpu storm_s storm_rate storm_cpu_us storm_errors echo_errors
declare -A f_rate f_per_cpu f_p50 f_p99 f_ok_p99 f_cpu f_ccpu fanout_errors
for t in "${targets[@]}"; do echo_errors[$t]=0; fanout_errors[$t]=0; done
# median_of FILE TARGET FIELD: the median of FIELD over TARGET's runs in FILE.
median_of() { awk -v t="$2" '$1 == t' "$1" | sed -n "s/.* $3=\([^ ]*\).*/\1/p" | median; }
# median_run FILE TARGET FIELD: sets med_line to TARGET's run in FILE whose
# FIELD is the median.
med_line=
median_run() {
  local m
  m=$(median_of "$1" "$2" "$3")
  med_line=$(awk -v t="$2" '$1 == t' "$1" | grep " $3=$m " | head -n 1 || true)
}
# pick ARRAY=FIELD...: sets ARRAY[$t] to FIELD of med_line, for each pair.
pick() {
  local kv
  for kv in "$@"; do printf -v "${kv%%=*}[$t]" '%s' "$(field "$med_line" "${kv#*=}")"; done
}
for round in $(seq "$repeat"); do
  part echo || break
  for t in "${targets[@]}"; do
    say "echo $t, round $round of $repeat"
    # shellcheck disable=SC2046
    bench "$t" echo -c "$conns" -p "$payload" -w 1 -d "$seconds" $([ -n "${HUT_BENCH_RATE:-}" ] && echo --rate "$HUT_BENCH_RATE")
    echo "$t $line" >>"$work/echo.txt"
    [ "$(field "$line" errors)" = 0 ] || echo_errors[$t]=$((${echo_errors[$t]} + 1))
  done
done
for t in "${targets[@]}"; do
  part echo || break
  # The rate and the latency figures of the run with the median rate.
  median_run "$work/echo.txt" "$t" rate
  pick rate=rate p50=p50_us p99=p99_us cpu=server_cpu_pct ccpu=client_cpu_pct
  # Replies per second of server CPU time: less sensitive than the rate to
  # other work on the machine taking CPU from the server.
  per_cpu[$t]=$(awk -v t="$t" '$1 == t' "$work/echo.txt" |
    sed -n 's/.* rate=\([^ ]*\) .* server_cpu_pct=\([^ ]*\) .*/\1 \2/p' |
    awk '$2 > 0 { printf "%.0f\n", $1 * 100 / $2 }' | median)
done
# Room fan-out: members in one room (spaced) or on one broadcast server (raw,
# node), posters each with their posts in flight; deliveries per second.
for round in $(seq "$repeat"); do
  part fanout || break
  for t in "${targets[@]}"; do
    say "fanout $t, $members members, $posters posters, $inflight in flight each, round $round of $repeat"
    bench "$t" fanout -c "$members" --posters "$posters" --inflight "$inflight" -w 1 -d "$seconds" -p "$payload"
    echo "$t $line" >>"$work/fanout.txt"
    [ "$(field "$line" errors)" = 0 ] || fanout_errors[$t]=$((${fanout_errors[$t]} + 1))
  done
done
for t in "${targets[@]}"; do
  part fanout || break
  median_run "$work/fanout.txt" "$t" delivery_rate
  pick f_rate=delivery_rate f_p50=p50_us f_p99=p99_us f_ok_p99=ok_p99_us f_cpu=server_cpu_pct f_ccpu=client_cpu_pct
  f_per_cpu[$t]=$(median_of "$work/fanout.txt" "$t" deliveries_per_server_cpu_s)
done

# Idle memory at each size: one run per server and size. Above 20,000
# connections the client binds its sockets to several loopback addresses (one
# address has about 28,000 ephemeral ports).
notes=()
idle_done=()
for n in $idle_sizes; do
  part idle || break
  if [ $((n + 512)) -gt "$fd_limit" ]; then
    notes+=("idle at $n connections skipped: the open-file limit is $fd_limit (hard), below $n + 512; raise it (as root: ulimit -Hn $((n + 1024)), or LimitNOFILE)")
    continue
  fi
  idle_done+=("$n")
  sources=$(((n + 19999) / 20000))
  # Only when needed: a client from an older build (HUT_BENCH_CLIENT) may not know it.
  spread=()
  [ "$sources" -le 1 ] || spread=(--sources "$sources")
  declare -gA "idle_$n"
  for t in "${targets[@]}"; do
    say "idle $t, $n connections from $sources source address(es)"
    bench "$t" idle -c "$n" --hold 2 "${spread[@]}"
    echo "$t $line" >>"$work/idle.txt"
    v=$(field "$line" kib_per_conn)
    [ "$(field "$line" errors)" = 0 ] || v="$v (errors)"
    eval "idle_$n[\$t]=\$v"
  done
done
for t in "${targets[@]}"; do storm_errors[$t]=0; done
for round in $(seq "$repeat"); do
  part storm || break
  for t in "${targets[@]}"; do
    say "storm $t, $many connections, round $round of $repeat"
    bench "$t" storm -c "$many" --concurrency 512
    echo "$t $line" >>"$work/storm.txt"
    [ "$(field "$line" errors)" = 0 ] || storm_errors[$t]=$((${storm_errors[$t]} + 1))
  done
done
for t in "${targets[@]}"; do
  part storm || break
  storm_s[$t]=$(awk -v t="$t" '$1 == t' "$work/storm.txt" | sed -n 's/.* seconds=\([^ ]*\) .*/\1/p' | median)
  storm_rate[$t]=$(awk -v t="$t" '$1 == t' "$work/storm.txt" | sed -n 's/.* rate=\([^ ]*\) .*/\1/p' | median)
  # Server CPU time per connection, from each run's CPU share and duration.
  storm_cpu_us[$t]=$(awk -v t="$t" '$1 == t' "$work/storm.txt" |
    sed -n 's/.* connections=\([^ ]*\) .* seconds=\([^ ]*\) .* server_cpu_pct=\([^ ]*\) .*/\1 \2 \3/p' |
    awk '$3 > 0 { printf "%.0f\n", $3 / 100 * $2 * 1e6 / $1 }' | median)
done

# The storm with relay tokens (EdDSA) against OpenSSL's own Ed25519
# verifications per second on the server's core (bench/storm_relay.sh).
relay_line=
if part storm && [ $have_spaced = 1 ]; then
  say "storm spaced with relay tokens, $many connections, $repeat rounds"
  relay_out=$(HUT_BENCH_BUILD=$build HUT_BENCH_CLIENT=$bench_bin bench/storm_relay.sh "$many" "$repeat" 2>&1 || true)
  relay_line=$(grep '^storm_relay ' <<<"$relay_out" || true)
  grep '^relay-token' <<<"$relay_out" | sed 's/^/spaced-eddsa /' >>"$work/storm.txt" || true
  [ -n "$relay_line" ] || say "storm_relay.sh gave no result: $relay_out"
fi

ratio() { [ -n "${1:-}" ] && [ -n "${2:-}" ] && awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }' || echo "-"; }
col() { local -n arr=$1; echo "${arr[$2]:-missing}"; }

echo
echo "Hutopia benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(git describe --always --dirty 2>/dev/null)"
echo "machine: nproc $cpus, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $(uname -sr)"
echo "server on CPU 0, hut-bench on CPU 1; parts: $parts; echo: $conns connections, $payload-byte payload, ${seconds} s after 1 s warm-up;"
echo "fan-out: $members members, $posters posters with $inflight post(s) in flight each, $payload-byte payload, ${seconds} s after 1 s warm-up"
echo "(spaced: one room, durable posts; raw lws and node ws: their broadcast servers);"
echo "medians of $repeat runs per server for echo, fan-out and storm, servers taking turns; load average before: $load_before${HUT_BENCH_NICE:+; nice $HUT_BENCH_NICE}"
echo
echo "| measure | spaced | raw lws | node ws | spaced / raw lws | spaced / node ws |"
echo "|---|---|---|---|---|---|"
row() {  # label, array name
  local -n arr=$2
  echo "| $1 | $(col "$2" spaced) | $(col "$2" raw) | $(col "$2" node) | $(ratio "${arr[spaced]:-}" "${arr[raw]:-}") | $(ratio "${arr[spaced]:-}" "${arr[node]:-}") |"
}
if part echo; then
  row "echo, msg/s" rate
  row "echo, msg per server CPU-second" per_cpu
  row "echo, server CPU % (median run)" cpu
  row "echo, hut-bench CPU % (median run)" ccpu
  row "echo p50 latency, µs (median run)" p50
  row "echo p99 latency, µs (median run)" p99
fi
if part fanout; then
  row "fan-out, deliveries/s" f_rate
  row "fan-out, deliveries per server CPU-second" f_per_cpu
  row "fan-out, server CPU % (median run)" f_cpu
  row "fan-out, hut-bench CPU % (median run)" f_ccpu
  row "fan-out p50 post to delivery, µs (median run)" f_p50
  row "fan-out p99 post to delivery, µs (median run)" f_p99
  row "fan-out p99 post to ok, µs (median run)" f_ok_p99
fi
for n in "${idle_done[@]}"; do row "idle, server KiB RSS per connection ($n)" "idle_$n"; done
if part storm; then
  row "storm, s until $many welcomed (median)" storm_s
  row "storm, connections welcomed per second (median)" storm_rate
  row "storm, server CPU µs per connection" storm_cpu_us
fi
[ -z "$relay_line" ] || echo "
storm with relay tokens (EdDSA), spaced: $relay_line
(rate: median connections welcomed per second; openssl_verify_per_s: \`openssl speed ed25519\` on CPU 0)"
echo
for t in "${targets[@]}"; do
  [ "${echo_errors[$t]}" = 0 ] || echo "note: $t had errors in ${echo_errors[$t]} echo run(s)"
  [ "${fanout_errors[$t]}" = 0 ] || echo "note: $t had errors in ${fanout_errors[$t]} fan-out run(s)"
  [ "${storm_errors[$t]:-0}" = 0 ] || echo "note: $t had errors in ${storm_errors[$t]} storm run(s)"
done
for note in "${notes[@]}"; do echo "note: $note"; done
echo
echo "every run:"
for f in echo fanout idle storm; do [ ! -f "$work/$f.txt" ] || sed 's/^/  /' "$work/$f.txt"; done

