#!/usr/bin/env bash
# Faults around a run of luaspy: the target dies or exec()s under it, the
# user presses ^C, the output can't be written, two luaspy at once, the
# kernel has no bpf(). Each must end on its own (no timeout, no crash)
# with a clear message, and keep whatever partial result it has.
set -u
. "$(dirname "$0")/lib/harness.sh"

HZ=199

# A spinning target that calls ready() first; with EXEC_WHEN=FILE it
# exec()s /bin/sleep once FILE exists (through the FFI, as a C module
# would), replacing the LuaJIT image under a running record.
SPIN=$TARGETS_TMP/spin.lua
cat >"$SPIN" <<'LUA'
local ready = require "ready"
local ffi = require "ffi"
ffi.cdef [[
int execv(const char *path, char *const argv[]);
]]
local exec_when = os.getenv("EXEC_WHEN")
local function work(n) local s = 0 for i = 1, n do s = s + i % 7 end return s end
ready()
while true do
  work(1e5)
  local f = exec_when and io.open(exec_when)
  if f then
    local argv = ffi.new("char *[3]", ffi.cast("char *", "sleep"), ffi.cast("char *", "100"), nil)
    ffi.C.execv("/bin/sleep", argv)
  end
end
LUA

# A target that becomes nobody after its ready() signal (which root
# writes), and dumpable again, as a process started as nobody would be.
NOBODY=$TARGETS_TMP/nobody.lua
cat >"$NOBODY" <<'LUA'
local ready = require "ready"
local ffi = require "ffi"
ffi.cdef [[
int setgroups(size_t n, const unsigned *list);
int setgid(unsigned gid);
int setuid(unsigned uid);
int prctl(int option, unsigned long a, unsigned long b, unsigned long c, unsigned long d);
]]
ready()
assert(ffi.C.setgroups(0, nil) == 0 and ffi.C.setgid(65534) == 0 and ffi.C.setuid(65534) == 0)
ffi.C.prctl(4, 1, 0, 0, 0) -- PR_SET_DUMPABLE
while true do end
LUA

