#!/usr/bin/env bash
# `luaspy offcpu`: off-CPU flame graphs of real targets.
#
# offcpu_io: a luajit whose handler naps in poll(2) through the FFI and
# waits for os.execute's child: both waits show up under the handler's
# Lua frames (current lines), with native (C:poll) and kernel frames and
# the right state at the root, and add up to most of the time recorded.
# offcpu_nginx_handler: an nginx request handler (content_by_lua) that
# waits for os.execute's child: the wait shows under the handler's Lua
# frames, below nginx's own native frames (ngx_http_lua_run_thread).
# offcpu_ats_fork: the seed's latency, reproduced in traffic_server with
# tslua: a remap handler forks through the FFI (fork copies the page
# tables of a 256 MiB address space holding mmap_lock for writing) while
# other requests map and touch fresh memory; offcpu must show page faults
# waiting for mmap_lock, and name fork's Lua caller among the holders.
# offcpu_wakers: --wakers on a luajit that reads a pipe a shell writes
# and wakes a thread of its own with sem_post: the reads carry the
# shell's kernel stack (pipe write) above a "--" frame, the thread's
# waits the Lua frame that called sem_post; the summary lists wakers.
# Then bad input and no BPF program left behind.
set -u
. "$(dirname "$0")/lib/harness.sh"

IO_TARGET=$ROOT/tests/targets/offcpu_io.lua
FORK_TARGET=$ROOT/tests/targets/ats/fork.lua
NGINX_TARGET=$ROOT/tests/targets/offcpu_nginx.lua
WAKE_TARGET=$ROOT/tests/targets/offcpu_wake.lua

line_of() { grep -n -F -- "$2" "$1" | head -n 1 | cut -d: -f1; }

# Sum of the weights of the folded stacks matching a grep -E pattern.
weight_of() { grep -E -- "$2" "$1" | awk '{ s += $NF } END { print s + 0 }'; }

offcpu_io() {
  local pid out nap_line sleep_line handler_nap handler_sleep total nap wait
  pid=$(start_luajit openresty offcpu_io.lua) || fail "target did not start"
  out=$TARGETS_TMP/io.folded
  run_luaspy "$out" "$out.err" offcpu -p "$pid" -d 2 -o "$out"
  case_log "$out"
  [ "$RC" -eq 0 ] || fail "offcpu exited $RC: $(head -c 300 "$out.err" | tr '\n' '|')"
  nap_line=$(line_of "$IO_TARGET" "ffi.C.poll(nil, 0, 20)")
  sleep_line=$(line_of "$IO_TARGET" 'os.execute("sleep 0.05")')
  handler_nap=$(line_of "$IO_TARGET" "  nap()")
  handler_sleep=$(line_of "$IO_TARGET" "  run_sleep()")
  total=$(awk '{ s += $NF } END { print s + 0 }' "$out")
  nap=$(weight_of "$out" "^\[off-cpu: poll\];.*handler \(offcpu_io.lua:$handler_nap\);nap \(offcpu_io.lua:$nap_line\);.*C:poll;.*kernel:do_sys_poll")
  wait=$(weight_of "$out" "^\[off-cpu: waiting for a child\];.*handler \(offcpu_io.lua:$handler_sleep\);run_sleep \(offcpu_io.lua:$sleep_line\);builtin:os.execute;.*kernel:")
  echo "total $total us, nap $nap us, os.execute $wait us"
  [ "$nap" -gt 150000 ] || fail "the poll naps under nap() add up to $nap us of $total: $(sort -k2 -nr "$out" | head -n 2 | cut -c1-400 | tr '\n' '|')"
  [ "$wait" -gt 300000 ] || fail "waiting for os.execute's child under run_sleep() adds up to $wait us: $(grep -F 'run_sleep' "$out" | head -n 2 | cut -c1-400 | tr '\n' '|')"
  [ $((nap + wait)) -gt $((total / 2)) ] || fail "naps and waits are only $((nap + wait)) of $total us"
  ! grep -q -F -- ';--;' "$out" || fail "waker frames without --wakers"
  grep -q '^\[off-cpu: poll\];C:_start;C:__libc_start_main;.*C:main;.*C:lua_pcall;' "$out" ||
    fail "native frames from _start to lua_pcall missing: $(grep -F 'nap (' "$out" | head -n 1 | cut -c1-300)"
  expect_target_ok "$pid"
}

