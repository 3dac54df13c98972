# Real LuaJIT targets for the tests (sourced; bash, set -u).
#
#   start_luajit FLAVOR SCRIPT [ARGS]  FLAVOR openresty (/usr/bin/luajit,
#                       luajit2) or upstream (build/upstream, scripts/deps.sh).
#                       SCRIPT is a name in tests/targets/ or a path. Prints
#                       the luajit PID once the script called ready() (see
#                       tests/targets/ready.lua).
#   start_nginx [LUA_FILE_OR_DIR] [WORKERS]
#                       nginx + lua module in a sandbox; LUA_FILE becomes
#                       lua/test.lua, a DIR's files go to lua/. Prints the
#                       worker PIDs (workers run as nobody, the master as
#                       root) once a Lua request was served.
#                       Locations: /t (require "test".main()), /spin,
#                       /block (tests/targets/nginx/*.lua), /sleep
#                       (ngx.sleep), /ready.
#   start_ats           traffic_server with tslua as a remap plugin (/ and
#                       /spin/) and a global plugin. Prints its PID once the
#                       Lua remap answered a request.
#   target_port PID     the HTTP port of the nginx or ATS instance of PID
#   target_dir PID      its sandbox directory (logs, configs)
#   http_get PID PATH   GET a path from that instance (curl, body on stdout)
#   http_block PID PATH send a request that makes Lua block or spin (in the
#                       background) and wait until its ready() signal
#   stop_all            stop every target started (runner's EXIT trap)
#   stop_scope SCOPE    stop the targets started under TARGETS_SCOPE=SCOPE
#
# The PID-returning functions can run in $(...): every process is recorded
# in $TARGETS_TMP/registry as "SCOPE PGID", each target being started as
# its own session/process group, so stopping kills the whole group
# (nginx workers, os.execute children) and nothing else.
# shellcheck shell=bash

ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
TARGETS_DIR=$ROOT/tests/targets
UPSTREAM_DIR=$ROOT/build/upstream
if [ -z "${TARGETS_TMP:-}" ]; then
  TARGETS_TMP=$(mktemp -d /tmp/luaspy-targets.XXXXXX)
  export TARGETS_TMP
  _targets_own_tmp=$BASHPID   # stop_all in this shell removes it
fi
# nginx workers (nobody) must reach their sandboxes under it.
chmod 755 "$TARGETS_TMP"
TARGETS_SCOPE=${TARGETS_SCOPE:-global}
: "${READY_TIMEOUT:=20}"

_targets_err() { echo "targets: $*" >&2; }

# ---- process bookkeeping ------------------------------------------------------

_register() { echo "$TARGETS_SCOPE $1" >>"$TARGETS_TMP/registry"; }

# Forks are slow on small VMs (~20 ms each here), and polling loops fork a
# lot: the helpers below use bash builtins only.

# _nap SECONDS: sleep without forking (read with a timeout on a FIFO that
# nobody writes to).
_nap() {
  if [ -z "${_nap_fd:-}" ]; then
    mkfifo "$TARGETS_TMP/nap.$BASHPID" && exec {_nap_fd}<>"$TARGETS_TMP/nap.$BASHPID"
    rm -f "$TARGETS_TMP/nap.$BASHPID"
  fi
  read -r -t "$1" -u "$_nap_fd" _ || true
}

