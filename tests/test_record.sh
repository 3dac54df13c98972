#!/usr/bin/env bash
# `luaspy record`: eBPF sampling of real targets into folded stacks.
#
# The seed experiment: heavy() sums 1..N; foo() calls it twice, bar() once
# (not as a tail call), the main loop calls foo then bar. foo's share of
# foo+bar must be 2/3 (0.60..0.73 allowed) with the JIT on (trace frames),
# off (interpreted), with heavy calling C.sqrt through the FFI (a sqrt leaf
# named from libm), and with --lines (the line of `sum = sum + i`; with
# the JIT off), on both LuaJIT builds. Then the twin check against dump's
# walker on the scripts of tests/targets (pcall, coroutines, varargs,
# metamethods, traces...) and on a ~620-frame mixed stack, a 1200-deep
# recursion unwound whole, a command started by record, a target exiting,
# folded output on stdout, nginx workers under wrk load via --children,
# detaching on signals, and bad input.
set -u
. "$(dirname "$0")/lib/harness.sh"

# Long enough for about a thousand samples of a busy thread on a loaded
# machine, short enough for the whole file to take about a minute.
HZ=999
SECS=2
SHARE_MIN=0.60
SHARE_MAX=0.73

SEED=$TARGETS_TMP/seed.lua
SUM_LINE=18 # the line of `sum = sum + i` below
cat >"$SEED" <<'LUA'
-- luaspy record's seed experiment: seed.lua MODE (jit, interp or ffi).
local ready = require "ready"
local mode = arg[1] or "jit"
if mode == "interp" then jit.off() end
local N = mode == "interp" and 200000 or 1000000
local C
if mode == "ffi" then
  local ffi = require "ffi"
  ffi.cdef "double sqrt(double);"
  C = ffi.C
end

local function heavy(n)
  local sum = 0
  if C then
    for i = 1, n do sum = sum + C.sqrt(i) end
  else
    for i = 1, n do sum = sum + i end
  end
  return sum
end

local function foo()
  return heavy(N) + heavy(N)
end

local function bar()
  local r = heavy(N)
  return r
end

local t = 0
ready() while true do t = t + foo() t = t + bar() end
LUA

# record_folded OUT ARGS...: `luaspy record ARGS -o OUT` (folded), which
# must succeed with samples in OUT and a summary on stderr.
record_folded() {
  local out=$1; shift
  run_luaspy "$out.stdout" "$out.err" record -F "$HZ" "$@" -o "$out"
  case_log "$out"
  case_log "$out.err"
  [ "$RC" -eq 0 ] || fail "record exited $RC: $(head -c 300 "$out.err" | tr '\n' '|')"
  [ -s "$out" ] || fail "record wrote no stacks"
  grep -q '^luaspy: [0-9]* samples, [0-9.]*% unwound' "$out.err" ||
    fail "no summary on stderr: $(head -c 200 "$out.err" | tr '\n' '|')"
}

# Sum of the counts of the stacks through a frame matching the ERE.
count_through() { grep -E "$2" "$1" | awk '{n += $NF} END {print n + 0}'; }

# foo's share of foo+bar in folded file $1, checked against the range.
expect_share() {
  local foo bar
  foo=$(count_through "$1" ';foo \(')
  bar=$(count_through "$1" ';bar \(')
  [ $((foo + bar)) -ge 100 ] || fail "only $((foo + bar)) samples in foo or bar"
  awk -v f="$foo" -v b="$bar" -v lo=$SHARE_MIN -v hi=$SHARE_MAX \
    'BEGIN {s = f / (f + b); printf "foo share %.3f (foo %d, bar %d)\n", s, f, b; exit !(s >= lo && s <= hi)}' ||
    fail "foo's share $(awk -v f="$foo" -v b="$bar" 'BEGIN {printf "%.3f", f / (f + b)}') (foo $foo, bar $bar) outside $SHARE_MIN..$SHARE_MAX"
}

