#!/usr/bin/env bash
# A local three-node space for trying the cluster (docs/cluster.md): a
# PostgreSQL server and a redis-server on Unix sockets in a temporary folder,
# three spaced (examples/cluster/node-{a,b,c}.toml, public ports 8081-8083,
# management API 8091-8093) on that one store and that one Redis, and, when
# haproxy is installed, examples/cluster/haproxy.cfg in front of them on
# 127.0.0.1:8080. Prints a sign-in link for each node; a message posted through
# one node reaches the members on the others. Ctrl-C (or SIGTERM) stops everything. The
# space lives as long as the run (its database and files are in the temporary
# folder, removed at the end).
#
#   scripts/cluster.sh
#
# Needs Debian's postgresql and redis-server (scripts/setup.sh installs them).
# Under root, PostgreSQL runs as `nobody` (it refuses to run as root).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

# HUTOPIA_CLUSTER_BUILD=DIR runs the daemons and plugins of that meson build
# as they are (no setup, no build); by default build/run is set up and built.
build=${HUTOPIA_CLUSTER_BUILD:-}
if [ -z "$build" ]; then
  bash scripts/setup.sh
  if [ ! -f build/run/build.ninja ]; then
    meson setup build/run --wrap-mode=nodownload -Dbuildtype=release -Dtests=false >/dev/null
  fi
  meson compile -C build/run >/dev/null
  build=build/run
fi

source scripts/lib/pg_redis.sh
pg_redis_check || exit 1

work=$(mktemp -d "${TMPDIR:-/tmp}/hutopia-cluster.XXXXXX")
pids=()
stop_all() {
  trap - INT TERM EXIT
  [ ${#pids[@]} -eq 0 ] || kill -TERM "${pids[@]}" 2>/dev/null || true
  [ ${#pids[@]} -eq 0 ] || wait "${pids[@]}" 2>/dev/null || true
  pg_redis_stop
  rm -rf "$work"
}
trap stop_all EXIT
trap 'exit 0' INT TERM
pg_redis_start "$work"

secret() { openssl rand -hex 32; }
export HUTOPIA_STORE_URL=$PG_URL
export HUTOPIA_CLUSTER_REDIS=$REDIS_URL
export HUTOPIA_ADMIN_TOKEN=${HUTOPIA_ADMIN_TOKEN:-$(secret)}
export HUTOPIA_AUTH_APP_SECRET=${HUTOPIA_AUTH_APP_SECRET:-$(secret)}
export HUTOPIA_SPACE_PLUGINS_DIR=${HUTOPIA_SPACE_PLUGINS_DIR:-$build/plugins}

for n in a b c; do
  HUTOPIA_SPACE_DATA_DIR=$work/node-$n "$build/daemons/spaced/spaced" --config "examples/cluster/node-$n.toml" \
    >"$work/node-$n.out" 2>"$work/node-$n.log" &
  pids+=($!)
  for _ in $(seq 600); do
    [ "$(grep -c '^listening on' "$work/node-$n.out")" -ge 2 ] && break
    kill -0 "${pids[-1]}" 2>/dev/null || { cat "$work/node-$n.log"; echo "cluster.sh: node $n did not start"; exit 1; }
    sleep 0.1
  done
done

balancer="(haproxy is not installed: open the nodes directly, or install it and run again)"
if command -v haproxy >/dev/null; then
  haproxy -f examples/cluster/haproxy.cfg >"$work/haproxy.log" 2>&1 &
  pids+=($!)
  balancer="HAProxy spreads new connections over the three: http://127.0.0.1:8080"
fi

link() {  # link NODE NAME: a sign-in URL with an app token from that node's management API
  local public admin
  public=$(sed -n 's/^listening on //p' "$work/node-$1.out" | sed -n 1p)
  admin=$(sed -n 's/^listening on //p' "$work/node-$1.out" | sed -n 2p)
  curl -fsS -H "Authorization: Bearer $HUTOPIA_ADMIN_TOKEN" -H 'Content-Type: application/json' \
    -d "{\"user\":\"$2\",\"name\":\"$2\"}" "$admin/api/v1/tokens" |
    /usr/bin/python3 -c 'import json,sys; print(sys.argv[1] + "/#token=" + json.load(sys.stdin)["token"])' "$public"
}

cat <<MSG

A space on three nodes: PostgreSQL and Redis in $work, logs there too.
$balancer
Sign-in links, one user on each node (valid for 5 minutes, good for one visit):

  ada on node a:  $(link a ada)
  bob on node b:  $(link b bob)
  cy on node c:   $(link c cy)

Management API of each node (any acts on the whole space): 127.0.0.1:8091, 8092, 8093, with
Authorization: Bearer $HUTOPIA_ADMIN_TOKEN
Ctrl-C stops everything.
MSG
wait "${pids[@]}"
