#!/usr/bin/env bash
# Installs what Hutopia needs to build, run and test on Debian 12, with
# apt-get. Idempotent: it installs only what is missing, and does nothing when
# everything is there. Needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(
  # build
  meson ninja-build pkg-config cmake g++ clang libclang-rt-14-dev llvm
  # libraries
  libuv1-dev libwebsockets-dev libwebsockets-evlib-uv libcjson-dev
  libtomlplusplus-dev doctest-dev libssl-dev libsqlite3-dev libargon2-dev libcurl4-openssl-dev
  libsystemd-dev libncurses-dev libpq-dev libhiredis-dev
  # tests: interop peers and clients nobody here wrote
  python3 python3-jwt python3-cryptography python3-websockets curl chromium tmux
  # tests: the Debian packages and their units
  dpkg-dev debhelper fakeroot lintian systemd prometheus
  # tests: the cluster through a real Redis
  redis-server
  # tests: voice through a real TURN server
  coturn
  # tests: the PostgreSQL store against a real server
  postgresql
  # tests: answers checked against the OpenAPI documents (docs/openapi/)
  python3-jsonschema
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

# Node.js and npm: any install that provides both (Debian's, or one the machine
# came with); Debian's packages where there is none.
if ! command -v npm >/dev/null 2>&1; then missing+=(nodejs npm); fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# The npm packages of package.json (browser-test drivers, widget libraries
# embedded at build time), pinned by package-lock.json, into node_modules/.
npm_install() {
  if [ ! -f "$root/node_modules/.package-lock.json" ] ||
     [ "$root/package-lock.json" -nt "$root/node_modules/.package-lock.json" ]; then
    echo "setup: npm ci" >&2
    (cd "$root" && npm ci --no-audit --no-fund >&2)
  fi
}

if [ ${#missing[@]} -eq 0 ]; then
  npm_install
  exit 0
fi

echo "setup: installing ${missing[*]}" >&2
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo=(sudo); else
    echo "setup: missing packages (${missing[*]}) and not root; install them with apt-get" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q >&2
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
npm_install