seed() {
  local flavor=$1 mode=$2 lines=${3:-} pid out
  pid=$(start_luajit "$flavor" "$SEED" "$mode") || fail "target did not start"
  out=$TARGETS_TMP/seed-$flavor-$mode$lines.folded
  record_folded "$out" -p "$pid" -d "$SECS" $lines
  expect_target_ok "$pid"
  expect_share "$out"
  grep -q ';heavy (' "$out" || fail "no heavy frame"
  case $mode in
    jit) grep -Eq ';trace#[0-9]+ \([^;]*seed.lua:[0-9]+\) [0-9]+$' "$out" || fail "no trace#N leaf" ;;
    interp) ! grep -q 'trace#' "$out" || fail "trace frames with the JIT off" ;;
    ffi) grep -Eq ';C:[^;]*sqrt[^;]* [0-9]+$' "$out" || fail "no C sqrt leaf" ;;
  esac
  if [ -n "$lines" ]; then
    grep -Eq "seed.lua:$SUM_LINE\) [0-9]+$" "$out" || fail "no leaf at the sum line $SUM_LINE"
    ! grep -q 'main chunk ([^)]*:0)' "$out" || fail "main chunk at line 0 with --lines"
  else
    grep -q ';heavy ([^)]*seed.lua:13)' "$out" || fail "heavy not named at its definition line 13"
  fi
}

# The heaviest stack of folded output FILE as dump prints a stack: top
# first, chunk paths cut to base names, without the native leaf and
# [kernel] frames record adds on top (dump has none) and the host's C
# frames below the last Lua frame.
heaviest_frames() {
  awk '{n = $NF; if (n > m) {m = n; l = $0}} END {sub(/ [0-9]+$/, "", l); print l}' "$1" |
    tr ';' '\n' | tac | sed -E 's@\(([^():]*/)+@(@' |
    awk '/^(C:|\[kernel\])/ && !lua {next} {lua = 1; print}' | tac |
    awk '/^C:/ && !lua {next} {lua = 1; print}' | tac
}

# The twin check: the BPF walker must see what dump's walker sees. The
# heaviest stack recorded with --lines from a spinning target of
# tests/targets must be its "-- expect:" header.
twin() {
  local flavor=$1 script=$2 pid out act exp diff
  pid=$(start_luajit "$flavor" "$script.lua") || fail "target did not start"
  out=$TARGETS_TMP/twin-$flavor-$script.folded
  record_folded "$out" -p "$pid" -d 0.5 --lines
  act=$out.frames
  exp=$out.expect
  expected_frames "$TARGETS_DIR/$script.lua" >"$exp"
  heaviest_frames "$out" >"$act"
  diff=$(compare_frames "$exp" "$act")
  case_log "$act"
  [ -z "$diff" ] || fail "heaviest stack: $diff"
}

# The twin check on a deep stack of mixed frames (tests/targets/
# deep_mixed.lua: ~620 frames through three call sites, pcall, varargs and
# a coroutine), which the BPF walker reads through its window of stack
# memory and its cache of call instructions: the heaviest stack recorded
# must be the one dump sees, frame for frame.
twin_deep() {
  local flavor=$1 pid out act exp diff
  pid=$(start_luajit "$flavor" deep_mixed.lua) || fail "target did not start"
  out=$TARGETS_TMP/twin-deep-$flavor.folded
  record_folded "$out" -p "$pid" -d 1 --lines
  dump_json "$pid" "$out.json"
  jq -e '.vms[0].partial == false' "$out.json" >/dev/null || fail "dump: partial stack"
  act=$out.frames
  exp=$out.expect
  actual_frames "$out.json" >"$exp"
  [ "$(wc -l <"$exp")" -ge 600 ] || fail "dump: $(wc -l <"$exp") frames, expected >= 600"
  heaviest_frames "$out" >"$act"
  diff=$(compare_frames "$exp" "$act")
  case_log "$act"
  [ -z "$diff" ] || fail "heaviest stack against dump's: $diff"
}

record_deep() {
  # tests/targets/deep.lua: 1200 nested Lua calls, interpreted.
  local pid out max
  pid=$(start_luajit openresty deep.lua) || fail "target did not start"
  out=$TARGETS_TMP/deep.folded
  record_folded "$out" -p "$pid" -d 1
  max=$(awk '{n = gsub(/;rec \(/, "&"); if (n > m) m = n} END {print m + 0}' "$out")
  [ "$max" -ge 1000 ] || fail "deepest stack has $max rec frames, expected >= 1000"
  ! grep -q 'partial' "$out" || fail "partial stacks: $(grep -o '\[partial[^]]*\]' "$out" | sort | uniq -c | head -3)"
}