# State letter of PID (R, S, D, T, Z...) or nothing if gone.
proc_state() {
  local stat
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 0
  stat=${stat##*) }   # comm may hold spaces and parens
  echo "${stat%% *}"
}

# True if process group PGID has a live (non-zombie) member. (A /proc scan:
# kill -0 -PGID also counts zombies, which an init that doesn't reap, like
# this machine's, keeps around.)
_group_alive() {
  local pgid=$1 f stat state pgrp
  for f in /proc/[0-9]*/stat; do
    { read -r stat <"$f"; } 2>/dev/null || continue
    read -r state _ pgrp _ <<<"${stat##*) }"   # state, ppid, pgrp, ...
    [ "$pgrp" = "$pgid" ] && [ "$state" != Z ] && return 0
  done
  return 1
}

_kill_group() {
  local pgid=$1 _i
  _group_alive "$pgid" || return 0
  kill -TERM -- "-$pgid" 2>/dev/null
  # Spinning Lua doesn't return to nginx's or ATS's event loop, so their
  # TERM handlers never run: don't wait long before KILL.
  for _i in 1 2 3 4 5 6 7 8 9 10; do
    _group_alive "$pgid" || return 0
    _nap 0.1
  done
  kill -KILL -- "-$pgid" 2>/dev/null
  for _i in 1 2 3 4 5 6 7 8 9 10; do
    _group_alive "$pgid" || return 0
    _nap 0.1
  done
  _targets_err "process group $pgid survived SIGKILL"
}

stop_scope() {
  local scope=$1 s pgid
  [ -f "$TARGETS_TMP/registry" ] || return 0
  while read -r s pgid; do
    [ "$s" = "$scope" ] && _kill_group "$pgid"
  done <"$TARGETS_TMP/registry"
  return 0
}

stop_all() {
  local s pgid
  if [ -f "$TARGETS_TMP/registry" ]; then
    while read -r s pgid; do _kill_group "$pgid"; done <"$TARGETS_TMP/registry"
  fi
  # a TARGETS_TMP made by this shell (not handed down by tests/run) goes too
  [ "${_targets_own_tmp:-}" = "$BASHPID" ] && rm -rf "$TARGETS_TMP"
  return 0
}

# spawn DIR CMD...: start CMD in the current directory as a new session
# (so PID == PGID), stdin a FIFO held open read-write (reads block forever,
# never see EOF), stdout+stderr to DIR/out.log. Registers it, prints the PID.
spawn() {
  local dir=$1; shift
  [ -p "$dir/stdin" ] || mkfifo "$dir/stdin"
  # In a non-interactive shell a background job is not a group leader, so
  # setsid(1) calls setsid() itself and execs: $! is CMD's PID.
  exec setsid "$@" <>"$dir/stdin" >>"$dir/out.log" 2>&1 &
  local pid=$!
  _register "$pid"
  echo "$pid"
}

# new_target_dir NAME: a fresh sandbox directory under TARGETS_TMP.
new_target_dir() {
  local d
  d=$(mktemp -d "$TARGETS_TMP/$1.XXXXXX")
  chmod 755 "$d"
  echo "$d"
}

# wait_for SECONDS CMD...: poll CMD every 0.05 s until it succeeds.
wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    _nap 0.05
  done
}

_alive() { local st; st=$(proc_state "$1"); [ -n "$st" ] && [ "$st" != Z ]; }
_ready_or_dead() { [ -s "$1" ] || ! _alive "$2"; }

# wait_ready FILE PID LOG: wait for the ready() signal FILE of PID.
wait_ready() {
  local file=$1 pid=$2 log=$3
  wait_for "$READY_TIMEOUT" _ready_or_dead "$file" "$pid"
  if [ -s "$file" ] && _alive "$pid"; then return 0; fi
  if _alive "$pid"; then
    _targets_err "pid $pid: no ready signal within ${READY_TIMEOUT}s ($file); log: $(tail -n 5 "$log" 2>/dev/null | tr '\n' '|')"
  else
    _targets_err "pid $pid exited before ready; log: $(tail -n 5 "$log" 2>/dev/null | tr '\n' '|')"
  fi
  return 1
}

# ---- ports --------------------------------------------------------------------

_port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port BASE: the first port from BASE up not in use and not handed out
# before by this run (sandboxes may not have bound theirs yet).
free_port() {
  local p=$1
  touch "$TARGETS_TMP/ports"
  while grep -qx "$p" "$TARGETS_TMP/ports" || _port_busy "$p"; do p=$((p + 1)); done
  echo "$p" >>"$TARGETS_TMP/ports"
  echo "$p"
}

# Instances record "PID PORT DIR" for their processes.
_record_instance() { echo "$1 $2 $3" >>"$TARGETS_TMP/instances"; }
target_port() { awk -v p="$1" '$1 == p {print $2; exit}' "$TARGETS_TMP/instances" 2>/dev/null; }
target_dir() { awk -v p="$1" '$1 == p {print $3; exit}' "$TARGETS_TMP/instances" 2>/dev/null; }

http_get() {
  local port
  port=$(target_port "$1")
  [ -n "$port" ] || { _targets_err "no instance for pid $1"; return 1; }
  curl -sS -m 10 "http://127.0.0.1:$port$2"
}