offcpu_wakers() {
  local pid out read_line post_line pipe post
  pid=$(start_luajit openresty offcpu_wake.lua) || fail "target did not start"
  out=$TARGETS_TMP/wake.folded
  run_luaspy "$out" "$out.err" offcpu -p "$pid" -d 2 --wakers -o "$out"
  case_log "$out"
  case_log "$out.err"
  [ "$RC" -eq 0 ] || fail "offcpu exited $RC: $(head -c 300 "$out.err" | tr '\n' '|')"
  read_line=$(line_of "$WAKE_TARGET" 'local line = pipe:read("*l")')
  post_line=$(line_of "$WAKE_TARGET" "ffi.C.sem_post(sem)")
  # wakee root first, "--", the waker innermost first, its name on top
  pipe=$(weight_of "$out" "^\[off-cpu: pipe or socket I/O\];.*read_line \(offcpu_wake.lua:$read_line\);.*kernel:[a-z_]*pipe_read;.*;--;kernel:[^;]*wake[^;]*;.*kernel:[a-z_]*pipe_write;.*;\[waker: sh\] [0-9]+$")
  post=$(weight_of "$out" ";--;kernel:.*;kernel:futex_wake;.*;C:sem_post;.*;wake_thread \(offcpu_wake.lua:$post_line\);.*\[waker: luajit\] [0-9]+$")
  echo "pipe reads woken by sh: $pipe us, thread woken by sem_post: $post us"
  [ "$pipe" -gt 100000 ] || fail "no pipe reads woken by the shell's write: $(grep -F -- ';--;' "$out" | head -n 2 | cut -c1-600 | tr '\n' '|')"
  [ "$post" -gt 0 ] || fail "no wait woken by sem_post from wake_thread: $(grep -F 'sem_post' "$out" | head -n 2 | cut -c1-600 | tr '\n' '|')"
  grep -q '^wakers: [1-9][0-9]* waits with their waker' "$out.err" || fail "no wakers summary: $(tail -n 5 "$out.err" | tr '\n' '|')"
  grep -q '^      \[waker: sh\]$' "$out.err" || fail "the shell is not among the top wakers"
  expect_target_ok "$pid"
}

offcpu_nginx_handler() {
  local pids pid port out lp line main_line total wait
  command -v curl >/dev/null || skip "curl missing"
  pids=$(start_nginx "$NGINX_TARGET" 1) || skip "nginx did not start"
  pid=${pids%% *}
  port=$(target_port "$pid")
  (while :; do curl -s -m 5 "http://127.0.0.1:$port/t" >/dev/null; done) &
  lp=$!
  out=$TARGETS_TMP/nginx.folded
  run_luaspy "$out" "$out.err" offcpu -p "$pid" -d 2 --min-us 100 -o "$out"
  kill "$lp"
  case_log "$out"
  [ "$RC" -eq 0 ] || fail "offcpu exited $RC: $(head -c 300 "$out.err" | tr '\n' '|')"
  line=$(line_of "$NGINX_TARGET" 'os.execute("sleep 0.05")')
  main_line=$(line_of "$NGINX_TARGET" "  run_sleep()")
  total=$(awk '{ s += $NF } END { print s + 0 }' "$out")
  wait=$(weight_of "$out" "^\[off-cpu: waiting for a child\];.*C:ngx_http_lua_run_thread;.*main \([^;]*/test.lua:$main_line\);run_sleep \([^;]*/test.lua:$line\);builtin:os.execute;.*kernel:")
  echo "total $total us, os.execute under the handler $wait us"
  [ "$wait" -gt 500000 ] || fail "the handler's os.execute waits add up to $wait us of $total: $(sort -k2 -nr "$out" | head -n 2 | cut -c1-500 | tr '\n' '|')"
}

# traffic_server with fork.lua as its "/" remap: start_ats takes its Lua
# from TARGETS_DIR, so give it a copy of tests/targets with hello.lua
# replaced.
start_fork_ats() {
  local dir=$TARGETS_TMP/fork-targets
  mkdir -p "$dir/ats"
  cp "$ROOT/tests/targets/ready.lua" "$dir/"
  cp "$ROOT/tests/targets/ats/global.lua" "$ROOT/tests/targets/ats/spin.lua" "$dir/ats/"
  cp "$FORK_TARGET" "$dir/ats/hello.lua"
  TARGETS_DIR=$dir start_ats
}

# Load for fork.lua: N loops requesting /fault, one requesting /fork ten
# times a second. Their PIDs go to $TARGETS_TMP/load.pids.
start_fork_load() {
  local port=$1 i
  for i in 1 2 3; do
    (while :; do curl -s -m 5 "http://127.0.0.1:$port/fault" >/dev/null; done) &
    echo $! >>"$TARGETS_TMP/load.pids"
  done
  (while :; do curl -s -m 5 "http://127.0.0.1:$port/fork" >/dev/null; sleep 0.1; done) &
  echo $! >>"$TARGETS_TMP/load.pids"
}

stop_fork_load() {
  local p
  for p in $(cat "$TARGETS_TMP/load.pids" 2>/dev/null); do kill "$p" 2>/dev/null; done
  rm -f "$TARGETS_TMP/load.pids"
}

