#!/usr/bin/env bash
# `luaspy dump -p PID --json` on real targets (docs/dump-format.md):
# both LuaJIT builds running the scripts of tests/targets/ (whose
# "-- expect:" headers give the exact stacks), nginx workers, traffic_server
# with tslua, and bad input, which must fail cleanly and leave the target
# alone.
set -u
. "$(dirname "$0")/lib/harness.sh"

LUA_SCRIPTS=(nested deep co pcall xpcall varargs tail meta jit_loop cfunc sleep)

# ---- standalone luajit ----------------------------------------------------------

dump_luajit() {
  local flavor=$1 script=$2 pid
  pid=$(start_luajit "$flavor" "$script.lua") || fail "target did not start"
  expect_stack "$pid" "$TARGETS_DIR/$script.lua" "$flavor"
}

dump_text() {
  # The text form of the same dump: header line, one VM block, frames.
  local pid out
  pid=$(start_luajit openresty sleep.lua) || fail "target did not start"
  out=$TARGETS_TMP/text.$$
  run_luaspy "$out" "$out.err" dump -p "$pid"
  case_log "$out"
  [ "$RC" -eq 0 ] || fail "exit status $RC: $(head -c 200 "$out.err")"
  [ ! -s "$out.err" ] || fail "stderr not empty: $(head -c 200 "$out.err")"
  grep -q "^pid $pid (luajit): 1 Lua VM$" "$out" || fail "no 'pid $pid (luajit): 1 Lua VM' line: $(head -n 1 "$out")"
  grep -q '^VM 0x[0-9a-f]* LuaJIT .*openresty' "$out" || fail "no 'VM 0x... LuaJIT ... openresty' line"
  grep -Eq '^  #0 +builtin:io.read$' "$out" || fail "no '#0 builtin:io.read' line"
  grep -Eq '^  #1 +wait_input \(sleep.lua:17\)$' "$out" || fail "no '#1 wait_input (sleep.lua:17)' line"
  expect_target_ok "$pid"
}

# ---- containers -------------------------------------------------------------