# http_block PID PATH: fire a request whose Lua code blocks or spins and
# calls ready() first (/spin, /block, /sleep on nginx; /spin/ on ATS); the
# request runs in the background (own process group, current scope).
# Returns once ready() ran. Only one such request at a time per instance.
http_block() {
  local pid=$1 path=$2 port dir signal
  port=$(target_port "$pid")
  dir=$(target_dir "$pid")
  [ -n "$port" ] || { _targets_err "no instance for pid $pid"; return 1; }
  signal=$dir/ready/signal
  rm -f "$signal"
  local cdir
  cdir=$(new_target_dir curl)
  spawn "$cdir" curl -sS -m 3600 "http://127.0.0.1:$port$path" >/dev/null
  wait_for "$READY_TIMEOUT" test -s "$signal" ||
    { _targets_err "no ready signal from $path within ${READY_TIMEOUT}s"; return 1; }
}

# ---- luajit -------------------------------------------------------------------

luajit_bin() {
  case $1 in
    openresty) echo /usr/bin/luajit ;;
    upstream) echo "$UPSTREAM_DIR/usr/bin/luajit" ;;
    *) _targets_err "unknown luajit flavor '$1' (openresty|upstream)"; return 1 ;;
  esac
}

start_luajit() {
  local flavor=$1 script=$2; shift 2
  local bin dir pid
  bin=$(luajit_bin "$flavor") || return 1
  [ -x "$bin" ] || { _targets_err "$bin missing (run scripts/deps.sh)"; return 1; }
  # A bare name runs from tests/targets (chunk name "@name.lua"); a path as is.
  case $script in
    */*) script=$(cd "$(dirname "$script")" && pwd)/$(basename "$script") ;;
    *) [ -f "$TARGETS_DIR/$script" ] || { _targets_err "no target $script"; return 1; } ;;
  esac
  dir=$(new_target_dir "luajit-$flavor-$(basename "$script" .lua)")
  pid=$(cd "$TARGETS_DIR" && spawn "$dir" env \
    LUA_PATH="$TARGETS_DIR/?.lua;;" \
    LUASPY_READY="$dir/ready" \
    LD_LIBRARY_PATH="$UPSTREAM_DIR/usr/lib/x86_64-linux-gnu" \
    "$bin" "$script" "$@")
  _record_instance "$pid" - "$dir"
  wait_ready "$dir/ready" "$pid" "$dir/out.log" || return 1
  echo "$pid"
}

# ---- nginx + lua ------------------------------------------------------------

start_nginx() {
  local lua=${1:-} workers=${2:-1} dir port master pids
  command -v nginx >/dev/null || { _targets_err "nginx missing (run scripts/deps.sh)"; return 1; }
  dir=$(new_target_dir nginx)
  mkdir -p "$dir/conf" "$dir/logs" "$dir/lua" "$dir/ready"
  # Workers (nobody) require() the modules at request time and write the
  # ready() signal: everything readable, ready/ writable.
  cp "$TARGETS_DIR/ready.lua" "$TARGETS_DIR"/nginx/*.lua "$dir/lua/"
  cp "$TARGETS_DIR/nginx/hello.lua" "$dir/lua/test.lua"
  if [ -d "$lua" ]; then
    cp -r "$lua"/. "$dir/lua/"
  elif [ -n "$lua" ]; then
    cp "$lua" "$dir/lua/test.lua" || return 1
  fi
  chmod -R a+rX "$dir/lua" "$dir/conf"
  chmod 1777 "$dir/ready"
  port=$(free_port 18080)
  # daemon off: the process we start is the master (PID == PGID of the
  # whole instance). error_log is also given with -e: before reading the
  # config nginx opens its compiled-in log, which is stderr here.
  # "env" passes the ready() signal path to the workers' Lua.
  cat >"$dir/conf/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
daemon off;
user nobody nogroup;
worker_processes $workers;
error_log logs/error.log info;
pid logs/nginx.pid;
env LUASPY_READY=$dir/ready/signal;
events { worker_connections 1024; }
http {
  access_log off;
  lua_package_path "\$prefix/lua/?.lua;;";
  server {
    listen 127.0.0.1:$port;
    location = /ready { content_by_lua_block { ngx.say("ready") } }
    location = /t { content_by_lua_block { require "test".main() } }
    location = /spin { content_by_lua_block { require "spin".main() } }
    location = /block { content_by_lua_block { require "block".main() } }
    location = /sleep { content_by_lua_block { require "ready"() ngx.sleep(3600) } }
  }
}
CONF
  master=$(cd "$dir" && spawn "$dir" nginx -p "$dir/" -c conf/nginx.conf -e logs/error.log)
  _record_instance "$master" "$port" "$dir"
  if ! wait_for "$READY_TIMEOUT" _nginx_up "$port" "$master" || ! _alive "$master"; then
    _targets_err "nginx (master $master) not serving on 127.0.0.1:$port; error.log: $(tail -n 5 "$dir/logs/error.log" 2>/dev/null | tr '\n' '|')"
    return 1
  fi
  # Workers are the master's children (no cache manager without proxy_cache).
  wait_for 10 _nginx_workers_up "$master" "$workers" || {
    _targets_err "nginx: expected $workers workers of master $master, got: $(pgrep -P "$master" | tr '\n' ' ')"
    return 1
  }
  pids=$(pgrep -P "$master" | sort -n | tr '\n' ' ')
  local p
  for p in $pids; do _record_instance "$p" "$port" "$dir"; done
  echo "${pids% }"
}

_nginx_up() {
  _alive "$2" || return 0   # stop waiting: checked by the caller
  [ "$(curl -s -m 2 "http://127.0.0.1:$1/ready" 2>/dev/null)" = ready ]
}
_nginx_workers_up() { [ "$(pgrep -P "$1" | wc -l)" -eq "$2" ]; }

# ---- traffic_server + tslua ---------------------------------------------------
#
# Gotchas (Debian 12, trafficserver 9.2, no systemd, as root):
# - No traffic_layout needed: a hand-written runroot.yaml pointing bindir/
#   libexecdir at /usr and the rest (sysconfdir, runtimedir, logdir,
#   cachedir...) into the sandbox makes /usr/bin/traffic_server use the
#   sandbox only (passed as --run-root=DIR/runroot.yaml).
# - proxy.config.admin.user_id "#-1" keeps it root; the Debian default
#   ("trafficserver") would setuid and then fail to write the sandbox.
# - proxy.config.crash_log_helper NULL: otherwise traffic_server forks
#   traffic_crashlog, which SIGSTOPs itself in traffic_server's process
#   group until a crash. Started from a subshell that then exits, the group
#   becomes orphaned, the kernel SIGCONTs the stopped helper, and it writes
#   a bogus crash-*.log and stays a zombie (seen here). As its own session
#   it just sits stopped; tests don't need it either way.
# - server_ports "PORT:ip-in=127.0.0.1" binds loopback only (plain "PORT"
#   binds 0.0.0.0).
# - tslua creates proxy.config.plugin.lua.max_states lua_States (separate
#   luaL_newstate() VMs) for the remap instances AND the same number again
#   for the global plugin: 2*N VMs in one process (counted with a bpftrace
#   uretprobe on luaL_newstate). N is 256 by default, i.e. 512 VMs;
#   ATS_LUA_STATES (default 4, so 8 VMs) sets it, empty = tslua's default.
# - ts.http.intercept answers from Lua without an origin server, so the
#   remap target can be the unused http://127.0.0.1:1/.
# - Stopping: SIGTERM works while idle; a thread spinning in Lua (/spin/)
#   keeps it from exiting, hence stop's SIGKILL fallback.
# - Startup (cache init, plugin load) takes about a second.
: "${ATS_LUA_STATES:=4}"

start_ats() {
  local dir port pid
  [ -x /usr/bin/traffic_server ] || { _targets_err "traffic_server missing (run scripts/deps.sh)"; return 1; }
  [ -f /usr/lib/trafficserver/modules/tslua.so ] || { _targets_err "tslua.so missing"; return 1; }
  dir=$(new_target_dir ats)
  mkdir -p "$dir/etc" "$dir/run" "$dir/log" "$dir/cache" "$dir/ready" "$dir/lua"
  # Stock configs (ip_allow.yaml, body_factory, ...), then ours.
  cp -r /etc/trafficserver/. "$dir/etc/"
  cp "$TARGETS_DIR/ready.lua" "$TARGETS_DIR"/ats/*.lua "$dir/lua/"
  port=$(free_port 18200)
  cat >"$dir/runroot.yaml" <<YAML
prefix: $dir
exec_prefix: /usr
bindir: /usr/bin
sbindir: /usr/sbin
sysconfdir: $dir/etc
datadir: $dir/cache
includedir: /usr/include
libdir: /usr/lib/trafficserver
libexecdir: /usr/lib/trafficserver/modules
localstatedir: $dir/run
runtimedir: $dir/run
logdir: $dir/log
cachedir: $dir/cache
YAML
  cat >"$dir/etc/records.config" <<REC
CONFIG proxy.config.http.server_ports STRING $port:ip-in=127.0.0.1
CONFIG proxy.config.admin.user_id STRING #-1
CONFIG proxy.config.crash_log_helper STRING NULL
CONFIG proxy.config.http.cache.http INT 0
CONFIG proxy.config.reverse_proxy.enabled INT 1
CONFIG proxy.config.url_remap.remap_required INT 1
CONFIG proxy.config.exec_thread.autoconfig INT 0
CONFIG proxy.config.exec_thread.limit INT 2
CONFIG proxy.config.accept_threads INT 1
CONFIG proxy.config.task_threads INT 1
CONFIG proxy.config.cache.threads_per_disk INT 1
CONFIG proxy.config.log.logging_enabled INT 0
REC
  [ -z "$ATS_LUA_STATES" ] ||
    echo "CONFIG proxy.config.plugin.lua.max_states INT $ATS_LUA_STATES" >>"$dir/etc/records.config"
  echo "$dir/cache 64M" >"$dir/etc/storage.config"
  # First match wins: /spin/ before the catch-all.
  cat >"$dir/etc/remap.config" <<REMAP
map /spin/ http://127.0.0.1:1/ @plugin=tslua.so @pparam=$dir/lua/spin.lua
map / http://127.0.0.1:1/ @plugin=tslua.so @pparam=$dir/lua/hello.lua
REMAP
  echo "tslua.so $dir/lua/global.lua" >"$dir/etc/plugin.config"
  pid=$(cd "$dir" && LUASPY_READY=$dir/ready/signal \
    spawn "$dir" /usr/bin/traffic_server --run-root="$dir/runroot.yaml")
  _record_instance "$pid" "$port" "$dir"
  if ! wait_for 60 _ats_up "$port" "$pid" || ! _alive "$pid"; then
    _targets_err "traffic_server $pid not serving on 127.0.0.1:$port; diags.log: $(tail -n 5 "$dir/log/diags.log" 2>/dev/null | tr '\n' '|') out.log: $(tail -n 3 "$dir/out.log" 2>/dev/null | tr '\n' '|')"
    return 1
  fi
  echo "$pid"
}

# Up = the Lua remap answered "ok" and the global plugin tagged the response.
_ats_up() {
  _alive "$2" || return 0   # stop waiting: checked by the caller
  local resp
  resp=$(curl -s -i -m 2 "http://127.0.0.1:$1/" 2>/dev/null | tr -d '\r')
  [[ $resp == *$'\nX-Luaspy-Global: 1\n'* && $resp == *$'\n\nok' ]]
}

# ---- odd processes ------------------------------------------------------------

# start_cmd CMD...: any command as a target (e.g. a non-Lua "sleep 100");
# prints its PID once it runs CMD (not the fork before exec).
start_cmd() {
  local dir pid
  dir=$(new_target_dir cmd)
  pid=$(spawn "$dir" "$@")
  _record_instance "$pid" - "$dir"
  wait_for 10 _execed "$pid" "$(basename "$1")" ||
    { _targets_err "$* (pid $pid) did not start: $(tail -n 3 "$dir/out.log" | tr '\n' '|')"; return 1; }
  echo "$pid"
}
_execed() {
  local comm
  { read -r comm <"/proc/$1/comm"; } 2>/dev/null || return 1
  [ "$comm" = "${2:0:15}" ]
}

# start_zombie: a zombie process (its parent, a perl process, neither
# waits for it nor exits). Prints the zombie's PID. On SIGTERM the parent
# reaps it and exits, so stopping leaves nothing behind.
start_zombie() {
  local dir parent zpid
  dir=$(new_target_dir zombie)
  parent=$(spawn "$dir" perl -e '
    my $c = fork() // die "fork: $!";
    exit 0 if $c == 0;
    $SIG{TERM} = sub { waitpid($c, 0); exit 0 };
    open(my $f, ">", "$ARGV[0].tmp") or die "$!"; print $f "$c\n"; close $f;
    rename("$ARGV[0].tmp", $ARGV[0]) or die "$!";
    sleep 1 while 1;' "$dir/ready")
  wait_ready "$dir/ready" "$parent" "$dir/out.log" || return 1
  read -r zpid <"$dir/ready"
  wait_for 10 _is_zombie "$zpid" || { _targets_err "pid $zpid is not a zombie"; return 1; }
  _record_instance "$zpid" - "$dir"
  echo "$zpid"
}
_is_zombie() { [ "$(proc_state "$1")" = Z ]; }
