#!/usr/bin/env bash
# The harness checks itself, without luaspy: every target starts, reaches
# its blocking place, and its "-- expect:" header agrees with the stack
# LuaJIT itself reports there (debug.getinfo, written by ready()).
# A failure here means a target script or its header is wrong, not luaspy.
set -u
. "$(dirname "$0")/lib/harness.sh"

LUA_SCRIPTS=(nested deep co pcall xpcall varargs tail meta jit_loop cfunc sleep)

check_luajit() {
  local flavor=$1 script=$2 pid
  pid=$(start_luajit "$flavor" "$script.lua") || fail "target did not start"
  local diff
  diff=$(selfcheck_stack "$TARGETS_DIR/$script.lua" "$(target_dir "$pid")/ready")
  [ -z "$diff" ] || fail "$script.lua header vs LuaJIT: $diff"
  # "-- process: blocked" targets sleep in the kernel, the others spin.
  if [ "$(script_header "$TARGETS_DIR/$script.lua" process)" = blocked ]; then
    wait_for 5 _is_sleeping "$pid" || fail "target is not blocked (state $(proc_state "$pid"))"
  else
    [ "$(proc_state "$pid")" = R ] || _nap 0.2
    [ "$(proc_state "$pid")" = R ] || fail "target is not running (state $(proc_state "$pid"))"
  fi
}
_is_sleeping() { [ "$(proc_state "$1")" = S ]; }

check_luajit_exe() {
  local flavor=$1 want=$2 pid exe got
  pid=$(start_luajit "$flavor" nested.lua) || fail "target did not start"
  exe=$(readlink "/proc/$pid/exe")
  [ "$exe" = "$want" ] || fail "exe is $exe, expected $want"
  # Both builds have the VM inside the executable; only OpenResty's exports
  # its lua_setexdata extension.
  if nm -D "$exe" 2>/dev/null | grep -q lua_setexdata; then got=openresty; else got=upstream; fi
  [ "$got" = "$flavor" ] || fail "$exe looks like $got LuaJIT, expected $flavor"
}

check_nginx() {
  local path=$1 module=$2 w
  w=$(start_nginx "" 1) || fail "nginx did not start"
  [ "$(ps -o user= -p "$w")" = nobody ] || fail "worker $w runs as $(ps -o user= -p "$w"), expected nobody"
  grep -q libluajit-5.1.so /proc/"$w"/maps || fail "worker $w has no libluajit mapped"
  http_block "$w" "$path" || fail "$path did not reach ready()"
  local diff
  diff=$(selfcheck_stack "$TARGETS_DIR/nginx/$module" "$(target_dir "$w")/ready/signal")
  [ -z "$diff" ] || fail "nginx/$module header vs LuaJIT: $diff"
}

check_nginx_t() {
  local w out
  w=$(start_nginx "$TARGETS_DIR/nginx/hello.lua" 2) || fail "nginx did not start"
  [ "$(wc -w <<<"$w")" -eq 2 ] || fail "expected 2 worker pids, got '$w'"
  out=$(http_get "${w%% *}" /t) || fail "GET /t failed"
  [ "$out" = hello ] || fail "GET /t answered '$out'"
}

check_ats() {
  local pid diff
  pid=$(start_ats) || fail "traffic_server did not start"
  [ "$(http_get "$pid" /anything)" = ok ] || fail "the Lua remap did not answer"
  grep -c libluajit-5.1.so "/proc/$pid/maps" >/dev/null || fail "no libluajit mapped"
  http_block "$pid" /spin/ || fail "/spin/ did not reach ready()"
  diff=$(selfcheck_stack "$TARGETS_DIR/ats/spin.lua" "$(target_dir "$pid")/ready/signal")
  [ -z "$diff" ] || fail "ats/spin.lua header vs LuaJIT: $diff"
  # the spinning remap holds one net thread; the other still serves
  [ "$(http_get "$pid" /again)" = ok ] || fail "no answer while /spin/ spins"
}

for flavor in openresty upstream; do
  for s in "${LUA_SCRIPTS[@]}"; do
    case_run "targets: $flavor $s.lua matches its header" check_luajit "$flavor" "$s"
  done
done
case_run "targets: openresty flavor is /usr/bin/luajit (luajit2)" check_luajit_exe openresty /usr/bin/luajit
case_run "targets: upstream flavor is build/upstream's luajit" check_luajit_exe upstream "$UPSTREAM_DIR/usr/bin/luajit"
case_run "targets: nginx /t serves test.main() with 2 workers" check_nginx_t
case_run "targets: nginx /spin matches spin.lua's header" check_nginx /spin spin.lua
case_run "targets: nginx /block matches block.lua's header" check_nginx /block block.lua
case_run "targets: traffic_server tslua remap+global serve, /spin/ matches its header" check_ats
