#!/usr/bin/env bash
# `luaspy heap` on real targets: both LuaJIT builds running
# tests/targets/heap_big.lua (a global BIG of 100,000 distinct strings, a
# module table package.loaded["metrics"].lookup that keeps growing), the
# nginx leak of issue #5 under wrk load (tests/targets/heap_leak.lua),
# traffic_server's tslua VMs, and bad input.
set -u
. "$(dirname "$0")/lib/harness.sh"

# heap_json OUT ARGS...: `luaspy heap ARGS --json`, which must succeed with
# JSON and leave the target alone (its PID is the value after -p).
heap_json() {
  local out=$1; shift
  local pid=$2
  run_luaspy "$out" "$out.err" heap "$@" --json
  case_log "$out"
  [ "$RC" -eq 0 ] || fail "heap $* exited $RC: $(head -c 300 "$out.err" | tr '\n' '|')"
  jq -e . "$out" >/dev/null 2>&1 || fail "heap $*: output is not JSON: $(head -c 200 "$out")"
  jq -e '(.snapshot_seconds | type == "number") and (.peak_rss_bytes > 0) and (.bytes_read > 0) and (.measured | type == "string")' "$out" >/dev/null ||
    fail "heap $*: no snapshot_seconds/peak_rss_bytes/bytes_read/measured"
  expect_target_ok "$pid"
}

# jq_ok FILE WHAT EXPR: fail with WHAT unless EXPR holds on FILE.
jq_ok() { jq -e "$3" "$1" >/dev/null || fail "$2 ($(jq -c "${4:-.vms[0].largest_tables[0:3] | map({path, bytes, entries})}" "$1" | head -c 400))"; }

heap_luajit() {
  local flavor=$1 pid out=$TARGETS_TMP/heap.$$.json
  pid=$(start_luajit "$flavor" heap_big.lua) || fail "target did not start"
  heap_json "$out" -p "$pid"
  jq_ok "$out" "not 1 VM of flavor $flavor" ".vms | length == 1 and .[0].flavor == \"$flavor\""
  jq_ok "$out" "target reported stopped" '.stopped == false and (.measured | test("not stopped"))'
  jq_ok "$out" "_G.BIG is not the table with 100000 entries" \
    '.vms[0].largest_tables | any(.path == "_G.BIG" and .entries == 100000 and .bytes >= 800000)'
  jq_ok "$out" "package.loaded[\"metrics\"].lookup not among the largest tables" \
    '.vms[0].largest_tables | any(.path == "package.loaded[\"metrics\"].lookup" and .entries >= 500)'
  jq_ok "$out" "fewer than 100000 strings on the GC lists / reached" \
    '.vms[0].census.types.string.objects >= 100000 and .vms[0].reached.types.string.objects >= 100000' \
    '.vms[0].census.types.string, .vms[0].reached.types.string'
  jq_ok "$out" "implausible type counts" \
    '.vms[0] | .census.types as $t | $t.table.objects >= 3 and $t.function.objects >= 10 and $t.prototype.objects >= 1
      and $t.thread.objects >= 1 and .census.bytes <= .gc_total_bytes * 2 and .census.bytes >= 1000000
      and .reached.types.table.objects >= 3 and .reached.skipped == 0' '.vms[0].census'
  # The text form names the same paths and says what it measured.
  run_luaspy "$out.txt" "$out.err" heap -p "$pid" -n 3
  case_log "$out.txt"
  [ "$RC" -eq 0 ] || fail "text: exit $RC"
  grep -Eq '^ +[0-9]+ +100000 +[0-9]+  _G\.BIG$' "$out.txt" || fail "text: no _G.BIG row"
  grep -q 'live snapshot, target not stopped' "$out.txt" || fail "text: does not say it was a live snapshot"
  grep -Eq '^snapshot: [0-9.]+ s, [0-9]+ bytes read from the target; luaspy peak RSS [0-9]+ bytes$' "$out.txt" ||
    fail "text: no snapshot time / peak RSS footer"
}

