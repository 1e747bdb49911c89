#!/usr/bin/env bash
# Runs Hutopia from a fresh clone: installs what is missing, builds, starts
# relayd and spaced (with the first-party plugins, on SQLite), makes a demo
# account on the relay, registers the space there, and prints the URLs to open.
#
#   scripts/run.sh              build and run; Ctrl-C stops it cleanly
#   scripts/run.sh link [NAME]  another sign-in link for a running space
#
# State lives in var/ (the space's and the relay's SQLite files, the admin
# token, the app secret, the demo password and the space id the relay
# assigned, made once). HUTOPIA_RUN_RELAY=0
# runs the space alone, with app-token links only. Any key of examples/spaced.toml can be overridden with
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
run_relay=${HUTOPIA_RUN_RELAY:-1}
relay_url=http://127.0.0.1:8700   # examples/relayd.toml: listen and issuer
if [ "$run_relay" = 1 ]; then
  export HUTOPIA_AUTH_RELAY_ISSUER=${HUTOPIA_AUTH_RELAY_ISSUER:-$relay_url}
  export HUTOPIA_AUTH_RELAY_JWKS=${HUTOPIA_AUTH_RELAY_JWKS:-$relay_url/.well-known/jwks.json}
else
  export HUTOPIA_AUTH_RELAY_ISSUER=${HUTOPIA_AUTH_RELAY_ISSUER:-}
  export HUTOPIA_AUTH_RELAY_JWKS=${HUTOPIA_AUTH_RELAY_JWKS:-}
fi

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

# Voice (docs/voice.md): coturn on loopback when it is installed, with a
# secret shared with the voice plugin through var/run/voice.toml.
turn_pid=
voice_toml=var/run/voice.toml
if command -v turnserver >/dev/null 2>&1; then
  turn_secret=$(secret_file turn_secret)
  turn_port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  (umask 077 && cat > var/run/turnserver.conf <<TURN
listening-port=$turn_port
listening-ip=127.0.0.1
relay-ip=127.0.0.1
allow-loopback-peers
no-cli
no-tls
no-dtls
use-auth-secret
static-auth-secret=$turn_secret
realm=hutopia.local
log-file=$root/var/run/turnserver.log
simple-log
pidfile=$root/var/run/turnserver.pid
userdb=$root/var/run/turndb
TURN
  )
  turnserver -c var/run/turnserver.conf >/dev/null 2>&1 &
  turn_pid=$!
  trap 'kill -TERM $turn_pid 2>/dev/null || true' EXIT
  (umask 077 && printf 'stun = ["stun:127.0.0.1:%s"]\nturn = ["turn:127.0.0.1:%s?transport=udp"]\nturn_secret = "%s"\n' \
    "$turn_port" "$turn_port" "$turn_secret" > "$voice_toml")
  voice_msg="Voice: coturn runs on 127.0.0.1:$turn_port (log: var/run/turnserver.log)."
else
  : > "$voice_toml"
  voice_msg="Voice: no TURN server (install coturn, e.g. apt-get install coturn, and run again; see docs/voice.md)."
fi
# The plugin reads <plugins_dir>/voice.toml: a link to the generated file.
if [ ! -e "$HUTOPIA_SPACE_PLUGINS_DIR/voice.toml" ] || [ -L "$HUTOPIA_SPACE_PLUGINS_DIR/voice.toml" ]; then
  ln -sfn "$root/$voice_toml" "$HUTOPIA_SPACE_PLUGINS_DIR/voice.toml"
fi

relay_pid=
if [ "$run_relay" = 1 ]; then
  : > var/run/relayd.out
  build/run/daemons/relayd/relayd --config examples/relayd.toml > var/run/relayd.out &
  relay_pid=$!
  for _ in $(seq 100); do
    grep -q '^listening on' var/run/relayd.out && break
    kill -0 $relay_pid 2>/dev/null || { echo "relayd did not start (see the messages above)"; exit 1; }
    sleep 0.1
  done
  cat var/run/relayd.out
fi

