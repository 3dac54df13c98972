#!/usr/bin/env bash
# `luaspy jit` on real targets (tests/targets/jit_*.lua), both LuaJIT
# builds: a healthy JIT gets no verdict; a loop with a not-yet-implemented
# bytecode shows the abort reason, its location and the blacklisting, and
# generated code full of them an abort-storm; a
# too small maxmcode gives a flush-loop, a path that gets hot late a
# late-compiles verdict (and none with --write --decay 1); an address space
# crowded around the VM gives the mcode storm of the Traffic Server report,
# which --write --jit-off stops, the mmap backtraces naming the hot loop;
# traffic_server+tslua compiles its remap loop in each Lua state with no
# verdict. Bad input fails cleanly.
set -u
. "$(dirname "$0")/lib/harness.sh"

FLAVORS=(openresty upstream)

# jit_json OUT ARGS...: run luaspy jit --json, which must succeed with a
# JSON object on stdout and nothing on stderr.
jit_json() {
  local out=$1; shift
  run_luaspy "$out" "$out.err" jit --json "$@"
  case_log "$out"
  [ "$RC" -eq 0 ] || fail "exit status $RC: $(head -c 300 "$out.err")"
  [ ! -s "$out.err" ] || fail "stderr not empty: $(head -c 300 "$out.err")"
  jq -e 'type == "object" and (.verdicts | type == "array")' "$out" >/dev/null ||
    fail "no JSON object with a verdicts list: $(head -c 200 "$out")"
}

# has_verdict OUT KIND: the kinds present, for messages
kinds() { jq -c '[.verdicts[].kind]' "$1"; }
need_verdict() {
  jq -e --arg k "$2" 'any(.verdicts[]; .kind == $k)' "$1" >/dev/null ||
    fail "no $2 verdict; verdicts: $(kinds "$1")"
}

start_flavor() { # start_flavor FLAVOR SCRIPT: PID, or skip if the build is missing
  [ -x "$(luajit_bin "$1")" ] || skip "$(luajit_bin "$1") missing (scripts/deps.sh)"
  start_luajit "$1" "$2"
}

jit_healthy() {
  local pid out=$TARGETS_TMP/healthy.$$.json
  pid=$(start_flavor "$1" jit_healthy.lua) || fail "target did not start"
  jit_json "$out" -p "$pid" -d 2
  jq -e '.verdicts == []' "$out" >/dev/null || fail "verdicts for a healthy JIT: $(jq -c '.verdicts' "$out")"
  jq -e '.vms | length == 1' "$out" >/dev/null || fail "$(jq '.vms | length' "$out") VMs, expected 1"
  jq -e '.vms[0].jit_on and .vms[0].params.hotloop == 56 and .vms[0].traces.alive >= 1' "$out" >/dev/null ||
    fail "JIT state: $(jq -c '.vms[0] | {jit_on, params, traces}' "$out")"
  jq -e '[.vms[0].trace_list[] | select(.start == "jit_healthy.lua:8" and .samples > 0)] | length >= 1' "$out" >/dev/null ||
    fail "no running trace at jit_healthy.lua:8: $(jq -c '[.vms[0].trace_list[] | {start, samples}]' "$out")"
  expect_target_ok "$pid"
}

jit_nyi() {
  local pid out=$TARGETS_TMP/nyi.$$.json
  pid=$(start_flavor "$1" jit_nyi.lua) || fail "target did not start"
  jit_json "$out" -p "$pid" -d 2
  jq -e 'any(.vms[0].aborts[]; .location == "jit_nyi.lua:10" and (.reason | startswith("NYI: bytecode")) and .blacklisted)' "$out" >/dev/null ||
    fail "no blacklisted NYI abort at jit_nyi.lua:10: $(jq -c '.vms[0].aborts' "$out")"
  jq -e 'any(.vms[0].aborts[]; .reason == "NYI: bytecode 51 (FNEW)")' "$out" >/dev/null ||
    fail "no abort with LuaJIT's wording \"NYI: bytecode 51\": $(jq -c '[.vms[0].aborts[].reason]' "$out")"
  need_verdict "$out" blacklisted
  jq -e 'any(.verdicts[]; .kind == "blacklisted" and (.locations | index("jit_nyi.lua:10")))' "$out" >/dev/null ||
    fail "blacklisted verdict does not name jit_nyi.lua:10: $(jq -c '.verdicts' "$out")"
  expect_target_ok "$pid"
}

