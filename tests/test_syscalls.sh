#!/usr/bin/env bash
# `luaspy syscalls`: system call counts, latencies, sizes and process
# starts of real targets, by backtrace.
#
# syscalls_count_bpftrace: a JIT-heavy luajit (offcpu_jit.lua: compiles
# and flushes traces in a burst started on demand, so LuaJIT maps and
# protects machine code again and again); luaspy's mmap and mprotect
# counts must agree within 5% with bpftrace's count of the syscalls
# tracepoints over the same burst, and --json must name them by kernel
# name with Lua frames (burst) in their backtraces.
# syscalls_io_flame: -e read -o FILE weighs a flame graph by time in read,
# under the Lua function reading the file; os.execute's clone is listed
# with its Lua line.
# syscalls_ats_fork: traffic_server+tslua forking from a remap handler
# (tests/targets/ats/fork.lua): the clone is listed with the handler's
# file:line and C:fork in its backtrace.
# Then bad input and no BPF program left behind.
set -u
. "$(dirname "$0")/lib/harness.sh"

JIT_TARGET=$ROOT/tests/targets/offcpu_jit.lua
IO_TARGET=$ROOT/tests/targets/offcpu_io.lua
FORK_TARGET=$ROOT/tests/targets/ats/fork.lua

line_of() { grep -n -F -- "$2" "$1" | head -n 1 | cut -d: -f1; }

# Programs of syscalls.bpf.c still loaded.
syscalls_progs() { bpftool prog show 2>/dev/null | grep -cE ' name luaspy_sys_(enter|exit)'; }

wait_attached() {
  for _ in $(seq 150); do
    [ "$(syscalls_progs)" -gt 0 ] && return 0
    sleep 0.1
  done
  return 1
}

# A JSON query: json_get FILE PYTHON-EXPRESSION-OF-d
json_get() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

syscalls_count_bpftrace() {
  local pid out bt btpid lp ours_mmap ours_mprot bt_mmap bt_mprot
  command -v bpftrace >/dev/null || skip "bpftrace missing"
  command -v bpftool >/dev/null || skip "bpftool missing"
  pid=$(start_luajit openresty offcpu_jit.lua 20) || fail "target did not start"
  out=$TARGETS_TMP/jit.json
  bt=$TARGETS_TMP/bpftrace.out
  bpftrace -e "tracepoint:syscalls:sys_enter_mmap /pid == $pid/ { @mmap = count(); }
    tracepoint:syscalls:sys_enter_mprotect /pid == $pid/ { @mprotect = count(); }" >"$bt" 2>&1 &
  btpid=$!
  for _ in $(seq 300); do grep -q Attaching "$bt" && break; sleep 0.1; done
  grep -q Attaching "$bt" || fail "bpftrace did not attach: $(head -c 200 "$bt")"
  timeout -k 5 60 "$LUASPY" syscalls -p "$pid" -d 8 --json -e mmap,mprotect >"$out" 2>"$out.err" &
  lp=$!
  wait_attached || fail "luaspy syscalls did not attach"
  sleep 0.5
  echo go >"/proc/$pid/fd/0" # the burst
  wait "$lp" || fail "syscalls exited $?: $(head -c 300 "$out.err" | tr '\n' '|')"
  sleep 0.5
  kill -INT "$btpid"
  wait "$btpid"
  case_log "$out"
  case_log "$bt"
  bt_mmap=$(sed -n 's/^@mmap: \([0-9]*\)/\1/p' "$bt")
  bt_mprot=$(sed -n 's/^@mprotect: \([0-9]*\)/\1/p' "$bt")
  ours_mmap=$(json_get "$out" "sum(s['count'] for s in d['syscalls'] if s['name'] == 'mmap')")
  ours_mprot=$(json_get "$out" "sum(s['count'] for s in d['syscalls'] if s['name'] == 'mprotect')")
  echo "mmap: luaspy $ours_mmap bpftrace ${bt_mmap:-0}; mprotect: luaspy $ours_mprot bpftrace ${bt_mprot:-0}"
  [ "${bt_mprot:-0}" -ge 100 ] || fail "the burst made only ${bt_mprot:-0} mprotect calls (bpftrace)"
  python3 - "$ours_mmap" "${bt_mmap:-0}" "$ours_mprot" "${bt_mprot:-0}" <<'PY' || fail "counts disagree by more than 5%: mmap $ours_mmap vs ${bt_mmap:-0}, mprotect $ours_mprot vs ${bt_mprot:-0}"
import sys
a, b, c, d = map(int, sys.argv[1:])
ok = lambda x, y: abs(x - y) <= max(1, 0.05 * y)
sys.exit(0 if ok(a, b) and ok(c, d) else 1)
PY
  # Named backtraces: burst's frame, in the naming contract.
  json_get "$out" "any(f['kind'] == 'lua' and f['name'] == 'burst' and f['chunk'] == 'offcpu_jit.lua' and isinstance(f['line'], int)
    for s in d['syscalls'] if s['name'] == 'mprotect' for b in s['backtraces'] for f in b['frames'])" | grep -q True ||
    fail "no mprotect backtrace with burst (offcpu_jit.lua:N): $(head -c 600 "$out")"
  json_get "$out" "[k for s in d['syscalls'] if s['name'] == 'mprotect' for k in ('p50_us', 'p99_us', 'max_us', 'sizes') if k not in s]" | grep -qx '\[\]' ||
    fail "mprotect lacks latency or sizes"
  expect_target_ok "$pid"
}