record_two_pids() {
  # -p A,B: both processes, in one profile.
  local a b out=$TARGETS_TMP/two.folded
  a=$(start_luajit openresty nested.lua) || fail "target did not start"
  b=$(start_luajit upstream tail.lua) || fail "target did not start"
  record_folded "$out" -p "$a,$b" -d 1
  grep -q ';heavy (nested.lua:' "$out" || fail "nothing of $a (nested.lua)"
  grep -q ';countdown (tail.lua:' "$out" || fail "nothing of $b (tail.lua)"
}

record_command() {
  # record -- COMMAND: runs it, follows it, ends when it exits.
  local out=$TARGETS_TMP/command.folded
  run_luaspy "$out.stdout" "$out.err" record -F "$HZ" -o "$out" -- \
    luajit -e 'local s = 0 for i = 1, 3e8 do s = s + i % 7 end'
  case_log "$out.err"
  [ "$RC" -eq 0 ] || fail "record exited $RC: $(head -c 300 "$out.err" | tr '\n' '|')"
  grep -Eq '(^|;)main chunk \(\(command line\):0\)' "$out" || fail "no main chunk stack: $(head -c 200 "$out")"
}

record_gc() {
  # Garbage collection shows as a [GC] leaf on the Lua stack that caused it.
  local out=$TARGETS_TMP/gc.folded
  run_luaspy "$out.stdout" "$out.err" record -F "$HZ" -d 1 -o "$out" -- luajit -e \
    'local t = {} while true do for i = 1, 1e5 do t[i % 1000 + 1] = {i, tostring(i)} end end'
  case_log "$out"
  [ "$RC" -eq 0 ] || fail "record exited $RC: $(head -c 300 "$out.err" | tr '\n' '|')"
  [ "$(count_through "$out" ';main chunk \(\(command line\):0\);\[GC\]')" -ge 10 ] ||
    fail "fewer than 10 samples in [GC]: $(head -c 300 "$out")"
}

record_c_helpers() {
  # The interpreter calls LuaJIT's C helpers (lj_tab_*, lj_str_*) with
  # BASE and PC saved in memory and rdx/rbx reused: samples there must
  # not trust the registers (only the VM's assembler code may), so they
  # unwind like the others.
  local out=$TARGETS_TMP/helpers.folded total partial
  run_luaspy "$out.stdout" "$out.err" record -F "$HZ" -d 1 -o "$out" -- luajit -e \
    'jit.off() local function f() local t = {} for i = 1, 1000 do t["k" .. i] = i end return t end while true do f() end'
  case_log "$out"
  [ "$RC" -eq 0 ] || fail "record exited $RC: $(head -c 300 "$out.err" | tr '\n' '|')"
  total=$(count_through "$out" .)
  partial=$(count_through "$out" '^\[partial')
  [ "$total" -ge 100 ] || fail "only $total samples"
  [ $((partial * 100)) -le $((total * 2)) ] || fail "$partial of $total samples partial"
}

QSORT=$TARGETS_TMP/qsort.lua
SORTIT_LINE=14 # the line of `local function sortit()` below
cat >"$QSORT" <<'LUA'
-- record --native: Lua calls libc's qsort through the FFI, with strcmp
-- (C) as the comparison: the time is in native frames above Lua's.
jit.off() -- FFI calls from the interpreter: the VM's frames are unwound
local ready = require "ready"
local ffi = require "ffi"
ffi.cdef [[
void qsort(void *, size_t, size_t, int (*)(const void *, const void *));
int strcmp(const char *, const char *);
]]
local N = 50000
local orig, arr = ffi.new("char[?][16]", N), ffi.new("char[?][16]", N)
for i = 0, N - 1 do ffi.copy(orig[i], string.format("%015d", i * 7919 % N)) end
local cmp = ffi.cast("int (*)(const void *, const void *)", ffi.C.strcmp)
local function sortit()
  ffi.copy(arr, orig, N * 16)
  ffi.C.qsort(arr, N, 16, cmp)
end
ready() while true do sortit() end
LUA