jit_flush() {
  local pid out=$TARGETS_TMP/flush.$$.json
  pid=$(start_flavor "$1" jit_flush.lua) || fail "target did not start"
  jit_json "$out" -p "$pid" -d 3
  need_verdict "$out" flush-loop
  jq -e '.vms[0].params.maxmcode == 16 and (.vms[0].flushes | length) >= 2' "$out" >/dev/null ||
    fail "maxmcode $(jq '.vms[0].params.maxmcode' "$out"), $(jq '.vms[0].flushes | length' "$out") flushes"
  # The loops live on lines 14-37: the verdict must name them.
  jq -e '[.verdicts[] | select(.kind == "flush-loop") | .locations[] |
          select(test("^jit_flush.lua:([0-9]+)$")) | capture(":(?<l>[0-9]+)$").l | tonumber |
          select(. >= 14 and . <= 37)] | length >= 3' "$out" >/dev/null ||
    fail "flush-loop verdict does not name the loops: $(jq -c '.verdicts' "$out")"
  expect_target_ok "$pid"
}

# The rare path of jit_late.lua, compiled 6 s after the start.
LATE_LINES='["jit_late.lua:30"]'

jit_aborts() {
  local pid out=$TARGETS_TMP/aborts.$$.json
  pid=$(start_flavor "$1" jit_aborts.lua) || fail "target did not start"
  jit_json "$out" -p "$pid" -d 2
  need_verdict "$out" abort-storm
  jq -e 'any(.verdicts[]; .kind == "abort-storm" and .locations[0] == "jit_aborts_gen:1")' "$out" >/dev/null ||
    fail "abort-storm verdict does not name jit_aborts_gen:1 first: $(jq -c '.verdicts' "$out")"
  jq -e '.vms[0].traces.aborted >= 20 and any(.vms[0].aborts[]; .location == "jit_aborts_gen:1" and (.reason | startswith("NYI: bytecode")))' "$out" >/dev/null ||
    fail "aborts: $(jq -c '.vms[0].traces.aborted' "$out"), $(jq -c '.vms[0].aborts[:3]' "$out")"
  expect_target_ok "$pid"
}

jit_late() {
  local pid out=$TARGETS_TMP/late.$$.json
  pid=$(start_flavor "$1" jit_late.lua) || fail "target did not start"
  jit_json "$out" -p "$pid" -d 9 --warmup 3
  need_verdict "$out" late-compiles
  jq -e --argjson want "$LATE_LINES" 'any(.verdicts[]; .kind == "late-compiles" and any(.locations[]; . as $l | $want | index($l)))' "$out" >/dev/null ||
    fail "late-compiles verdict does not name the rare path: $(jq -c '.verdicts' "$out")"
  jq -e 'any(.vms[0].trace_list[]; .late and .compiled_s != null)' "$out" >/dev/null ||
    fail "no trace marked late in trace_list"
  expect_target_ok "$pid"
}

jit_decay() {
  local pid out=$TARGETS_TMP/decay.$$.json
  pid=$(start_flavor "$1" jit_late.lua) || fail "target did not start"
  jit_json "$out" -p "$pid" -d 9 --warmup 3 --write --decay 1
  jq -e '.writes.decay_rounds >= 8 and .writes.hot_counters_reset > 0 and .writes.failed == 0' "$out" >/dev/null ||
    fail "decay did not run: $(jq -c '.writes' "$out")"
  jq -e --argjson want "$LATE_LINES" 'all(.vms[0].trace_list[]; . as $t | $want | index($t.start) | not)' "$out" >/dev/null ||
    fail "the rare path was compiled despite --decay: $(jq -c '[.vms[0].trace_list[] | {start, compiled_s}]' "$out")"
  jq -e 'any(.vms[0].trace_list[]; .start == "jit_late.lua:22" and .freed_s == null and .samples > 0)' "$out" >/dev/null ||
    fail "the hot path (jit_late.lua:22) is not compiled and running: $(jq -c '[.vms[0].trace_list[] | {start, samples}]' "$out")"
  jq -e 'all(.verdicts[]; .kind != "late-compiles")' "$out" >/dev/null || fail "late-compiles despite --decay: $(kinds "$out")"
  expect_target_ok "$pid"
}