# wait_exit PID SECONDS: wait for a background luaspy; sets RC (124 if it
# had to be killed).
wait_exit() {
  local pid=$1 secs=$2 i
  for ((i = 0; i < secs * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; wait "$pid" 2>/dev/null; RC=124; return; fi
  RC=0
  wait "$pid" || RC=$?
}

# Any error line must be one "luaspy: " line, and no sanitizer report.
expect_no_crash() {
  local err=$1
  [ "$RC" -lt 124 ] || fail "exit status $RC (timeout or crash): $(head -n 3 "$err" | tr '\n' '|')"
  ! grep -q 'Sanitizer\|runtime error' "$err" || { case_log "$err"; fail "sanitizer report: $(grep -m1 'Sanitizer\|runtime error' "$err")"; }
}

record_target_killed() {
  local pid out=$TARGETS_TMP/killed.folded lp
  pid=$(start_luajit openresty "$SPIN") || fail "target did not start"
  "$LUASPY" record -F $HZ -p "$pid" -d 30 -o "$out" >"$out.stdout" 2>"$out.err" &
  lp=$!
  sleep 2
  kill -KILL "$pid"
  wait_exit "$lp" 15
  case_log "$out.err"
  expect_no_crash "$out.err"
  [ "$RC" -eq 0 ] || fail "record exited $RC after its target died: $(head -c 300 "$out.err" | tr '\n' '|')"
  [ -s "$out" ] || fail "the samples taken before the kill were not written"
  grep -q 'work (.*spin\.lua:' "$out" || fail "no work() stack in the partial profile"
}

# A heap big enough for a walk of seconds, to kill the target midway.
BIGHEAP=$TARGETS_TMP/bigheap.lua
cat >"$BIGHEAP" <<'LUA'
local ready = require "ready"
S = {} for i = 1, 1000000 do S[i] = "s" .. i end
T = {} for i = 1, 300000 do T[i] = { i, S[i] } end
ready() while true do end
LUA

heap_target_killed() {
  local pid out=$TARGETS_TMP/heap.txt lp
  pid=$(start_luajit openresty "$BIGHEAP") || fail "target did not start"
  "$LUASPY" heap -p "$pid" >"$out" 2>"$out.err" &
  lp=$!
  sleep 0.3
  kill -KILL "$pid"
  wait_exit "$lp" 30
  case_log "$out.err"
  expect_no_crash "$out.err"
  # Either the walk finished first (0), or it says the target went away.
  echo "heap_target_killed: heap exited $RC: $(head -c 200 "$out.err")" >&2
  if [ "$RC" -ne 0 ]; then
    [ "$(grep -c . "$out.err")" -eq 1 ] && grep -q '^luaspy: ' "$out.err" ||
      fail "heap exited $RC without one 'luaspy: ' line: $(head -c 300 "$out.err" | tr '\n' '|')"
  fi
  # and that line says the target is gone (not, say, "no Lua VM")
  [ "$RC" -eq 0 ] || grep -q 'exited\|zombie\|no process' "$out.err" ||
    fail "the error does not say the target died: $(cat "$out.err")"
}

record_target_execs() {
  local pid out=$TARGETS_TMP/exec.folded lp
  pid=$(EXEC_WHEN="$out.go" start_luajit openresty "$SPIN") || fail "target did not start"
  "$LUASPY" record -F $HZ -p "$pid" -d 8 -o "$out" >"$out.stdout" 2>"$out.err" &
  lp=$!
  # The exec comes once record samples (its start-up varies with load).
  for _ in $(seq 150); do
    bpftool prog show 2>/dev/null | grep -q ' name luaspy_sample' && break
    sleep 0.1
  done
  sleep 1.5
  : >"$out.go"
  wait_exit "$lp" 30
  case_log "$out.err"
  expect_no_crash "$out.err"
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = sleep ] || fail "target did not exec /bin/sleep"
  [ "$RC" -eq 0 ] || fail "record exited $RC across the exec: $(head -c 300 "$out.err" | tr '\n' '|')"
  [ -s "$out" ] || fail "no stacks written"
  grep -q 'work (.*spin\.lua:' "$out" || fail "no work() stack from before the exec"
}

record_sigint() {
  local pid out=$TARGETS_TMP/int.folded lp
  pid=$(start_luajit openresty "$SPIN") || fail "target did not start"
  "$LUASPY" record -F $HZ -p "$pid" -o "$out" >"$out.stdout" 2>"$out.err" &
  lp=$!
  sleep 2
  kill -INT "$lp"
  wait_exit "$lp" 15
  case_log "$out.err"
  expect_no_crash "$out.err"
  [ "$RC" -eq 0 ] || fail "record exited $RC on ^C: $(head -c 300 "$out.err" | tr '\n' '|')"
  grep -q 'work (.*spin\.lua:' "$out" || fail "no stacks written on ^C"
  expect_target_ok "$pid"
}

# run CMD with its output to /dev/full: one error line naming the failure
# (a record also prints its summary: that part of its result survives).
to_dev_full() {
  local what=$1 pid err=$TARGETS_TMP/full.err
  pid=$(start_luajit openresty "$SPIN") || fail "target did not start"
  RC=0
  case $what in
    dump) timeout -k 5 60 "$LUASPY" dump -p "$pid" >/dev/full 2>"$err" || RC=$? ;;
    dump-json) timeout -k 5 60 "$LUASPY" dump -p "$pid" --json >/dev/full 2>"$err" || RC=$? ;;
    heap) timeout -k 5 60 "$LUASPY" heap -p "$pid" >/dev/full 2>"$err" || RC=$? ;;
    record) timeout -k 5 60 "$LUASPY" record -F $HZ -p "$pid" -d 0.5 -o /dev/full -f folded >/dev/null 2>"$err" || RC=$? ;;
    record-svg) timeout -k 5 60 "$LUASPY" record -F $HZ -p "$pid" -d 0.5 -o /dev/full -f svg >/dev/null 2>"$err" || RC=$? ;;
  esac
  case_log "$err"
  expect_no_crash "$err"
  [ "$RC" -ne 0 ] || fail "exit status 0 with the output lost"
  local n
  n=$(grep -c 'No space left on device' "$err")
  [ "$n" -eq 1 ] || fail "$n lines about the full device, expected 1: $(head -c 300 "$err" | tr '\n' '|')"
  grep 'No space left on device' "$err" | grep -q '^luaspy: ' || fail "error line not 'luaspy: ...'"
  case $what in record*) ;; *)
    [ "$(wc -l <"$err")" -eq 1 ] || fail "stderr has $(wc -l <"$err") lines, expected 1: $(head -c 300 "$err" | tr '\n' '|')" ;;
  esac
  expect_target_ok "$pid"
}

