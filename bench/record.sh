#!/usr/bin/env bash
# What one sample of `luaspy record` costs in the kernel: the BPF program's
# run time per invocation, from the kernel's BPF statistics
# (kernel.bpf_stats_enabled=1, bpftool prog show: run_time_ns / run_cnt),
# on a shallow stack (the seed loop, JIT on), a 1200-deep one (the
# interpreter, tests/targets/deep.lua: one call site) and a 1200-deep one
# through three functions calling each other in turn (three call sites:
# what a walker remembering only the last call instruction pays for).
#
#   bench/record.sh [SECONDS]        (root; LUASPY=path, default ./luaspy)
#
# run_cnt counts every cpu-clock tick on every CPU, also those of other
# processes, which the program drops after one map lookup; the per-sample
# cost of a walk is therefore given for the target's samples:
# run_time_ns / samples recorded (an upper bound).
#
# Also luaspy's own cost per sample once attached: its CPU time
# (/proc/PID/schedstat, ns) and its voluntary context switches (wakeups)
# while sampling, divided by the samples.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
LUASPY=${LUASPY:-$root/luaspy}
secs=${1:-5}
hz=999
tmp=$(mktemp -d /tmp/luaspy-bench.XXXXXX)
pids=()
old_stats=$(sysctl -n kernel.bpf_stats_enabled)

cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  sysctl -q -w kernel.bpf_stats_enabled="$old_stats" || true
  rm -rf "$tmp"
}
trap cleanup EXIT

cat >"$tmp/seed.lua" <<'LUA'
local function heavy(n) local s = 0 for i = 1, n do s = s + i end return s end
local function foo() return heavy(1e6) + heavy(1e6) end
local function bar() local r = heavy(1e6) return r end
local t = 0
while true do t = t + foo() + bar() end
LUA
cat >"$tmp/deep.lua" <<'LUA'
jit.off()
local function rec(n) if n > 0 then rec(n - 1) else while true do end end end
rec(1200)
LUA
cat >"$tmp/mixed.lua" <<'LUA'
jit.off()
local a, b, c
function a(n) if n > 0 then b(n - 1) else while true do end end end
function b(n) c(n - 1) end
function c(n) a(n - 1) end
a(1200)
LUA

# prog_id PID: the id of luaspy_sample as loaded by the luaspy process PID
# (from its file descriptors: other luaspy runs on the machine have their own)
prog_id() {
  local id
  for id in $(cat /proc/"$1"/fdinfo/* 2>/dev/null | awk '/^prog_id:/ {print $2}' | sort -u); do
    bpftool prog show id "$id" 2>/dev/null | grep -q ' name luaspy_sample ' && { echo "$id"; return; }
  done
  # None yet (libbpf's feature probes load first): no error under set -e.
  return 0
}

# prog_stats ID: "RUN_TIME_NS RUN_CNT" of a BPF program.
prog_stats() {
  bpftool prog show id "$1" | awk '{for (i = 1; i < NF; i++) {
    if ($i == "run_time_ns") t = $(i + 1); if ($i == "run_cnt") c = $(i + 1) }}
    END {print t + 0, c + 0}'
}

bench() {
  local name=$1 script=$2 pid lp id stats samples cpu0 cpu1 cs0 cs1
  luajit "$script" &
  pid=$!
  pids+=("$pid")
  sleep 0.5
  "$LUASPY" record -p "$pid" -F "$hz" -o "$tmp/$name.folded" 2>"$tmp/$name.err" &
  lp=$!
  id=""
  for _ in $(seq 100); do
    id=$(prog_id "$lp")
    [ -n "$id" ] && break
    sleep 0.1
  done
  [ -n "$id" ] || { echo "bench: the BPF program did not load: $(cat "$tmp/$name.err")" >&2; exit 1; }
  cpu0=$(cut -d' ' -f1 /proc/"$lp"/schedstat)
  cs0=$(awk '/^voluntary_ctxt_switches/ {print $2}' /proc/"$lp"/status)
  sleep "$secs"
  stats=$(prog_stats "$id") # just before the end: the same samples
  cpu1=$(cut -d' ' -f1 /proc/"$lp"/schedstat)
  cs1=$(awk '/^voluntary_ctxt_switches/ {print $2}' /proc/"$lp"/status)
  kill -INT "$lp"
  wait "$lp"
  kill "$pid"
  samples=$(sed -n 's/^luaspy: \([0-9]*\) samples.*/\1/p' "$tmp/$name.err")
  local depth
  depth=$(awk -F';' '{if (NF > m) m = NF} END {print m}' "$tmp/$name.folded")
  set -- $stats
  awk -v n="$name" -v t="$1" -v c="$2" -v s="${samples:-0}" -v d="$depth" \
    -v u=$((cpu1 - cpu0)) -v w=$((cs1 - cs0)) \
    'BEGIN {printf "%-8s depth %4d  %6d runs  %8.0f ns/run  %6d samples  %8.0f ns/sample  luaspy %6.0f ns/sample %5.2f wakeups/sample\n",
            n, d, c, c ? t / c : 0, s, s ? t / s : 0, s ? u / s : 0, s ? w / s : 0}'
}

sysctl -q -w kernel.bpf_stats_enabled=1
echo "luaspy record -F $hz, ${secs}s per target, $(nproc) CPUs"
bench shallow "$tmp/seed.lua"
bench deep "$tmp/deep.lua"
bench mixed "$tmp/mixed.lua"