jit_storm() {
  local pid out=$TARGETS_TMP/storm.$$.json
  pid=$(start_flavor "$1" jit_storm.lua) || fail "target did not start"
  jit_json "$out" -p "$pid" -d 2
  jq -e '.syscalls.traced' "$out" >/dev/null || skip "syscalls not traced: $(jq -r '.syscalls.why' "$out")"
  need_verdict "$out" mcode-storm
  jq -e '.syscalls.failed_placements >= 100 and any(.syscalls.mmap_sizes[]; .bytes == 65536)' "$out" >/dev/null ||
    fail "syscalls: $(jq -c '.syscalls' "$out")"
  jq -e 'any(.verdicts[]; .kind == "mcode-storm" and (.locations | index("jit_storm.lua:48")))' "$out" >/dev/null ||
    fail "mcode-storm verdict does not name jit_storm.lua:48: $(jq -c '.verdicts' "$out")"
  # The sampled backtraces of the mmaps: native allocator frames, then the
  # hot loop's Lua frame, in the naming contract.
  jq -e '.syscalls.backtraces.mmap.sampled > 0 and .syscalls.backtraces.mmap.top[0].site == "jit_storm.lua:48" and
         any(.syscalls.backtraces.mmap.top[0].frames[]; .frame == "hot (jit_storm.lua:48)" and .kind == "lua") and
         (.syscalls.backtraces.mmap.top[0].frames[0].frame | startswith("C:"))' "$out" >/dev/null ||
    fail "mmap backtraces: $(jq -c '.syscalls.backtraces.mmap | {sampled, top: [.top[] | {site, frames: [.frames[].frame]}]}' "$out")"
  jq -e 'any(.verdicts[]; .kind == "mcode-storm" and (.text | contains("from Lua at hot (jit_storm.lua:48)")))' "$out" >/dev/null ||
    fail "mcode-storm verdict does not name the Lua code making the mmaps: $(jq -c '[.verdicts[].text]' "$out")"
  expect_target_ok "$pid"
}

jit_off() {
  local pid out=$TARGETS_TMP/off.$$.json after=$TARGETS_TMP/off-after.$$.json
  pid=$(start_flavor "$1" jit_storm.lua) || fail "target did not start"
  jit_json "$out" -p "$pid" -d 2 --write --jit-off
  jq -e '.writes.jit_off and (.vms[0].jit_on | not) and (.vms[0].dispatch_jit | not)' "$out" >/dev/null ||
    fail "JIT not off: $(jq -c '.vms[0] | {jit_on, dispatch_jit}' "$out")"
  # At most the one attempt that was under way (32 mmaps per attempt).
  jq -e '(.syscalls.traced | not) or .syscalls.mmap_after_jit_off <= 32' "$out" >/dev/null ||
    fail "still mapping after --jit-off: $(jq -c '.syscalls.mmap_after_jit_off' "$out") mmaps"
  jit_json "$after" -p "$pid" -d 1
  jq -e '(.vms[0].jit_on | not) and .verdicts == [] and ((.syscalls.traced | not) or .syscalls.mmap == 0)' "$after" >/dev/null ||
    fail "after --jit-off: $(jq -c '{jit: .vms[0].jit_on, mmap: .syscalls.mmap, v: [.verdicts[].kind]}' "$after")"
  jq -e '.vms[0].vmstate_samples.interpreted > 0' "$after" >/dev/null || fail "the VM does not run Lua any more"
  expect_target_ok "$pid"
}

# traffic_server with tests/targets/ats/jit_hot.lua as its "/" remap
# (start_ats takes its Lua from TARGETS_DIR): two remap Lua states.
JIT_HOT=$ROOT/tests/targets/ats/jit_hot.lua
line_of() { grep -n -F -- "$2" "$1" | head -n 1 | cut -d: -f1; }
start_jit_ats() {
  local dir=$TARGETS_TMP/jit-targets
  mkdir -p "$dir/ats"
  cp "$ROOT/tests/targets/ready.lua" "$dir/"
  cp "$ROOT/tests/targets/ats/global.lua" "$ROOT/tests/targets/ats/spin.lua" "$dir/ats/"
  cp "$JIT_HOT" "$dir/ats/hello.lua"
  ATS_LUA_STATES=2 TARGETS_DIR=$dir start_ats
}