offcpu_ats_fork() {
  local pid port out waits
  command -v curl >/dev/null || skip "curl missing"
  pid=$(start_fork_ats) || skip "traffic_server did not start"
  port=$(target_port "$pid")
  start_fork_load "$port"
  trap stop_fork_load EXIT
  sleep 1
  out=$TARGETS_TMP/ats.folded
  run_luaspy "$out" "$out.err" offcpu -p "$pid" -d 4 --min-us 50 -o "$out"
  stop_fork_load
  case_log "$out"
  case_log "$out.err"
  [ "$RC" -eq 0 ] || fail "offcpu exited $RC: $(head -c 300 "$out.err" | tr '\n' '|')"
  grep -q '^\[off-cpu: page fault: mmap_lock\];.*kernel:exc_page_fault;.*kernel:lock_mm_and_find_vma' "$out" ||
    fail "no page fault waiting for mmap_lock: $(cut -d';' -f1 "$out" | sort | uniq -c | tr '\n' '|')"
  waits=$(sed -n 's/^mmap_lock: \([0-9]*\) waits.*/\1/p' "$out.err")
  [ "${waits:-0}" -gt 0 ] || fail "no mmap_lock waits in the summary: $(grep mmap_lock "$out.err" | tr '\n' '|')"
  # The holders: fork copying the page tables, called from the Lua remap.
  sed -n '/^mmap_lock held for write/,$p' "$out.err" >"$out.holders"
  grep -q 'kernel:dup_mmap' "$out.holders" || fail "fork's dup_mmap not among the holders: $(head -c 400 "$out.holders" | tr '\n' '|')"
  grep -q 'C:fork' "$out.holders" || fail "no C:fork frame among the holders"
  grep -q '(.*hello.lua:[0-9]*)' "$out.holders" || fail "no Lua frame of the remap among the holders: $(head -c 600 "$out.holders" | tr '\n' '|')"
  expect_target_ok "$pid"
}

offcpu_bad_input() {
  local out=$TARGETS_TMP/bad.out pid
  run_luaspy "$out" "$out.err" offcpu
  expect_clean_error "$out" "$out.err"
  [ "$RC" -eq 2 ] || fail "no -p: exit $RC, expected 2"
  run_luaspy "$out" "$out.err" offcpu -p 1 --min-us -5
  expect_clean_error "$out" "$out.err"
  [ "$RC" -eq 2 ] || fail "bad --min-us: exit $RC, expected 2"
  run_luaspy "$out" "$out.err" offcpu -p 1 --bogus
  expect_clean_error "$out" "$out.err"
  [ "$RC" -eq 2 ] || fail "unknown option: exit $RC, expected 2"
  run_luaspy "$out" "$out.err" offcpu -p 1 -o /nonexistent/dir/x.svg
  expect_clean_error "$out" "$out.err"
  [ "$RC" -eq 2 ] || fail "unwritable output: exit $RC, expected 2"
  run_luaspy "$out" "$out.err" offcpu -p 999999999
  expect_clean_error "$out" "$out.err"
  [ "$RC" -eq 1 ] || fail "no such process: exit $RC, expected 1"
  pid=$(start_cmd sleep 100) || fail "sleep did not start"
  run_luaspy "$out" "$out.err" offcpu -p "$pid" -d 1
  expect_clean_error "$out" "$out.err"
  [ "$RC" -eq 1 ] || fail "process without Lua: exit $RC, expected 1"
}

# Programs of offcpu.bpf.c still loaded (by name).
offcpu_progs() { bpftool prog show 2>/dev/null | grep -cE ' name luaspy_(switch|lock_)'; }

offcpu_no_leftovers() {
  local pid lp out=$TARGETS_TMP/left.folded
  command -v bpftool >/dev/null || skip "bpftool missing"
  pid=$(start_luajit openresty offcpu_io.lua) || fail "target did not start"
  "$LUASPY" offcpu -p "$pid" -o "$out" 2>"$out.err" &
  lp=$!
  for _ in $(seq 100); do
    [ "$(offcpu_progs)" -gt 0 ] && break
    sleep 0.1
  done
  [ "$(offcpu_progs)" -gt 0 ] || fail "no offcpu BPF program loaded while recording"
  sleep 1
  kill -INT "$lp"
  wait "$lp" || fail "SIGINT: exit status $?: $(head -c 200 "$out.err")"
  [ -s "$out" ] || fail "no output written on SIGINT"
  # The kernel frees programs a moment after their last descriptor closes.
  for _ in $(seq 30); do [ "$(offcpu_progs)" -eq 0 ] && break; sleep 0.1; done
  [ "$(offcpu_progs)" -eq 0 ] || fail "offcpu BPF programs left loaded"
  expect_target_ok "$pid"
}

case_run offcpu_io offcpu_io
case_run offcpu_wakers offcpu_wakers
case_run offcpu_nginx_handler offcpu_nginx_handler
case_run offcpu_ats_fork offcpu_ats_fork
case_run offcpu_bad_input offcpu_bad_input
case_run offcpu_no_leftovers offcpu_no_leftovers