# With the relay: the demo account, and the space's entry in the relay's
# directory. The relay assigns the space id at the first registration; it is
# kept in var/run/space_id and spaced runs with it (HUTOPIA_SPACE_ID). Later
# runs update the entry's name and URL (as its owner, demo).
relay_space() {  # relay_space register NAME URL -> prints the id; relay_space url URL
  /usr/bin/python3 - "$relay_url" "$(secret_file demo_password)" var/run/space_id "$@" <<'PY'
import json, os, sys, urllib.error, urllib.request
relay, password, id_file, mode = sys.argv[1:5]
def call(method, path, body, session=None):
    headers = {"Content-Type": "application/json"}
    if session:
        headers["Authorization"] = "Bearer " + session
    req = urllib.request.Request(relay + path, json.dumps(body).encode(), headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)
if mode == "register":
    status, answer = call("POST", "/api/v1/accounts", {"username": "demo", "password": password, "name": "Demo"})
    if status not in (201, 409):
        sys.exit(f"cannot create the demo account: {status} {answer}")
status, answer = call("POST", "/api/v1/sessions", {"username": "demo", "password": password})
if status != 201:
    sys.exit(f"cannot log in as demo: {status} {answer}")
session = answer["session"]
space_id = open(id_file).read().strip() if os.path.exists(id_file) else ""
if mode == "url":
    status, answer = call("PATCH", "/api/v1/spaces/" + space_id, {"url": sys.argv[5]}, session)
    if status != 200:
        sys.exit(f"cannot set the space's URL on the relay: {status} {answer}")
    sys.exit(0)
name, url = sys.argv[5:7]
status = 404
if space_id:
    status, answer = call("PATCH", "/api/v1/spaces/" + space_id, {"name": name, "url": url}, session)
if status in (403, 404):  # a new relay store, or not demo's: a new registration
    status, answer = call("POST", "/api/v1/spaces", {"name": name, "url": url}, session)
    if status == 201:
        space_id = answer["id"]
        with open(id_file + ".tmp", "w") as f:
            f.write(space_id + "\n")
        os.replace(id_file + ".tmp", id_file)
if status not in (200, 201):
    sys.exit(f"cannot register the space on the relay: {status} {answer}")
print(space_id)
PY
}
relay_msg=
if [ "$run_relay" = 1 ]; then
  listen=${HUTOPIA_SPACE_LISTEN:-$(sed -n '/^\[space\]/,/^\[/s/^listen = "\([^"]*\)".*/\1/p' examples/spaced.toml)}
  expected_url=${HUTOPIA_SPACE_URL:-http://$listen}
  if space_id=$(relay_space register "${HUTOPIA_SPACE_NAME:-Demo space}" "$expected_url"); then
    export HUTOPIA_SPACE_ID=$space_id
  else
    relay_msg="(the relay could not be set up; the app-token link above still works)"
  fi
fi

: > var/run/spaced.out
build/run/daemons/spaced/spaced --config examples/spaced.toml > var/run/spaced.out &
pid=$!
trap 'kill -TERM $pid $relay_pid $turn_pid 2>/dev/null; wait $pid $relay_pid $turn_pid' INT TERM
for _ in $(seq 100); do
  [ "$(grep -c '^listening on' var/run/spaced.out)" -ge 2 ] && break
  kill -0 $pid 2>/dev/null || { echo "spaced did not start (see the messages above)"; exit 1; }
  sleep 0.1
done
cat var/run/spaced.out
url=$(link "Demo user")

if [ "$run_relay" = 1 ] && [ -z "$relay_msg" ]; then
  public=$(sed -n 's/^listening on //p' var/run/spaced.out | sed -n 1p)
  # The URL spaced really listens on (port 0 picks one) is the registered one.
  [ "${HUTOPIA_SPACE_URL:-$public}" = "$expected_url" ] || relay_space url "${HUTOPIA_SPACE_URL:-$public}" ||
    relay_msg="(the relay has another URL for this space; the app-token link above still works)"
  [ -n "$relay_msg" ] || relay_msg="Through the relay (log in as demo / $(secret_file demo_password), or create an account):

  $public/login
"
fi
cat <<MSG

Hutopia is running: spaced with the plugins in build/run/plugins ($(ls build/run/plugins/*.so | xargs -n1 basename | tr '\n' ' '))
Open this sign-in link in a browser (valid for 5 minutes, good for one visit):

  $url

$relay_msg
$voice_msg

Another link (another person):  scripts/run.sh link "Ada Lovelace"
Stop: Ctrl-C
MSG
wait $pid