record_native() {
  # --native: the program's frames from _start down to lua_pcall, the Lua
  # frames, then qsort called from Lua, in that order (root first).
  local out=$TARGETS_TMP/native.folded n pid
  pid=$(start_luajit openresty "$QSORT") || fail "target did not start"
  record_folded "$out" -p "$pid" -d 1 --native
  n=$(count_through "$out" "^C:_start;C:__libc_start_main;.*C:main;.*C:lua_pcall;.*main chunk \([^;]*qsort.lua:0\);sortit \([^;]*qsort.lua:$SORTIT_LINE\);.*C:qsort")
  [ "$n" -ge 5 ] || fail "$n samples of _start .. lua_pcall .. sortit .. qsort: $(grep -F 'sortit (' "$out" | head -n 2 | cut -c1-400)"
  # Without --native, no native frame below Lua's.
  record_folded "$TARGETS_TMP/native-lua.folded" -p "$pid" -d 0.5
  ! grep -q 'C:_start' "$TARGETS_TMP/native-lua.folded" || fail "native frames without --native"
}

record_exit() {
  # A target that exits ends the recording, which still writes its stacks.
  local pid out=$TARGETS_TMP/exit.folded start=$SECONDS
  pid=$(start_luajit openresty exiting.lua 1500) || fail "target did not start"
  record_folded "$out" -p "$pid" -d 50
  [ $((SECONDS - start)) -lt 30 ] || fail "record ran $((SECONDS - start)) s after the target exited"
  grep -q ';heavy (exiting.lua:13)' "$out" || fail "no heavy frame: $(head -c 200 "$out")"
}

record_stdout() {
  # -o - writes folded stacks to stdout, the summary stays on stderr.
  local pid out=$TARGETS_TMP/stdout.folded
  pid=$(start_luajit upstream "$SEED" jit) || fail "target did not start"
  run_luaspy "$out" "$out.err" record -p "$pid" -d 1 -o -
  [ "$RC" -eq 0 ] || fail "record exited $RC: $(head -c 300 "$out.err" | tr '\n' '|')"
  grep -Eq '^[^ ].* [0-9]+$' "$out" || fail "stdout is not folded stacks: $(head -c 200 "$out")"
  ! grep -q 'unwound' "$out" || fail "summary on stdout"
}

