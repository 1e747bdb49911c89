# shellcheck shell=bash
# Sourced by scripts/cluster.sh and bench/cluster.sh: a PostgreSQL server and
# a redis-server on Unix sockets in a folder of the caller's, nothing on TCP.
# PostgreSQL refuses to run as root, so under root its folder is given to
# `nobody` and it runs as that user (runuser).
#
#   pg_redis_check                 # prints why not and returns 1 when missing
#   pg_redis_start DIR [-c NAME=VALUE ...]   # extra postgres settings
#   ... $PG_URL (database "hutopia"), $REDIS_URL, $REDIS_PID, pg_psql SQL
#   pg_redis_stop                  # in the caller's EXIT trap
#
# The caller removes DIR after pg_redis_stop.

pg_bin=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)
pg_as=()
pg_dir=
REDIS_PID=

pg_redis_check() {
  if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
    echo "no PostgreSQL (apt-get install postgresql)" >&2
    return 1
  fi
  command -v redis-server >/dev/null || { echo "no redis-server (apt-get install redis-server)" >&2; return 1; }
}

# shellcheck disable=SC2034  # PG_URL and REDIS_URL are for the caller
pg_redis_start() {
  local dir=$1
  shift
  chmod 755 "$dir"
  pg_dir=$dir/pg
  mkdir -p "$pg_dir"
  if [ "$(id -u)" = 0 ]; then
    chown nobody "$pg_dir"
    pg_as=(runuser -u nobody --)
  fi
  # PostgreSQL: a database "hutopia" reached through the socket folder $dir/pg.
  "${pg_as[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U hut -A trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; return 1; }
  "${pg_as[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -w -t 60 -l "$pg_dir/log" \
    -o "-c listen_addresses='' -c unix_socket_directories=$pg_dir $*" start >/dev/null
  "${pg_as[@]}" "$pg_bin/createdb" -h "$pg_dir" -U hut hutopia
  PG_URL="postgresql:///hutopia?host=$pg_dir&user=hut"

  # Redis: a Unix socket only, nothing kept on disk.
  redis-server --port 0 --unixsocket "$dir/redis.sock" --unixsocketperm 700 --save '' --appendonly no \
    --dir "$dir" >"$dir/redis.log" 2>&1 &
  REDIS_PID=$!
  REDIS_URL="unix://$dir/redis.sock"
  for _ in $(seq 600); do
    redis-cli -s "$dir/redis.sock" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "redis-server did not answer" >&2
  return 1
}

# Runs one SQL command in the database; prints the unaligned result.
pg_psql() {
  "${pg_as[@]}" "$pg_bin/psql" -X -q -A -t -h "$pg_dir" -U hut -d hutopia -c "$1"
}

pg_redis_stop() {
  if [ -n "$REDIS_PID" ]; then
    kill -TERM "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
    REDIS_PID=
  fi
  if [ -n "$pg_dir" ] && [ -d "$pg_dir/data" ]; then
    "${pg_as[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m fast stop >/dev/null 2>&1 || true
  fi
}