heap_diff() {
  local flavor=$1 pid out=$TARGETS_TMP/diff.$$.json
  pid=$(start_luajit "$flavor" heap_big.lua) || fail "target did not start"
  heap_json "$out" -p "$pid" --diff 2
  jq_ok "$out" "diff_seconds is not 2" '.diff_seconds == 2'
  jq_ok "$out" "the first grown table is not package.loaded[\"metrics\"].lookup, grown by >= 5000 entries" \
    '.vms[0].grown_tables[0] | .path == "package.loaded[\"metrics\"].lookup" and .entries - .entries_before >= 5000 and (.new | not)' \
    '.vms[0].grown_tables[0:3]'
  jq_ok "$out" "_G.BIG listed as grown" '.vms[0].grown_tables | all(.path != "_G.BIG")' '.vms[0].grown_tables'
  # The text form: "BYTES -> BYTES ENTRIES -> ENTRIES PATH" rows.
  run_luaspy "$out.txt" "$out.err" heap -p "$pid" --diff 1 -n 3
  case_log "$out.txt"
  [ "$RC" -eq 0 ] || fail "text --diff: exit $RC"
  grep -q "heap growth over 1.0 s" "$out.txt" || fail "text --diff: no 'heap growth over 1.0 s' header"
  grep -Eq '^ +[0-9]+ -> +[0-9]+ +[0-9]+ -> +[0-9]+  package\.loaded\["metrics"\]\.lookup$' "$out.txt" ||
    fail "text --diff: no row for package.loaded[\"metrics\"].lookup"
}

heap_flame() {
  local pid out=$TARGETS_TMP/flame.$$ big
  pid=$(start_luajit openresty heap_big.lua) || fail "target did not start"
  run_luaspy "$out.txt" "$out.err" heap -p "$pid" -o "$out.folded"
  case_log "$out.folded"
  [ "$RC" -eq 0 ] || fail "-o .folded: exit $RC: $(head -c 300 "$out.err")"
  grep -q "^flame graph: $out.folded$" "$out.txt" || fail "text does not name the flame graph"
  # _G.BIG holds its table and its 100000 strings (>= 24 bytes each).
  big=$(awk '$1 == "_G;.BIG" {print $2}' "$out.folded")
  [ -n "$big" ] && [ "$big" -ge 3400000 ] || fail "_G;.BIG weighs '${big}' bytes, expected >= 3400000"
  grep -q '^package.loaded;\["metrics"\];.lookup [0-9]*$' "$out.folded" || fail "no package.loaded;[\"metrics\"];.lookup stack"
  run_luaspy "$out.txt" "$out.err" heap -p "$pid" -o "$out.svg"
  [ "$RC" -eq 0 ] || fail "-o .svg: exit $RC: $(head -c 300 "$out.err")"
  grep -q '<svg' "$out.svg" && grep -q '\.BIG' "$out.svg" || fail "SVG without .BIG"
  expect_target_ok "$pid"
}

heap_stop() {
  local pid out=$TARGETS_TMP/stop.$$.json
  pid=$(start_luajit upstream heap_big.lua) || fail "target did not start"
  heap_json "$out" -p "$pid" --stop
  jq_ok "$out" "--stop: not reported as stopped" '.stopped == true and (.measured | test("stopped"))'
  jq_ok "$out" "--stop: _G.BIG missing" '.vms[0].largest_tables | any(.path == "_G.BIG")'
  jq_ok "$out" "--stop: objects skipped in a stopped target" '.vms[0].census.skipped == 0 and .vms[0].reached.skipped == 0'
}

heap_limits() {
  # Bounds hold and say so: 200 objects, 100 entries per table.
  local pid out=$TARGETS_TMP/lim.$$.json
  pid=$(start_luajit openresty heap_big.lua) || fail "target did not start"
  heap_json "$out" -p "$pid" --max-objects 200 --max-entries 100
  jq_ok "$out" "--max-objects not reported" '.vms[0].reached.incomplete == "stopped at --max-objects" and .vms[0].reached.objects <= 200' '.vms[0].reached'
  jq_ok "$out" "--max-entries not reported" '.vms[0].entries_capped >= 1' '.vms[0]'
}

heap_churn() {
  # Snapshots of a heap changing all the time: each must finish, with
  # sane figures, whatever it had to skip.
  local flavor=$1 pid out=$TARGETS_TMP/churn.$$ n
  pid=$(start_luajit "$flavor" heap_churn.lua) || fail "target did not start"
  for n in 1 2 3 4 5; do
    heap_json "$out.$n.json" -p "$pid"
    jq_ok "$out.$n.json" "snapshot $n: _G.CHURN missing" \
      '.vms[0].largest_tables | any(.path == "_G.CHURN" and .entries > 1000)'
    # A list the GC changed under every try is cut short, and says so.
    jq_ok "$out.$n.json" "snapshot $n: implausible counts" \
      '.vms[0] | (.census.types.table.objects > 1000 or .census.incomplete != null)
        and .reached.types.table.objects > 1000 and .reached.types.string.objects > 1000' '.vms[0] | [.census, .reached]'
  done
}