record_signal() {
  # SIGINT/SIGTERM end the recording: output written, exit 0, none of its
  # BPF programs left loaded (others' luaspy runs may come and go).
  command -v bpftool >/dev/null || skip "bpftool missing"
  local sig pid lp out ours id
  pid=$(start_luajit openresty "$SEED" jit) || fail "target did not start"
  for sig in INT TERM; do
    out=$TARGETS_TMP/signal-$sig.folded
    "$LUASPY" record -p "$pid" -o "$out" 2>"$out.err" &
    lp=$!
    ours=""
    for _ in $(seq 100); do
      # Its own programs, by its file descriptors.
      ours=$(cat /proc/"$lp"/fdinfo/* 2>/dev/null | awk '/^prog_id:/ {print $2}' | sort -u)
      [ -n "$ours" ] && break
      sleep 0.1
    done
    [ -n "$ours" ] || fail "SIG$sig: no luaspy_ BPF program loaded while recording"
    sleep 1
    kill -"$sig" "$lp"
    wait "$lp" || fail "SIG$sig: exit status $?: $(head -c 200 "$out.err")"
    [ -s "$out" ] || fail "SIG$sig: no output written"
    for id in $ours; do
      ! bpftool prog show id "$id" >/dev/null 2>&1 || fail "SIG$sig: BPF program $id left loaded"
    done
  done
  expect_target_ok "$pid"
}

record_nginx() {
  # All workers of a master with --children, under wrk load.
  command -v wrk >/dev/null || skip "wrk missing"
  local lua=$TARGETS_TMP/ngx-seed.lua workers master out port
  cat >"$lua" <<'LUA'
local M = {}
local N = 100000
local function heavy(n)
  local sum = 0
  for i = 1, n do sum = sum + i end
  return sum
end
local function foo() return heavy(N) + heavy(N) end
local function bar() local r = heavy(N) return r end
function M.main() ngx.say(foo() + bar()) end
return M
LUA
  workers=$(start_nginx "$lua" 2) || fail "nginx did not start"
  set -- $workers
  master=$(cat "$(target_dir "$1")/logs/nginx.pid")
  port=$(target_port "$1")
  out=$TARGETS_TMP/nginx.folded
  wrk -t2 -c8 -d$((SECS + 5))s "http://127.0.0.1:$port/t" >/dev/null 2>&1 &
  sleep 0.5
  record_folded "$out" -p "$master" --children -d $((SECS + 1))
  wait
  expect_share "$out"
  grep -q '^\[not running Lua\];C:' "$out" || fail "no nginx C code outside Lua"
}

record_ats() {
  # traffic_server's tslua runs several lua_States: the one spinning in
  # /spin/ is told from the others by r14 and unwound; threads running no
  # Lua count as "no Lua VM identified".
  [ -x /usr/bin/traffic_server ] || skip "traffic_server missing"
  local pid out nvms
  pid=$(start_ats) || fail "traffic_server did not start"
  nvms=$("$LUASPY" dump -p "$pid" --json | jq '.vms | length')
  [ "${nvms:-0}" -ge 2 ] || fail "$nvms Lua VMs in traffic_server, expected several"
  http_block "$pid" /spin/ || fail "no ready signal from /spin/"
  out=$TARGETS_TMP/ats.folded
  record_folded "$out" -p "$pid" -d 1
  [ "$(count_through "$out" ';heavy \([^;]*spin.lua:17\) [0-9]+$')" -ge 20 ] ||
    fail "fewer than 20 samples in heavy (spin.lua:17): $(head -c 300 "$out")"
  ! grep -q 'partial' "$out" || fail "partial stacks: $(grep 'partial' "$out" | head -c 200)"
}

record_bad_input() {
  local out=$TARGETS_TMP/bad args pid
  pid=$(start_luajit openresty "$SEED" jit) || fail "target did not start"
  # usage errors: exit 2
  for args in "" "-p" "-p abc" "-p 0" "-p $pid -F 0" "-p $pid -F 100000" \
    "-p $pid -d 0" "-p $pid -d x" "-p $pid --bogus" "-p $pid -o x.png" \
    "-p $pid -f pdf" "-p $pid -o /nonexistent/x.svg" "-p $pid -- luajit"; do
    # shellcheck disable=SC2086  # word splitting on purpose
    run_luaspy "$out" "$out.err" record $args
    expect_clean_error "$out" "$out.err"
    [ "$RC" -eq 2 ] || fail "record $args: exit $RC, expected 2"
  done
  # runtime errors: exit 1
  for args in "-p 999999999" "-p $$" "-- /nonexistent/cmd" "-- true"; do
    # shellcheck disable=SC2086
    run_luaspy "$out" "$out.err" record -o "$out.svg" $args
    expect_clean_error "$out" "$out.err"
    [ "$RC" -eq 1 ] || fail "record $args: exit $RC, expected 1"
  done
  # Without privileges: one line that says what is missing.
  if command -v setpriv >/dev/null; then
    RC=0
    setpriv --reuid 65534 --regid 65534 --clear-groups timeout 60 "$LUASPY" \
      record -o - -- luajit -e 'for i = 1, 1e9 do end' >"$out" 2>"$out.err" || RC=$?
    expect_clean_error "$out" "$out.err"
    grep -q 'needs root' "$out.err" || fail "as nobody: $(cat "$out.err")"
  fi
  expect_target_ok "$pid"
}

for flavor in openresty upstream; do
  case_run "record_seed_jit_$flavor" seed "$flavor" jit
  case_run "record_seed_ffi_$flavor" seed "$flavor" ffi
  # --lines with the interpreter: Lua frames, not traces, carry the line.
  case_run "record_seed_interp_lines_$flavor" seed "$flavor" interp --lines
done
for script in nested co pcall xpcall varargs tail meta jit_loop cfunc; do
  case_run "record_twin_${script}_openresty" twin openresty "$script"
done
case_run record_twin_co_upstream twin upstream co
case_run record_deep record_deep
case_run record_twin_deep_openresty twin_deep openresty
case_run record_twin_deep_upstream twin_deep upstream
case_run record_two_pids record_two_pids
case_run record_command record_command
case_run record_gc record_gc
case_run record_c_helpers record_c_helpers
case_run record_native record_native
case_run record_exit record_exit
case_run record_stdout record_stdout
case_run record_signal record_signal
case_run record_nginx record_nginx
case_run record_ats record_ats
case_run record_bad_input record_bad_input
