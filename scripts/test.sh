#!/usr/bin/env bash
# The test command: installs what is missing, builds Hutopia with warnings as
# errors, runs the whole suite, builds and runs it again under ASan+UBSan and
# under ThreadSanitizer, runs each fuzz target for a short bounded time, and
# ends with one line "N passed, N failed".
#
#   scripts/test.sh             everything
#   HUT_FUZZ_SECONDS=60 ...      longer fuzz runs (default 20 s per target)
#   HUT_BUILDS="plain" ...       only some builds (plain sanitize tsan fuzz)
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

bash scripts/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }

export HUT_FUZZ_SECONDS=${HUT_FUZZ_SECONDS:-20}
builds=${HUT_BUILDS:-"plain sanitize tsan fuzz"}
jobs=$(nproc)
common=(--wrap-mode=nodownload -Dwerror=true -Dwarning_level=3 -Dbuildtype=debugoptimized)
build_failures=()

configure() {  # dir, then meson options
  local dir=$1; shift
  if [ -f "$dir/build.ninja" ]; then
    meson configure "$dir" "$@" >/dev/null && return 0
    rm -rf "$dir"
  fi
  meson setup "$dir" "$@"
}

for b in $builds; do
  dir=build/$b
  case $b in
    plain) opts=("${common[@]}"); suites=() ;;
    sanitize) opts=("${common[@]}" -Db_sanitize=address,undefined -Db_lundef=false
                    -Dc_args=-fno-sanitize-recover=all -Dcpp_args=-fno-sanitize-recover=all); suites=() ;;
    # Any race report fails the run: a process stops at its first report
    # (halt_on_error), and every report, the daemons' too, is written to
    # build/tsan/tsan-reports/, where summarize.py counts each as a failure.
    tsan) opts=("${common[@]}" -Db_sanitize=thread -Db_lundef=false); suites=() ;;
    fuzz) opts=("${common[@]}" -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false); suites=(--suite fuzz) ;;
    *) echo "unknown build $b"; exit 2 ;;
  esac
  echo "=== build $b ==="
  if [ "$b" = fuzz ]; then cc=clang cxx=clang++; else cc=gcc cxx=g++; fi
  CC=$cc CXX=$cxx configure "$dir" "${opts[@]}" || { build_failures+=("$b"); continue; }
  if ! meson compile -C "$dir" -j "$jobs"; then build_failures+=("$b"); continue; fi
  echo "=== test $b ==="
  rm -f "$dir/meson-logs/testlog.json"
  if [ "$b" = tsan ]; then
    rm -rf "$dir/tsan-reports"; mkdir -p "$dir/tsan-reports"
    TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 log_path=$root/$dir/tsan-reports/report ${TSAN_OPTIONS:-}" \
      meson test -C "$dir" --print-errorlogs --num-processes "$jobs" "${suites[@]}" || true
  else
    meson test -C "$dir" --print-errorlogs --num-processes "$jobs" "${suites[@]}" || true
  fi
done

/usr/bin/python3 scripts/summarize.py --failed-builds "${build_failures[*]}" $(for b in $builds; do echo "build/$b"; done)