heap_nginx_leak() {
  command -v wrk >/dev/null || skip "wrk missing"
  local w port out=$TARGETS_TMP/ngx.$$.json
  w=$(start_nginx "$TARGETS_DIR/heap_leak.lua" 1) || fail "nginx did not start"
  port=$(target_port "$w")
  wrk -t1 -c4 -d8s "http://127.0.0.1:$port/t" >/dev/null 2>&1 &
  sleep 1
  heap_json "$out" -p "$w" --diff 2
  wait
  jq_ok "$out" "the leaking table is not the first grown table" \
    '.vms[0].grown_tables[0] | (.path | test("^upvalue \"lookup\" of main \\(.*test\\.lua:8\\)$")) and .entries > .entries_before' \
    '.vms[0].grown_tables[0:3]'
}

heap_ats() {
  local pid out=$TARGETS_TMP/ats.$$.json
  pid=$(ATS_LUA_STATES=4 start_ats) || skip "traffic_server did not start (see start_ats)"
  heap_json "$out" -p "$pid"
  jq_ok "$out" "not 8 VMs" '.vms | length == 8' '.vms | length'
  jq_ok "$out" "a VM without package.loaded or strings" \
    'all(.vms[]; .census.types.string.objects > 100 and (.largest_tables | any(.path == "package.loaded")))' \
    '[.vms[] | .largest_tables[0:2]]'
}

# ---- bad input ---------------------------------------------------------------

heap_bad_no_such_pid() {
  local pid out=$TARGETS_TMP/bad.$$
  true & pid=$!
  wait "$pid"
  [ -z "$(proc_state "$pid")" ] || skip "pid $pid reused already"
  run_luaspy "$out" "$out.err" heap -p "$pid"
  expect_clean_error "$out" "$out.err"
  [ "$RC" -eq 1 ] || fail "exit $RC, expected 1"
}

heap_bad_non_lua() {
  local pid out=$TARGETS_TMP/bad.$$
  pid=$(start_cmd sleep 100) || fail "sleep did not start"
  run_luaspy "$out" "$out.err" heap -p "$pid" --json
  expect_clean_error "$out" "$out.err"
  [ "$RC" -eq 1 ] || fail "exit $RC, expected 1"
  expect_target_ok "$pid"
}

heap_bad_usage() {
  local pid out=$TARGETS_TMP/bad.$$ args
  pid=$(start_luajit openresty heap_big.lua) || fail "target did not start"
  for args in "" "-p" "-p abc" "-p $pid --diff 0" "-p $pid --diff x" "-p $pid --bogus" \
    "-p $pid -o x.png" "-p $pid --top 0" "-p $pid --max-objects -1" "-p $pid extra"; do
    # shellcheck disable=SC2086  # word splitting on purpose
    run_luaspy "$out" "$out.err" heap $args
    expect_clean_error "$out" "$out.err"
    [ "$RC" -eq 2 ] || fail "heap $args: exit $RC, expected 2"
  done
  run_luaspy "$out" "$out.err" heap --help
  [ "$RC" -eq 0 ] && grep -q 'first path' "$out" || fail "heap --help: exit $RC or no word on the approximation"
  expect_target_ok "$pid"
}

for flavor in openresty upstream; do
  case_run "heap: $flavor heap_big.lua: _G.BIG, metrics lookup, type counts" heap_luajit "$flavor"
  case_run "heap: $flavor --diff 2 names the growing table" heap_diff "$flavor"
done
for flavor in openresty upstream; do
  case_run "heap: $flavor heap churning under the walk: 5 live snapshots" heap_churn "$flavor"
done
case_run "heap: -o folded/svg flame graph by reference path" heap_flame
case_run "heap: --stop stops, says so, skips nothing" heap_stop
case_run "heap: --max-objects/--max-entries bound the walk" heap_limits
case_run "heap: nginx leak under wrk, --diff names the table" heap_nginx_leak
case_run "heap: traffic_server tslua, 8 VMs" heap_ats
case_run "heap: bad: no such pid" heap_bad_no_such_pid
case_run "heap: bad: non-Lua process" heap_bad_non_lua
case_run "heap: bad: usage errors exit 2, --help exits 0" heap_bad_usage
