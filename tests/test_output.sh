#!/bin/bash
# Tests of the output writers (src/output) and of `luaspy report`:
#   - the C unit tests in tests/output/test_output.c, under ASan and UBSan;
#   - the SVG flame graph in headless Chromium (tests/output/
#     flamegraph_check.html): it renders, hover, search, zoom work, and
#     hostile frame names stay text;
#   - `$LUASPY report` end to end, skipped if the binary is not built.
# Prints "ok NAME", "FAIL NAME: why" or "skip NAME: why" per case and
# exits 1 if any case failed (the protocol of tests/lib/harness.sh, whose
# LUASPY and LUASPY_TEST_FILTER it follows; it needs no targets).
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${LUASPY:-}" ]; then
  if [ -x "$root/build/asan/luaspy" ]; then LUASPY=$root/build/asan/luaspy
  else LUASPY=$root/luaspy; fi
fi
case $LUASPY in /*) luaspy=$LUASPY ;; *) luaspy=$PWD/$LUASPY ;; esac
cc=${CC:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0

# Every case runs; LUASPY_TEST_FILTER (a glob) picks the ones reported.
selected() {
  # shellcheck disable=SC2053  # glob match on purpose
  [ -z "${LUASPY_TEST_FILTER:-}" ] || [[ $1 == $LUASPY_TEST_FILTER ]]
}
ok() { if selected "$1"; then echo "ok $1"; fi; }
fail() { if selected "$1"; then echo "FAIL $1: $2"; failed=1; fi; }
skip() { if selected "$1"; then echo "skip $1: $2"; fi; }
first_line() { head -n 1 "$1" | cut -c 1-300; }

# The pprof writer needs the C that protoc-c makes of its profile.proto
# (as the Makefile does into build/proto).
mkdir -p "$tmp/proto"
protoc-c --proto_path="$root/src/output/proto" --c_out="$tmp/proto" \
  "$root/src/output/proto/profile.proto" 2>"$tmp/protoc.log" ||
  echo "protoc-c failed: $(head -n 1 "$tmp/protoc.log")" >&2
proto=(-I"$tmp/proto")
protolib=("$tmp/proto/profile.pb-c.c" -lprotobuf-c -lz)

# Our sources must build without warnings with every compiler we have.
for c in gcc clang; do
  command -v "$c" >/dev/null || { skip "warnings ($c)" "$c not installed"; continue; }
  if "$c" -std=gnu11 -Wall -Wextra -Werror -fsyntax-only "${proto[@]}" \
       "$root"/src/output/*.c "$root/src/cmd/report.c" 2>"$tmp/warn.log"; then
    ok "warnings ($c)"
  else
    fail "warnings ($c)" "$(first_line "$tmp/warn.log")"
  fi
done

# Unit tests: they print the protocol's lines themselves.
if "$cc" -std=gnu11 -Wall -Wextra -Werror -g -O1 \
     -fsanitize=address,undefined -fno-sanitize-recover=all \
     -fno-omit-frame-pointer -I"$root/src/output" "${proto[@]}" \
     "$root/tests/output/test_output.c" "$root"/src/output/*.c \
     "${protolib[@]}" -lm \
     -o "$tmp/test_output" 2>"$tmp/cc.log"; then
  "$tmp/test_output" >"$tmp/unit.txt" 2>"$tmp/unit.log"
  status=$?
  while IFS= read -r line; do
    case $line in
    "ok "*) ok "${line#ok }" ;;
    "FAIL "*) rest=${line#FAIL }; fail "${rest%%: *}" "${rest#*: }" ;;
    esac
  done <"$tmp/unit.txt"
  # A crash or a sanitizer report ends the run before its last case.
  if [ "$status" -ne 0 ] && ! grep -q '^FAIL ' "$tmp/unit.txt"; then
    fail "unit tests" "exit status $status: $(grep -m 1 'ERROR\|runtime error' "$tmp/unit.log" | cut -c 1-300)"
  fi
else
  fail "unit tests build" "$(first_line "$tmp/cc.log")"
fi

# The flame graph the browser check expects, also checked as plain XML.
svg_ready=0
if [ -x "$tmp/test_output" ] && "$tmp/test_output" --svg "$tmp/graph.svg"; then
  svg_ready=1
  if command -v python3 >/dev/null; then
    if python3 -c 'import sys, xml.dom.minidom as m; m.parse(sys.argv[1])' \
         "$tmp/graph.svg" 2>"$tmp/xml.log"; then
      ok "svg is well-formed XML"
    else
      fail "svg is well-formed XML" "$(tail -n 1 "$tmp/xml.log")"
    fi
  else
    skip "svg is well-formed XML" "python3 not installed"
  fi
fi

chromium_available() {
  command -v chromium >/dev/null && return 0
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || return 1
  export DEBIAN_FRONTEND=noninteractive
  { apt-get install -y -qq chromium || { apt-get update -qq &&
      apt-get install -y -qq chromium; }; } >"$tmp/apt.log" 2>&1
  command -v chromium >/dev/null
}

if [ "$svg_ready" = 0 ]; then
  skip "browser" "no flame graph to load (unit tests did not build)"
elif ! chromium_available; then
  skip "browser" "chromium not installed and cannot be installed"
else
  cp "$root"/tests/output/flamegraph_check.html \
     "$root"/tests/output/flamegraph_check.js "$tmp/"
  # File access between file:// pages lets the check reach into the
  # SVG's document; no server needed.
  timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic \
    --no-first-run --disable-background-networking --disable-component-update \
    --disable-sync --disable-dev-shm-usage --allow-file-access-from-files \
    --user-data-dir="$tmp/chromium" --virtual-time-budget=5000 \
    --dump-dom "file://$tmp/flamegraph_check.html" \
    >"$tmp/dom.html" 2>"$tmp/chromium.log"
  status=$?
  sed -n '/<pre id="results">/,/<\/pre>/p' "$tmp/dom.html" |
    sed 's/<[^>]*>//g; s/&lt;/</g; s/&gt;/>/g; s/&quot;/"/g; s/&amp;/\&/g' \
    >"$tmp/browser.txt"
  while IFS= read -r line; do
    case $line in
    "ok "*) ok "browser: ${line#ok }" ;;
    "FAIL "*) rest=${line#FAIL }; fail "browser: ${rest%%: *}" "${rest#*: }" ;;
    esac
  done <"$tmp/browser.txt"
  grep -qx 'done' "$tmp/browser.txt" ||
    fail "browser" "the page did not finish (chromium exit status $status)"
fi

# `luaspy report`, end to end.
report() { # report ARGS...: stdout in $tmp/out, stderr in $tmp/err, $rc
  "$luaspy" report "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
}

# expect NAME RC [STDERR-START]: the last report call exited RC and wrote
# one stderr line starting so (or nothing, without STDERR-START).
expect() {
  local name=$1 want=$2 msg=${3:-}
  if [ "$rc" -ne "$want" ]; then
    fail "$name" "exit status $rc, expected $want ($(first_line "$tmp/err"))"
  elif [ -z "$msg" ] && [ -s "$tmp/err" ]; then
    fail "$name" "unexpected stderr: $(first_line "$tmp/err")"
  elif [ -n "$msg" ] && { [ "$(wc -l <"$tmp/err")" -ne 1 ] ||
                          [ "${msg}" != "$(head -c ${#msg} "$tmp/err")" ]; }; then
    fail "$name" "stderr: $(first_line "$tmp/err")"
  else
    return 0
  fi
  return 1
}

if [ ! -x "$luaspy" ]; then
  skip "report" "no luaspy binary at $luaspy (build it, or set LUASPY)"
  exit "$failed"
fi

printf '%s\n' 'main (a.lua:1);f (a.lua:2) 3' '[GC] 1' \
  'main (a.lua:1);<script>alert(1)</script> (x.lua:1) 2' \
  'main (a.lua:1);f (a.lua:2) 4' >"$tmp/in.folded"

report --help
expect "report --help" 0 && grep -q '^usage: luaspy report INPUT' "$tmp/out" &&
  ok "report --help"

report "$tmp/in.folded"
expect "report folded to stdout" 0 &&
  if [ "$(cat "$tmp/out")" = "$(printf '%s\n' '[GC] 1' \
       'main (a.lua:1);<script>alert(1)</script> (x.lua:1) 2' \
       'main (a.lua:1);f (a.lua:2) 7')" ]; then
    ok "report folded to stdout"
  else
    fail "report folded to stdout" "got: $(head -c 200 "$tmp/out")"
  fi

report "$tmp/in.folded" -o "$tmp/out.svg" --title 'T <&>'
expect "report -o x.svg" 0 &&
  if grep -q '&lt;script&gt;alert(1)' "$tmp/out.svg" &&
     grep -q '>T &lt;&amp;&gt;</text>' "$tmp/out.svg" &&
     [ "$(grep -c '<script' "$tmp/out.svg")" = 1 ]; then
    ok "report -o x.svg"
  else
    fail "report -o x.svg" "flame graph content not as expected"
  fi

report - --format svg <"$tmp/in.folded"
expect "report stdin to svg" 0 &&
  if head -n 1 "$tmp/out" | grep -q '^<?xml'; then ok "report stdin to svg"
  else fail "report stdin to svg" "no SVG on stdout"; fi

report "$tmp/in.folded" -o "$tmp/out.txt"
expect "report -o x.txt" 0 && grep -qx '\[GC\] 1' "$tmp/out.txt" &&
  ok "report -o x.txt"

report
expect "report without INPUT" 2 "luaspy: report: missing INPUT" &&
  ok "report without INPUT"

report "$tmp/in.folded" --bogus
expect "report unknown option" 2 "luaspy: report: unknown option '--bogus'" &&
  ok "report unknown option"

report "$tmp/in.folded" -o
expect "report -o without argument" 2 \
  "luaspy: report: option '-o' needs a value" &&
  ok "report -o without argument"

report "$tmp/in.folded" "$tmp/in.folded"
expect "report two inputs" 2 "luaspy: report: one INPUT only" &&
  ok "report two inputs"

report "$tmp/in.folded" -o "$tmp/out.png"
expect "report unknown extension" 2 "luaspy: cannot tell the format" &&
  [ ! -e "$tmp/out.png" ] && ok "report unknown extension"

report "$tmp/in.folded" --format pdf
expect "report unknown format" 2 "luaspy: unknown output format 'pdf'" &&
  ok "report unknown format"

report "$tmp/missing.folded"
expect "report missing input" 1 \
  "luaspy: cannot open $tmp/missing.folded: No such file or directory" &&
  ok "report missing input"

printf 'a;b 1\na;b one\n' >"$tmp/bad.folded"
report "$tmp/bad.folded"
expect "report bad line" 1 "luaspy: line 2: the count is not a whole number" &&
  ok "report bad line"

report "$tmp/in.folded" --format svg -o /dev/full
expect "report to a full disk" 1 \
  "luaspy: writing /dev/full: No space left on device" &&
  ok "report to a full disk"

"$luaspy" report "$tmp/in.folded" >/dev/full 2>"$tmp/err"
rc=$?
expect "report stdout on a full disk" 1 \
  "luaspy: writing standard output: No space left on device" &&
  ok "report stdout on a full disk"

exit "$failed"
