#!/usr/bin/env bash
# Runs Hutopia from a fresh clone: installs what is missing, builds, starts
# spaced with the first-party plugins on SQLite, and prints the URL to open.
#
#   scripts/run.sh              build and run; Ctrl-C stops it cleanly
#   scripts/run.sh link [NAME]  another sign-in link for a running space
#
# State lives in var/ (the space's SQLite files, the admin token and the app
# secret, made once). Any key of examples/spaced.toml can be overridden with
# HUTOPIA_<SECTION>_<KEY>, e.g. HUTOPIA_SPACE_LISTEN=127.0.0.1:9090.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
mkdir -p var/run

secret_file() {  # a random secret kept in var/run/<name>
  local f=var/run/$1
  [ -s "$f" ] || (umask 077 && openssl rand -hex 32 > "$f")
  cat "$f"
}
export HUTOPIA_ADMIN_TOKEN=${HUTOPIA_ADMIN_TOKEN:-$(secret_file admin_token)}
export HUTOPIA_AUTH_APP_SECRET=${HUTOPIA_AUTH_APP_SECRET:-$(secret_file app_secret)}
export HUTOPIA_AUTH_APP_ISSUER=${HUTOPIA_AUTH_APP_ISSUER:-hutopia-run}
export HUTOPIA_SPACE_PLUGINS_DIR=${HUTOPIA_SPACE_PLUGINS_DIR:-build/run/plugins}
# No relay runs yet: sign-in links are app tokens from the management API.
export HUTOPIA_AUTH_RELAY_ISSUER=${HUTOPIA_AUTH_RELAY_ISSUER:-}
export HUTOPIA_AUTH_RELAY_JWKS=${HUTOPIA_AUTH_RELAY_JWKS:-}

link() {  # prints a sign-in URL: an app token from the management API in the fragment
  local name=${1:-Demo user} public admin body
  public=$(sed -n 's/^listening on //p' var/run/spaced.out | sed -n 1p)
  admin=$(sed -n 's/^listening on //p' var/run/spaced.out | sed -n 2p)
  body=$(/usr/bin/python3 -c 'import json,sys,re; n=sys.argv[1]; print(json.dumps({"user": re.sub(r"[^a-z0-9]+","-",n.lower()).strip("-") or "demo","name": n}))' "$name")
  curl -fsS -H "Authorization: Bearer $HUTOPIA_ADMIN_TOKEN" -H 'Content-Type: application/json' \
    -d "$body" "$admin/api/v1/tokens" |
    /usr/bin/python3 -c 'import json,sys; print(sys.argv[1] + "/#token=" + json.load(sys.stdin)["token"])' "$public"
}

if [ "${1:-}" = link ]; then
  shift
  link "${1:-Demo user}"
  exit 0
fi

bash scripts/setup.sh
if [ ! -f build/run/build.ninja ]; then
  meson setup build/run --wrap-mode=nodownload -Dbuildtype=release -Dtests=false >/dev/null
fi
meson compile -C build/run >/dev/null

: > var/run/spaced.out
build/run/daemons/spaced/spaced --config examples/spaced.toml > var/run/spaced.out &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid' INT TERM
for _ in $(seq 100); do
  [ "$(grep -c '^listening on' var/run/spaced.out)" -ge 2 ] && break
  kill -0 $pid 2>/dev/null || { echo "spaced did not start (see the messages above)"; exit 1; }
  sleep 0.1
done
cat var/run/spaced.out
url=$(link "Demo user")
cat <<MSG

Hutopia is running: spaced with the plugins in build/run/plugins ($(ls build/run/plugins/*.so | xargs -n1 basename | tr '\n' ' '))
Open this sign-in link in a browser (valid for 5 minutes, good for one visit):

  $url

Another link (another person):  scripts/run.sh link "Ada Lovelace"
Stop: Ctrl-C
MSG
wait $pid