jit_ats() {
  local pid port out=$TARGETS_TMP/ats.$$.json line vms
  command -v curl >/dev/null || skip "curl missing"
  pid=$(start_jit_ats) || skip "traffic_server did not start"
  port=$(target_port "$pid")
  # Requests from 4 clients, so that both net threads (and their Lua
  # states) serve some, before and during the window.
  local t0=$SECONDS lps=() i
  seq 40 | xargs -P 4 -I{} curl -s -m 5 -o /dev/null "http://127.0.0.1:$port/r{}"
  for i in 1 2 3 4; do
    (while :; do curl -s -m 5 -o /dev/null "http://127.0.0.1:$port/w$i"; done) &
    lps+=($!)
  done
  echo "the first 40 requests took $((SECONDS - t0)) s"
  jit_json "$out" -p "$pid" -d 2 --warmup 600
  kill "${lps[@]}" 2>/dev/null
  line=$(line_of "$JIT_HOT" "for i = 1, n do")
  # chunk names are the script's full path
  vms=$(jq --arg loc "/hello.lua:$line" '[.vms[] | select(any(.trace_list[]; .start | endswith($loc)))] | length' "$out")
  echo "VMs: $(jq '.vms | length' "$out"), with a trace at hello.lua:$line: $vms"
  [ "$vms" -ge 2 ] || fail "no VM compiled the remap's loop: $(jq -c '[.vms[] | [.trace_list[].start]]' "$out")"
  jq -e '.verdicts == []' "$out" >/dev/null || fail "verdicts for a healthy traffic_server: $(jq -c '.verdicts' "$out")"
  jq -e '.syscalls.traced | not' "$out" >/dev/null ||
    jq -e '.syscalls.backtraces | has("mmap") and has("munmap") and has("mprotect")' "$out" >/dev/null ||
    fail "no backtraces object: $(jq -c '.syscalls | keys' "$out")"
  expect_target_ok "$pid"
}

jit_text_and_timeline() {
  local pid out=$TARGETS_TMP/text.$$ svg=$TARGETS_TMP/tl.$$.svg html=$TARGETS_TMP/tl.$$.html
  pid=$(start_luajit openresty jit_flush.lua) || fail "target did not start"
  run_luaspy "$out" "$out.err" jit -p "$pid" -d 1 -o "$svg"
  case_log "$out"
  [ "$RC" -eq 0 ] || fail "exit status $RC: $(head -c 300 "$out.err")"
  grep -q '^VM 0x[0-9a-f]* LuaJIT 2.1 openresty: JIT on$' "$out" || fail "no 'VM ... JIT on' line"
  grep -q '^  parameters: maxtrace=8000 .* sizemcode=4 maxmcode=16$' "$out" || fail "no parameters line"
  grep -q '^  flush-loop: ' "$out" || fail "no flush-loop verdict line"
  grep -q '^<svg ' "$svg" || fail "$svg is not an SVG"
  run_luaspy "$out" "$out.err" jit -p "$pid" -d 1 -o "$html" --json
  [ "$RC" -eq 0 ] || fail "exit status $RC: $(head -c 300 "$out.err")"
  grep -q '<!DOCTYPE html>' "$html" && grep -q '<b>flush-loop</b>' "$html" || fail "$html lacks the page or its verdicts"
}

bad_usage() { # bad_usage ARGS...: exit 2, one line
  local out=$TARGETS_TMP/bad.$$
  run_luaspy "$out" "$out.err" jit "$@"
  expect_clean_error "$out" "$out.err"
  [ "$RC" -eq 2 ] || fail "exit status $RC, expected 2"
}

bad_not_lua() {
  local pid out=$TARGETS_TMP/notlua.$$
  pid=$(start_cmd sleep 100) || fail "sleep did not start"
  run_luaspy "$out" "$out.err" jit -p "$pid" -d 1
  expect_clean_error "$out" "$out.err"
  [ "$RC" -eq 1 ] || fail "exit status $RC, expected 1"
}

for flavor in "${FLAVORS[@]}"; do
  case_run "jit: $flavor healthy: no verdict" jit_healthy "$flavor"
  case_run "jit: $flavor NYI abort reason, location, blacklisted" jit_nyi "$flavor"
  case_run "jit: $flavor small maxmcode: flush-loop" jit_flush "$flavor"
  case_run "jit: $flavor generated code that cannot compile: abort-storm" jit_aborts "$flavor"
  case_run "jit: $flavor rare path hot after warm-up: late-compiles" jit_late "$flavor"
  case_run "jit: $flavor --write --decay 1 keeps the rare path interpreted" jit_decay "$flavor"
  case_run "jit: $flavor crowded address space: mcode-storm" jit_storm "$flavor"
  case_run "jit: $flavor --write --jit-off stops the storm" jit_off "$flavor"
done
case_run "jit: traffic_server tslua remap with a hot loop: traces per VM, no verdict" jit_ats
case_run "jit: text output and timeline (svg, html)" jit_text_and_timeline
case_run "jit bad: --decay without --write" bad_usage -p 1 --decay 1
case_run "jit bad: --write alone" bad_usage -p 1 --write
case_run "jit bad: no pid" bad_usage -d 1
case_run "jit bad: unknown flag" bad_usage -p 1 --no-such-flag
case_run "jit bad: duration not a number" bad_usage -p 1 -d soon
case_run "jit bad: non-Lua process (sleep)" bad_not_lua