syscalls_io_flame() {
  local pid out svg read_line exec_line
  pid=$(start_luajit openresty offcpu_io.lua) || fail "target did not start"
  out=$TARGETS_TMP/io.txt
  svg=$TARGETS_TMP/io.folded
  run_luaspy "$out" "$out.err" syscalls -p "$pid" -d 2 -e read,clone,clone3,vfork -o "$svg"
  case_log "$out"
  case_log "$svg"
  [ "$RC" -eq 0 ] || fail "syscalls exited $RC: $(head -c 300 "$out.err" | tr '\n' '|')"
  read_line=$(line_of "$IO_TARGET" 'local s = f:read("*a")')
  exec_line=$(line_of "$IO_TARGET" 'os.execute("sleep 0.05")')
  grep -Eq "read_file \(offcpu_io.lua:$read_line\);builtin:[^;]*;.*C:fread;.*syscall:read [0-9]+$" "$svg" ||
    fail "no read time under read_file (offcpu_io.lua:$read_line): $(head -n 3 "$svg" | cut -c1-300 | tr '\n' '|')"
  grep -Eq "^  clone3? by thread [0-9]+ -> [0-9]+ at offcpu_io.lua:$exec_line\$" "$out" ||
    fail "os.execute's clone not listed at offcpu_io.lua:$exec_line: $(sed -n '/processes started/,+3p' "$out" | tr '\n' '|')"
  expect_target_ok "$pid"
}

syscalls_ats_fork() {
  local pid port out dir lo hi site
  command -v curl >/dev/null || skip "curl missing"
  dir=$TARGETS_TMP/fork-targets
  mkdir -p "$dir/ats"
  cp "$ROOT/tests/targets/ready.lua" "$dir/"
  cp "$ROOT/tests/targets/ats/global.lua" "$ROOT/tests/targets/ats/spin.lua" "$dir/ats/"
  cp "$FORK_TARGET" "$dir/ats/hello.lua"
  pid=$(TARGETS_DIR=$dir start_ats) || skip "traffic_server did not start"
  port=$(target_port "$pid")
  out=$TARGETS_TMP/ats.json
  timeout -k 5 60 "$LUASPY" syscalls -p "$pid" -d 30 --json -e clone,clone3,fork,vfork,execve >"$out" 2>"$out.err" &
  local lp=$!
  wait_attached || fail "luaspy syscalls did not attach"
  sleep 0.5 # the process is passed to the kernel right after attaching
  for _ in 1 2 3; do curl -s -m 20 "http://127.0.0.1:$port/fork" >/dev/null; done
  kill -INT "$lp"
  wait "$lp" || fail "syscalls exited $?: $(head -c 300 "$out.err" | tr '\n' '|')"
  case_log "$out"
  # The fork site: a line of fork_child or do_remap (the JIT may have
  # compiled one into the other: a trace starts at its loop or call).
  lo=$(line_of "$FORK_TARGET" "local function fork_child()")
  hi=$(wc -l <"$FORK_TARGET")
  site=$(json_get "$out" "' '.join(s['site'] or 'none' for s in d['spawns'] if s['syscall'] == 'clone')")
  echo "clone sites: $site"
  [ -n "$site" ] || fail "no clone listed: $(head -c 400 "$out")"
  for s in $site; do
    [[ $s =~ hello\.lua:([0-9]+)$ ]] || fail "clone site '$s' is not a line of the remap script"
    [ "${BASH_REMATCH[1]}" -ge "$lo" ] && [ "${BASH_REMATCH[1]}" -le "$hi" ] ||
      fail "clone site $s is outside fork_child..do_remap ($lo..$hi)"
  done
  json_get "$out" "all(any(f['name'] == 'fork' and f['kind'] == 'c' for f in s['frames']) for s in d['spawns'])" | grep -q True ||
    fail "a clone backtrace lacks C:fork"
  json_get "$out" "[s['count'] for s in d['syscalls'] if s['name'] == 'clone']" | grep -q '\[3\]' ||
    fail "expected 3 clone calls: $(json_get "$out" "[(s['name'], s['count']) for s in d['syscalls']]")"
  expect_target_ok "$pid"
}