no_output_dir() {
  local what=$1 pid out=$TARGETS_TMP/nodir.out
  pid=$(start_luajit openresty "$SPIN") || fail "target did not start"
  case $what in
    record) run_luaspy "$out" "$out.err" record -F $HZ -p "$pid" -d 0.5 -o "$TARGETS_TMP/no/such/dir/x.svg" ;;
    heap) run_luaspy "$out" "$out.err" heap -p "$pid" -o "$TARGETS_TMP/no/such/dir/x.svg" ;;
  esac
  expect_clean_error "$out" "$out.err"
  grep -q 'no/such/dir' "$out.err" || fail "the error does not name the path: $(cat "$out.err")"
  expect_target_ok "$pid"
}

two_records() {
  local pid a=$TARGETS_TMP/a.folded b=$TARGETS_TMP/b.folded pa pb rca
  pid=$(start_luajit openresty "$SPIN") || fail "target did not start"
  "$LUASPY" record -F $HZ -p "$pid" -d 2 -o "$a" >/dev/null 2>"$a.err" &
  pa=$!
  "$LUASPY" record -F $HZ -p "$pid" -d 2 -o "$b" >/dev/null 2>"$b.err" &
  pb=$!
  wait_exit "$pa" 30; rca=$RC
  wait_exit "$pb" 30
  case_log "$a.err"; case_log "$b.err"
  [ "$rca" -eq 0 ] || fail "first record exited $rca: $(head -c 300 "$a.err" | tr '\n' '|')"
  [ "$RC" -eq 0 ] || fail "second record exited $RC: $(head -c 300 "$b.err" | tr '\n' '|')"
  grep -q 'work (.*spin\.lua:' "$a" || fail "first record has no stacks"
  grep -q 'work (.*spin\.lua:' "$b" || fail "second record has no stacks"
  expect_target_ok "$pid"
}

dump_during_record() {
  local pid a=$TARGETS_TMP/r.folded pa i
  pid=$(start_luajit openresty "$SPIN") || fail "target did not start"
  "$LUASPY" record -F $HZ -p "$pid" -d 3 -o "$a" >/dev/null 2>"$a.err" &
  pa=$!
  sleep 1
  for i in 1 2 3; do dump_json "$pid" "$TARGETS_TMP/d$i.json"; done
  jq -e '[.vms[0].frames[].name] | index("work") != null' "$TARGETS_TMP/d3.json" >/dev/null ||
    fail "dump during record: no work() frame"
  wait_exit "$pa" 30
  case_log "$a.err"
  [ "$RC" -eq 0 ] || fail "record exited $RC: $(head -c 300 "$a.err" | tr '\n' '|')"
  grep -q 'work (.*spin\.lua:' "$a" || fail "record has no stacks"
  expect_target_ok "$pid"
}

# ---- without privileges ---------------------------------------------------------

# The binary under test, where nobody can run it (the tree may not be
# readable to others); ASan's runtime needs nothing more.
nobody_luaspy() {
  local b=$TARGETS_TMP/luaspy-nobody
  [ -x "$b" ] || { cp "$LUASPY" "$b" && chmod 755 "$b"; } || fail "cannot copy $LUASPY"
  echo "$b"
}
_uid_is() { [ "$(awk '/^Uid:/ {print $2}' "/proc/$1/status" 2>/dev/null)" = "$2" ]; }
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }

# as nobody, CMD on a target: one "luaspy: " line naming the capability
# it lacks. TARGET root (a root target: reading it needs CAP_SYS_PTRACE) or
# own (the target runs as nobody too: record then lacks CAP_BPF and
# CAP_PERFMON).
unprivileged() {
  local cmd=$1 owner=$2 want=$3 bin pid out=$TARGETS_TMP/nobody.out
  command -v setpriv >/dev/null || skip "setpriv missing"
  bin=$(nobody_luaspy)
  mkdir -p "$TARGETS_TMP/nobody-out" && chmod 1777 "$TARGETS_TMP/nobody-out"
  if [ "$owner" = own ]; then
    [ "$(cat /proc/sys/kernel/yama/ptrace_scope 2>/dev/null || echo 0)" = 0 ] ||
      skip "Yama ptrace_scope > 0: nobody may not read its own non-child"
    pid=$(start_luajit openresty "$NOBODY") || fail "target did not start"
    wait_for 10 _uid_is "$pid" 65534 || fail "target did not become nobody"
  else
    pid=$(start_luajit openresty "$SPIN") || fail "target did not start"
  fi
  RC=0
  case $cmd in
    dump) as_nobody timeout -k 5 60 "$bin" dump -p "$pid" >"$out" 2>"$out.err" || RC=$? ;;
    record) as_nobody timeout -k 5 60 "$bin" record -p "$pid" -d 0.5 -o "$TARGETS_TMP/nobody-out/x.folded" >"$out" 2>"$out.err" || RC=$? ;;
  esac
  expect_clean_error "$out" "$out.err"
  local w
  for w in $want; do grep -q "$w" "$out.err" || fail "the error does not mention $w: $(cat "$out.err")"; done
  expect_target_ok "$pid"
}

