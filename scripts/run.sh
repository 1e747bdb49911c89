#!/usr/bin/env bash
# Runs Hutopia from a fresh clone: installs what is missing, builds, and
# starts it. Until the space daemon exists, it builds and says what it will run.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/setup.sh
if [ ! -f build/run/build.ninja ]; then
  meson setup build/run --wrap-mode=nodownload -Dbuildtype=release -Dtests=false >/dev/null
fi
meson compile -C build/run >/dev/null
echo "Built libhutopia $(git describe --always --dirty 2>/dev/null || echo) in build/run."
echo "spaced (the space daemon) and relayd are not built yet: this command will start"
echo "relayd and spaced with the first-party plugins and print the URL to open."