syscalls_bad_input() {
  local out=$TARGETS_TMP/bad.out pid
  run_luaspy "$out" "$out.err" syscalls
  expect_clean_error "$out" "$out.err"
  [ "$RC" -eq 2 ] || fail "no -p: exit $RC, expected 2"
  run_luaspy "$out" "$out.err" syscalls -p 1 -e mmap,nosuchcall
  expect_clean_error "$out" "$out.err"
  [ "$RC" -eq 2 ] || fail "unknown syscall: exit $RC, expected 2"
  grep -q nosuchcall "$out.err" || fail "the error does not name the syscall"
  run_luaspy "$out" "$out.err" syscalls -p 1 --json -o -
  expect_clean_error "$out" "$out.err"
  [ "$RC" -eq 2 ] || fail "--json -o -: exit $RC, expected 2"
  run_luaspy "$out" "$out.err" syscalls -p 1 -d 0
  expect_clean_error "$out" "$out.err"
  [ "$RC" -eq 2 ] || fail "-d 0: exit $RC, expected 2"
  run_luaspy "$out" "$out.err" syscalls -p 999999999
  expect_clean_error "$out" "$out.err"
  [ "$RC" -eq 1 ] || fail "no such process: exit $RC, expected 1"
  pid=$(start_cmd sleep 100) || fail "sleep did not start"
  run_luaspy "$out" "$out.err" syscalls -p "$pid" -d 1
  expect_clean_error "$out" "$out.err"
  [ "$RC" -eq 1 ] || fail "process without Lua: exit $RC, expected 1"
}

syscalls_no_leftovers() {
  local pid lp out=$TARGETS_TMP/left.txt
  command -v bpftool >/dev/null || skip "bpftool missing"
  pid=$(start_luajit openresty offcpu_io.lua) || fail "target did not start"
  "$LUASPY" syscalls -p "$pid" >"$out" 2>"$out.err" &
  lp=$!
  wait_attached || fail "no syscalls BPF program loaded while tracing"
  sleep 1
  kill -INT "$lp"
  wait "$lp" || fail "SIGINT: exit status $?: $(head -c 200 "$out.err")"
  grep -q '^system calls of process' "$out" || fail "no report on SIGINT"
  # The kernel frees programs a moment after their last descriptor closes.
  for _ in $(seq 30); do [ "$(syscalls_progs)" -eq 0 ] && break; sleep 0.1; done
  [ "$(syscalls_progs)" -eq 0 ] || fail "syscalls BPF programs left loaded"
  expect_target_ok "$pid"
}

case_run syscalls_count_bpftrace syscalls_count_bpftrace
case_run syscalls_io_flame syscalls_io_flame
case_run syscalls_ats_fork syscalls_ats_fork
case_run syscalls_bad_input syscalls_bad_input
case_run syscalls_no_leftovers syscalls_no_leftovers