# A setuid luaspy (here setuid nobody, run by root) refuses to run.
setuid_refused() {
  local b=$TARGETS_TMP/luaspy-setuid out=$TARGETS_TMP/setuid.out
  cp "$LUASPY" "$b" && chown nobody "$b" && chmod 4755 "$b" || fail "cannot make a setuid copy"
  findmnt -n -o OPTIONS --target "$b" | grep -qw nosuid && skip "$TARGETS_TMP is mounted nosuid"
  RC=0
  timeout -k 5 30 "$b" dump -p 1 >"$out" 2>"$out.err" || RC=$?
  # LeakSanitizer can't run setuid and says so in "==PID==" lines (ASan
  # build only, and not luaspy's concern): leave them out.
  grep -v '^==[0-9]*==' "$out.err" >"$out.err2"
  expect_clean_error "$out" "$out.err2"
  grep -q setuid "$out.err2" || fail "no word about setuid: $(cat "$out.err2")"
}

# A kernel built without BPF: tests/lib/nobpf.c makes bpf() fail as such
# a kernel does (ENOSYS, with a seccomp filter). Every eBPF command says
# so in one line and exits 1; the target is left alone.
no_bpf() {
  local pid cmd out=$TARGETS_TMP/nobpf.out nobpf=$TARGETS_TMP/nobpf
  ${CC:-cc} -O1 -o "$nobpf" "$ROOT/tests/lib/nobpf.c" 2>"$out.err" ||
    skip "cannot build tests/lib/nobpf.c: $(head -n 1 "$out.err")"
  pid=$(start_luajit openresty alloc_ratio.lua) || fail "target did not start"
  for cmd in "record -o $out.svg" "top --once" "alloc -o $out.svg" leaks \
    "offcpu -o $out.svg" syscalls; do
    RC=0
    # shellcheck disable=SC2086  # word splitting on purpose
    timeout -k 5 60 "$nobpf" "$LUASPY" $cmd -d 1 -p "$pid" >"$out" 2>"$out.err" || RC=$?
    expect_clean_error "$out" "$out.err"
    [ "$RC" -eq 1 ] || fail "$cmd: exit $RC, expected 1"
    grep -q 'no bpf() system call' "$out.err" || fail "$cmd: $(cat "$out.err")"
  done
  expect_target_ok "$pid"
}

case_run "faults: record, target SIGKILLed midway: partial profile written" record_target_killed
case_run "faults: heap, target SIGKILLed midway: ends with one line" heap_target_killed
case_run "faults: record, target exec()s /bin/sleep midway" record_target_execs
case_run "faults: record, SIGINT: profile written" record_sigint
for w in dump dump-json heap record record-svg; do
  case_run "faults: $w to /dev/full: one error line, non-zero exit" to_dev_full "$w"
done
case_run "faults: record -o into a missing directory: one error line" no_output_dir record
case_run "faults: heap -o into a missing directory: one error line" no_output_dir heap
case_run "faults: two records on one target at once" two_records
case_run "faults: dump during a record" dump_during_record
case_run "security: dump as nobody, root target: one line naming CAP_SYS_PTRACE" unprivileged dump root CAP_SYS_PTRACE
case_run "security: record as nobody, root target: one line naming CAP_SYS_PTRACE" unprivileged record root CAP_SYS_PTRACE
case_run "security: record as nobody, own target: one line naming CAP_BPF, CAP_PERFMON" unprivileged record own "CAP_BPF CAP_PERFMON"
case_run "security: a setuid luaspy refuses to run" setuid_refused
case_run "faults: a kernel without bpf(): one line per eBPF command" no_bpf
