#!/usr/bin/env bash
# Installs the build under test into a temporary folder, builds an out-of-tree
# program against it with nothing but `pkg-config --cflags --libs hutopia`,
# runs it, and checks what it prints, the installed headers and the plugin
# folder that the pkg-config file names. No network; the folder is removed.
#
#   install_test.sh SOURCE VERSION PREFIX LIBDIR INCLUDEDIR SANITIZERS CXX...
# (LIBDIR and INCLUDEDIR absolute; SANITIZERS is meson's b_sanitize.)
set -euo pipefail
src=$1 version=$2 prefix=$3 libdir=$4 includedir=$5 sanitize=$6
shift 6
cxx=("$@")
build=${HUT_BUILD_ROOT:?HUT_BUILD_ROOT is not set}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hut-install-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/dest

fail() { echo "FAIL: $*" >&2; exit 1; }

meson install -C "$build" --destdir "$dest" --no-rebuild --quiet >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log" >&2; fail "meson install"; }

for h in config.h export.h status.h token.h version.h; do
  [ -f "$dest$includedir/hutopia/$h" ] || fail "header $includedir/hutopia/$h is not installed"
done
pcdir=$dest$libdir/pkgconfig
[ -f "$pcdir/hutopia.pc" ] || fail "hutopia.pc is not installed in $libdir/pkgconfig"

export PKG_CONFIG_PATH=$pcdir
pc() { pkg-config --define-variable=prefix="$dest$prefix" "$@" hutopia; }
[ "$(pc --modversion)" = "$version" ] || fail "pkg-config --modversion says $(pc --modversion), not $version"
plugindir=$(pc --variable=plugindir)
[ "$plugindir" = "$dest$libdir/hutopia/plugins" ] || fail "plugindir is '$plugindir', not $dest$libdir/hutopia/plugins"
read -r -a flags <<<"$(pc --cflags --libs)"
for f in "${flags[@]}"; do
  case $f in -I/usr/include | -I/usr/include/*) continue ;; -I* | -L*)
    case $f in -?"$dest"*) ;; *) fail "flag $f points outside the install folder" ;; esac ;;
  esac
done

# A build with sanitizers installs a library that needs their runtime.
extra=()
[ -n "$sanitize" ] && [ "$sanitize" != none ] && extra=(-fsanitize="$sanitize")
"${cxx[@]}" "${extra[@]}" -o "$tmp/outoftree" "$src" "${flags[@]}" 2>"$tmp/cc.log" ||
  { cat "$tmp/cc.log" >&2; fail "the out-of-tree program does not compile with pkg-config's flags"; }

export LD_LIBRARY_PATH=$dest$libdir
# Read the whole list first: grep -q would stop reading early, and under
# pipefail the loader's SIGPIPE would fail the check.
loaded=$(LD_TRACE_LOADED_OBJECTS=1 "$tmp/outoftree")
grep -q "libhutopia.so.* => $dest$libdir/" <<<"$loaded" ||
  fail "the program does not load the installed libhutopia"
"$tmp/outoftree" >"$tmp/out.txt" 2>"$tmp/err.txt" || { cat "$tmp/err.txt" >&2; fail "the program failed"; }

cat >"$tmp/want.txt" <<WANT
version $version
header version $version
space outoftree [::1]:0 admin token from-env-0123456789abcdef0123456789
relay error Invalid argument: relayd.toml:2: relay.token_ttl: expected an integer
address 127.0.0.1 8080
base64url -_8
hs256 empty secret refused
WANT
grep -v '^jws ' "$tmp/out.txt" | diff -u "$tmp/want.txt" - >&2 || fail "the program printed something else"

# The token it signed: checked here with Python's own HMAC, not the library's.
/usr/bin/python3 - "$(sed -n 's/^jws //p' "$tmp/out.txt")" <<'PY' || fail "the signed JWS does not check out"
import base64, hashlib, hmac, json, sys
def b64d(s): return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
key = b64d("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")
h, p, sig = sys.argv[1].split(".")
assert json.loads(b64d(h))["alg"] == "HS256", "alg"
assert json.loads(b64d(p)) == {"sub": "u1"}, "payload"
want = hmac.new(key, (h + "." + p).encode(), hashlib.sha256).digest()
assert hmac.compare_digest(b64d(sig), want), "signature"
PY
echo "install: headers, hutopia.pc (plugindir $plugindir) and an out-of-tree program all fine"
