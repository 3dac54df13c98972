#!/usr/bin/env bash
# The demo (`make demo`): installs the dependencies, builds luaspy, starts
# the bundled CPU-bound workload tests/targets/demo.lua under OpenResty's
# luajit, prints its Lua stack with `luaspy dump`, then records 5 seconds
# of samples into a flame graph, demo.svg (foo should be about twice as
# wide as bar: it calls heavy twice, bar once).
#
#   scripts/demo.sh            (as root: deps and eBPF need it)
#   DEMO_SECONDS=10 scripts/demo.sh
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
seconds=${DEMO_SECONDS:-5}
svg=$root/demo.svg

step() { printf '\n== %s\n' "$*"; }

step "dependencies (scripts/deps.sh)"
scripts/deps.sh

step "build (make)"
make

step "start the workload: luajit tests/targets/demo.lua"
log=$(mktemp /tmp/luaspy-demo.XXXXXX.log)
luajit tests/targets/demo.lua >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
sleep 1   # let it run and JIT-compile heavy()'s loop
kill -0 "$pid" 2>/dev/null || { echo "demo workload exited: $(cat "$log")" >&2; exit 1; }
echo "workload pid $pid"

step "luaspy dump -p $pid"
./luaspy dump -p "$pid"

if ./luaspy record --help >/dev/null 2>&1; then
  step "luaspy record -p $pid -d $seconds -o demo.svg"
  ./luaspy record -p "$pid" -d "$seconds" -o "$svg"
  step "flame graph: $svg"
  echo "open it in a browser (e.g. file://$svg)"
else
  step "luaspy record is not available in this build: dump only"
fi
