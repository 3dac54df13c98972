#!/usr/bin/env bash
# Install everything luaspy needs to build, run its demo and run its tests
# on Debian 12. Idempotent: a second run installs nothing and only checks.
#
#   scripts/deps.sh
#
# - Debian packages (apt-get update only when something is missing);
# - upstream LuaJIT unpacked into build/upstream/ (it conflicts in apt with
#   OpenResty's luajit2, which nginx's lua module and tslua link), run as
#   LD_LIBRARY_PATH=build/upstream/usr/lib/x86_64-linux-gnu build/upstream/usr/bin/luajit;
# - tracefs mounted at /sys/kernel/tracing if it is not;
# - the nginx and trafficserver system services stopped, so that nothing
#   apt started stays bound to ports (the tests run their own sandboxes).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
upstream_dir="$root/build/upstream"

# Run privileged commands directly as root, through sudo otherwise.
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps.sh: must run as root (or have sudo)" >&2; exit 1; }
  SUDO=(sudo)
fi
as_root() { "${SUDO[@]}" "$@"; }

log() { printf 'deps: %s\n' "$*"; }

packages=(
  build-essential clang llvm libbpf-dev bpftool libelf-dev libdw-dev zlib1g-dev liblzma-dev
  pkg-config luajit2 libluajit2-5.1-dev nginx libnginx-mod-http-lua trafficserver
  wrk jq procps psmisc curl time
  # independent counts to check luaspy syscalls against (tests/test_syscalls.sh)
  bpftrace
  # pprof output (protobuf-c); go tool pprof reads it in tests/test_formats.sh
  libprotobuf-c-dev protobuf-c-compiler golang-go
  # record --push uploads over HTTP(S) (libcurl); `top` is driven in tmux
  libcurl4-openssl-dev tmux
)

installed() { # PKG: true if PKG is installed
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

apt_updated=0
apt_update_once() {
  [ "$apt_updated" = 1 ] && return 0
  log "apt-get update"
  as_root apt-get update -qq
  apt_updated=1
}

install_packages() {
  local missing=() p
  for p in "${packages[@]}"; do installed "$p" || missing+=("$p"); done
  if [ ${#missing[@]} -eq 0 ]; then
    log "all Debian packages present"
    return 0
  fi
  log "installing: ${missing[*]}"
  apt_update_once
  # Keep apt from starting nginx/trafficserver while installing (invoke-rc.d
  # and deb-systemd-invoke honour policy-rc.d). Only remove the file if we
  # created it.
  local policy=/usr/sbin/policy-rc.d made_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
    as_root chmod 755 "$policy"
    made_policy=1
  fi
  # One transaction: nginx's lua module and trafficserver depend on
  # "libluajit2-5.1-2 | libluajit-5.1-2"; installing them together with
  # luajit2 makes apt choose OpenResty's library for all of them.
  local rc=0
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends "${missing[@]}" || rc=$?
  [ "$made_policy" = 1 ] && as_root rm -f "$policy"
  return "$rc"
}

# Upstream LuaJIT (Debian's "luajit" + "libluajit-5.1-2") can't be installed
# next to luajit2, so unpack the .debs into build/upstream instead.
unpack_upstream_luajit() {
  local bin="$upstream_dir/usr/bin/luajit"
  local lib="$upstream_dir/usr/lib/x86_64-linux-gnu"
  if [ -x "$bin" ] && LD_LIBRARY_PATH="$lib" "$bin" -e 'assert(jit)' 2>/dev/null; then
    log "upstream LuaJIT present in build/upstream"
    return 0
  fi
  local tmp
  tmp=$(mktemp -d)
  # apt-get download as root drops to the _apt user for the download and
  # warns when _apt can't write the target dir: give it the dir.
  chmod 755 "$tmp"
  if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$tmp"; fi
  if ! (cd "$tmp" && apt-get download -qq luajit libluajit-5.1-2 2>/dev/null); then
    apt_update_once
    (cd "$tmp" && apt-get download -qq luajit libluajit-5.1-2)
  fi
  rm -rf "$upstream_dir"
  mkdir -p "$upstream_dir"
  local deb
  for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$upstream_dir"; done
  rm -rf "$tmp"
  LD_LIBRARY_PATH="$lib" "$bin" -e 'assert(jit)' ||
    { echo "deps.sh: unpacked upstream LuaJIT does not run" >&2; exit 1; }
  log "upstream LuaJIT unpacked: $(LD_LIBRARY_PATH="$lib" "$bin" -v)"
}

mount_tracefs() {
  local t=/sys/kernel/tracing
  if [ -d "$t" ] && [ -n "$(ls -A "$t" 2>/dev/null)" ]; then
    return 0
  fi
  if as_root mount -t tracefs nodev "$t" 2>/dev/null; then
    log "mounted tracefs on $t"
  else
    log "warning: could not mount tracefs on $t (tracepoint attach may fail)"
  fi
}

# The packages' services are not needed (the tests start their own
# sandboxed instances on 127.0.0.1:18080+/18200+), and a running system
# nginx/traffic_server would only use ports and CPU. Stop them through
# systemd, or else by the services' own pidfiles. Not through
# /etc/init.d/trafficserver: its "stop" kills every process running
# /usr/bin/traffic_server, test sandboxes included.
stop_services() {
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    as_root systemctl stop nginx trafficserver 2>/dev/null || true
    as_root systemctl disable nginx trafficserver >/dev/null 2>&1 || true
    return 0
  fi
  local pidfile pid
  for pidfile in /run/nginx.pid /run/trafficserver/manager.lock /run/trafficserver/server.lock; do
    [ -r "$pidfile" ] || continue
    pid=$(head -c 32 "$pidfile" | tr -dc 0-9)
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || continue
    case "$(readlink "/proc/$pid/exe" 2>/dev/null)" in
      */nginx|*/traffic_manager|*/traffic_server)
        log "stopping system service process $pid ($pidfile)"
        as_root kill "$pid" || true ;;
    esac
  done
}

install_packages
unpack_upstream_luajit
mount_tracefs
stop_services
log "done"