# A luajit in its own mount and PID namespace, chrooted into a root whose
# binary path (/opt/ctr/bin/luajit) does not exist on the host: luaspy must
# read the target's files through /proc/PID/root.
dump_container() {
  local root dir outer pid lib
  dir=$(new_target_dir container)
  root=$dir/root
  mkdir -p "$root/opt/ctr/bin" "$root/t" "$root/ready"
  chmod 1777 "$root/ready"
  cp /usr/bin/luajit "$root/opt/ctr/bin/luajit"
  for lib in $(ldd /usr/bin/luajit | grep -o '/[^ ]*'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  cp "$TARGETS_DIR/nested.lua" "$TARGETS_DIR/ready.lua" "$root/t/"
  [ ! -e /opt/ctr/bin/luajit ] || skip "/opt/ctr/bin/luajit exists on the host"
  outer=$(spawn "$dir" unshare --mount --pid --fork chroot "$root" \
    /opt/ctr/bin/luajit -e 'package.path="/t/?.lua"' /t/nested.lua)
  _record_instance "$outer" - "$dir"
  wait_for "$READY_TIMEOUT" _container_ready "$root" || fail "containerized luajit did not start"
  pid=$(pgrep -f '^/opt/ctr/bin/luajit' | head -n 1)
  [ -n "$pid" ] || fail "no containerized luajit process"
  expect_stack "$pid" "$TARGETS_DIR/nested.lua" openresty
}
_container_ready() { pgrep -f '^/opt/ctr/bin/luajit' >/dev/null && sleep 0.5; }

# ---- nginx --------------------------------------------------------------------

_in_epoll() { [ "$(proc_state "$1")" = S ]; }

# Exactly one VM, of the given flavor, without any Lua-level frame.
_expect_idle_vm() {
  local out=$1
  jq -e '.vms | length == 1' "$out" >/dev/null || fail "$(jq '.vms | length' "$out") VMs, expected 1"
  jq -e '.vms[0].flavor == "openresty"' "$out" >/dev/null || fail "flavor $(jq -r '.vms[0].flavor' "$out"), expected openresty"
  jq -e '[.vms[0].frames[] | select(.kind == "lua" or .kind == "trace" or .kind == "builtin")] | length == 0' "$out" >/dev/null ||
    fail "idle VM shows Lua frames: $(jq -c '[.vms[0].frames[].frame]' "$out")"
}

dump_nginx_idle() {
  local w out
  w=$(start_nginx "" 1) || fail "nginx did not start"
  wait_for 5 _in_epoll "$w" || fail "worker $w not idle (state $(proc_state "$w"))"
  out=$TARGETS_TMP/nginx-idle.$$.json
  dump_json "$w" "$out"
  case_log "$out"
  _expect_idle_vm "$out"
}

dump_nginx_master() {
  # The lua module creates its VM in the master (root) at config time.
  local w master out
  w=$(start_nginx "" 1) || fail "nginx did not start"
  master=$(ps -o ppid= -p "$w" | tr -d ' ')
  out=$TARGETS_TMP/nginx-master.$$.json
  dump_json "$master" "$out"
  case_log "$out"
  _expect_idle_vm "$out"
}

dump_nginx_busy() {
  local path=$1 module=$2 w
  w=$(start_nginx "" 1) || fail "nginx did not start"
  http_block "$w" "$path" || fail "$path did not reach ready()"
  expect_stack "$w" "$TARGETS_DIR/nginx/$module" openresty
}

dump_nginx_sleeping() {
  # A request whose coroutine is suspended in ngx.sleep: the worker is back
  # in epoll. The dump must work and find the one VM; which stack it shows
  # for a suspended coroutine is not asserted.
  local w out
  w=$(start_nginx "" 1) || fail "nginx did not start"
  http_block "$w" /sleep || fail "/sleep did not reach ready()"
  wait_for 5 _in_epoll "$w" || fail "worker $w not back in epoll"
  out=$TARGETS_TMP/nginx-sleep.$$.json
  dump_json "$w" "$out"
  case_log "$out"
  jq -e '.vms | length == 1' "$out" >/dev/null || fail "$(jq '.vms | length' "$out") VMs, expected 1"
}

dump_nginx_workers() {
  # Two workers: each is its own process with its own (forked) VM.
  local w p out
  w=$(start_nginx "" 2) || fail "nginx did not start"
  for p in $w; do
    out=$TARGETS_TMP/nginx-w$p.json
    dump_json "$p" "$out"
    case_log "$out"
    jq -e '.vms | length == 1' "$out" >/dev/null || fail "worker $p: $(jq '.vms | length' "$out") VMs, expected 1"
  done
}

# ---- traffic_server -----------------------------------------------------------

dump_ats() {
  local states=$1 pid out n want
  pid=$(ATS_LUA_STATES=$states start_ats) || fail "traffic_server did not start"
  out=$TARGETS_TMP/ats.$$.json
  dump_json "$pid" "$out"
  case_log "$out"
  n=$(jq '.vms | length' "$out")
  [ "$n" -ge 2 ] || fail "$n VMs found, expected >= 2 (tslua makes a lua_State per state)"
  # tslua: max_states VMs for the remap instances, as many for the global
  # plugin (256 each by default).
  want=$((2 * ${states:-256}))
  [ "$n" -eq "$want" ] || fail "$n VMs found, expected $want (2 x $states states)"
  jq -e 'all(.vms[]; .flavor == "openresty")' "$out" >/dev/null || fail "not all VMs are openresty's LuaJIT"
  jq -e '.exe | endswith("/traffic_server")' "$out" >/dev/null || fail "exe is $(jq -r .exe "$out")"
}

dump_ats_spin() {
  # /spin/ spins in one tslua state: exactly one VM shows the stack of
  # tests/targets/ats/spin.lua.
  local pid out try exp act diff=""
  pid=$(start_ats) || fail "traffic_server did not start"
  http_block "$pid" /spin/ || fail "/spin/ did not reach ready()"
  exp=$TARGETS_TMP/ats-exp.$$
  expected_frames "$TARGETS_DIR/ats/spin.lua" >"$exp"
  for try in 1 2 3 4 5; do
    out=$TARGETS_TMP/ats-spin.$$.$try.json
    dump_json "$pid" "$out"
    case_log "$out"
    local i busy
    busy=$(jq '[.vms[] | select([.frames[] | select(.kind == "lua")] | length > 0)] | length' "$out")
    if [ "$busy" -ne 1 ]; then
      diff="$busy VMs with Lua frames, expected 1"
    else
      i=$(jq '[.vms[] | ([.frames[] | select(.kind == "lua")] | length > 0)] | index(true)' "$out")
      act=$out.frames
      actual_frames "$out" "$i" >"$act"
      diff=$(compare_frames "$exp" "$act")
      [ -z "$diff" ] && return 0
    fi
    _nap 0.2
  done
  fail "ats/spin.lua: $diff (5 dumps)"
}

# ---- bad input: clean error, target untouched ---------------------------------

bad_no_such_pid() {
  local pid out=$TARGETS_TMP/bad.$$
  # A PID that just existed: exited and reaped, so free.
  true & pid=$!
  wait "$pid"
  [ -z "$(proc_state "$pid")" ] || skip "pid $pid reused already"
  run_luaspy "$out" "$out.err" dump -p "$pid" --json
  expect_clean_error "$out" "$out.err"
}

bad_non_lua() {
  local pid out=$TARGETS_TMP/bad.$$
  pid=$(start_cmd sleep 100) || fail "sleep did not start"
  run_luaspy "$out" "$out.err" dump -p "$pid" --json
  expect_clean_error "$out" "$out.err"
  expect_target_ok "$pid"
}

bad_zombie() {
  local pid out=$TARGETS_TMP/bad.$$
  pid=$(start_zombie) || fail "no zombie"
  run_luaspy "$out" "$out.err" dump -p "$pid" --json
  expect_clean_error "$out" "$out.err"
  [ "$(proc_state "$pid")" = Z ] || fail "zombie $pid changed state to '$(proc_state "$pid")'"
}

bad_as_nobody() {
  # An unprivileged user may not read a root process's memory.
  local pid out=$TARGETS_TMP/bad.$$ bin
  pid=$(start_luajit openresty nested.lua) || fail "target did not start"
  # nobody must be able to run the binary itself: use a copy in TARGETS_TMP.
  bin=$TARGETS_TMP/luaspy-nobody.$$
  cp "$LUASPY" "$bin" || fail "cannot copy $LUASPY"
  chmod 755 "$bin"
  RC=0
  (cd / && timeout -k 5 60 setpriv --reuid=nobody --regid=nogroup --clear-groups \
    "$bin" dump -p "$pid" --json) >"$out" 2>"$out.err" || RC=$?
  expect_clean_error "$out" "$out.err"
  expect_target_ok "$pid"
}

bad_args() {
  # bad_args ARGS...: luaspy ARGS (with %PID% replaced by a live target)
  local pid out=$TARGETS_TMP/bad.$$ a args=()
  pid=$(start_luajit openresty nested.lua) || fail "target did not start"
  for a in "$@"; do args+=("${a//%PID%/$pid}"); done
  run_luaspy "$out" "$out.err" "${args[@]}"
  expect_clean_error "$out" "$out.err"
  expect_target_ok "$pid"
}

# The process exits on its own while dumps run back to back: each dump
# either succeeds or fails cleanly (never crashes or hangs).
exits_during_dump() {
  local pid out n=0 ok=0 err=0
  pid=$(start_luajit openresty exiting.lua 2000) || fail "target did not start"
  out=$TARGETS_TMP/exiting.$$
  while :; do
    local alive=0
    [ -n "$(proc_state "$pid")" ] && [ "$(proc_state "$pid")" != Z ] && alive=1
    run_luaspy "$out" "$out.err" dump -p "$pid" --json
    n=$((n + 1))
    if [ "$RC" -eq 0 ]; then
      jq -s -e 'length == 1' "$out" >/dev/null 2>&1 || fail "dump $n: exit 0 but not one JSON object: $(head -c 200 "$out")"
      ok=$((ok + 1))
    else
      case_log "$out.err"
      expect_clean_error "$out" "$out.err"
      err=$((err + 1))
    fi
    [ "$alive" = 1 ] || break
    [ "$n" -lt 500 ] || fail "target still alive after $n dumps"
  done
  [ "$ok" -ge 1 ] || fail "no dump succeeded while the target lived ($n dumps)"
  echo "exits_during_dump: $n dumps, $ok ok, $err clean errors" >&2
}

# The target is SIGKILLed at staggered moments while a dump runs.
killed_during_dump() {
  local i pid out dump_pid
  out=$TARGETS_TMP/killed.$$
  for i in 1 2 3 4 5 6; do
    pid=$(start_luajit openresty deep.lua) || fail "target did not start"
    RC=0
    timeout -k 5 60 "$LUASPY" dump -p "$pid" --json >"$out" 2>"$out.err" &
    dump_pid=$!
    _nap "0.0$((i * 15 / 10))"
    kill -KILL "$pid"
    wait "$dump_pid" || RC=$?
    if [ "$RC" -eq 0 ]; then
      jq -s -e 'length == 1' "$out" >/dev/null 2>&1 || fail "run $i: exit 0 but not one JSON object"
    else
      case_log "$out.err"
      expect_clean_error "$out" "$out.err"
    fi
  done
}

for flavor in openresty upstream; do
  for s in "${LUA_SCRIPTS[@]}"; do
    case_run "dump: $flavor $s.lua" dump_luajit "$flavor" "$s"
  done
done
case_run "dump: text output (openresty sleep.lua)" dump_text
case_run "dump: luajit in its own mount+PID namespace (chroot)" dump_container

case_run "dump: nginx idle worker (epoll): 1 VM, no Lua frames" dump_nginx_idle
case_run "dump: nginx master (root): 1 VM, no Lua frames" dump_nginx_master
case_run "dump: nginx worker spinning in /spin" dump_nginx_busy /spin spin.lua
case_run "dump: nginx worker blocked in os.execute (/block)" dump_nginx_busy /block block.lua
case_run "dump: nginx worker with a coroutine in ngx.sleep" dump_nginx_sleeping
case_run "dump: nginx 2 workers, each 1 VM" dump_nginx_workers

case_run "dump: traffic_server tslua, 4 states: 8 VMs" dump_ats 4
case_run "dump: traffic_server tslua, default states: 512 VMs" dump_ats ""
case_run "dump: traffic_server spinning in a remap (/spin/)" dump_ats_spin

case_run "bad: no such pid" bad_no_such_pid
case_run "bad: non-Lua process (sleep)" bad_non_lua
case_run "bad: zombie" bad_zombie
case_run "bad: run as nobody against a root target" bad_as_nobody
case_run "bad: unknown flag" bad_args dump -p %PID% --no-such-flag
case_run "bad: pid not a number" bad_args dump -p 12abc
case_run "bad: unknown command" bad_args no-such-command -p %PID%
case_run "bad: process exits during the dump" exits_during_dump
case_run "bad: process killed during the dump" killed_during_dump
