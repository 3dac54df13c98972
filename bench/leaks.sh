#!/usr/bin/env bash
# The leak hunt's cost, side by side in one run (issue #5): nginx + lua
# (1 worker) running bench/targets/seed_alloc.lua (33 x 500
# `table.insert(t, {i = i})` per request, ~17,000 allocations, plus one
# leaked id) under wrk -t1 -c1, three ways:
#   plain      no tracing
#   leaks      `luaspy leaks` (its default budget, --overhead 1) for the
#              whole phase, attached before it starts
#   leaksPCT   the same with --overhead PCT (LEAKS_OVERHEAD, default 10)
#   uprobes    uprobe + uretprobe on the same allocator (the address
#              `luaspy leaks --json` reports, made in tracefs), counted by
#              perf stat: what bpftrace-style tracing of every allocation
#              costs (bpftrace 0.17 cannot probe a stripped address)
# Prints per phase the mean request latency (one connection: 1000 / req/s),
# wrk's p50, p99 and max, requests/s, the slowdown against plain (req/s
# plain over req/s in the phase), and the site `leaks` names (the leak is
# line 15). The leak is 1 allocation in ~17,000: `leaks` needs ~17,000
# samples per leak sample, which is what its overhead budget buys per
# second.
#
#   bench/leaks.sh [SECONDS]    seconds per phase (default 10)
#                               LUASPY=path (default ./luaspy)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export ROOT
LUASPY=${LUASPY:-$ROOT/luaspy}
SECS=${1:-10}
PCT=${LEAKS_OVERHEAD:-10}
TARGETS_TMP=$(mktemp -d /tmp/luaspy-leaks.XXXXXX)
export TARGETS_TMP
. "$ROOT/tests/lib/targets.sh"
trap 'stop_all; rm -rf "$TARGETS_TMP"' EXIT
trap 'exit 130' INT TERM

[ -x "$LUASPY" ] || { echo "bench: $LUASPY missing (make)" >&2; exit 1; }
cp "$LUASPY" "$TARGETS_TMP/luaspy"
LUASPY=$TARGETS_TMP/luaspy

# latency_ms WRKOUT: wrk's latency percentiles p50, p99 and its max, in
# ms; rps WRKOUT: requests per second (with one connection, the mean
# latency is 1000 / rps ms).
latency_ms() {
  awk 'function ms(v) { if (v ~ /us$/) { sub(/us/, "", v); return v / 1000 }
      if (v ~ /ms$/) { sub(/ms/, "", v); return v }
      if (v ~ /m$/) { sub(/m/, "", v); return v * 60000 }
      sub(/s/, "", v); return v * 1000 }
    $1 == "Latency" && $2 ~ /[0-9]/ { max = ms($4) }
    $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) }
    END { printf "%8.2f %8.2f %9.2f", p50, p99, max }' "$1"
}
# attached: a luaspy_alloc program is loaded (luaspy is past its start-up,
# whose CPU would otherwise count as overhead on this small machine).
attached() { bpftool prog show 2>/dev/null | grep -q ' name luaspy_alloc_'; }
rps() { awk '/^Requests\/sec:/ {print $2}' "$1"; }
# fresh: a new nginx for each phase (the leak makes every GC cycle longer
# as it grows, so a later phase would be slower anyway), warmed up (the
# JIT compiles); sets w and url.
fresh() {
  stop_all
  w=$(start_nginx "$ROOT/bench/targets/seed_alloc.lua" 1) || { echo "bench: nginx did not start" >&2; exit 1; }
  url="http://127.0.0.1:$(target_port "$w")/t"
  wrk -t1 -c1 -d2s "$url" >/dev/null 2>&1
}
phase() { wrk -t1 -c1 -d"${SECS}s" --latency "$url" >"$TARGETS_TMP/$1.wrk" 2>&1; }

fresh
phase plain
# leaks_phase NAME PCT: a phase under `luaspy leaks --overhead PCT`.
leaks_phase() {
  fresh
  "$LUASPY" leaks -p "$w" --overhead "$2" --json >"$TARGETS_TMP/$1.json" 2>"$TARGETS_TMP/$1.err" &
  lp=$!
  for _ in $(seq 300); do attached && break; sleep 0.1; done
  phase "$1"
  kill -INT "$lp" 2>/dev/null || true
  if ! wait "$lp"; then echo "bench: luaspy leaks failed: $(head -c 300 "$TARGETS_TMP/$1.err")" >&2; exit 1; fi
  for _ in $(seq 50); do attached || break; sleep 0.1; done
}
leaks_phase leaks 1
leaks_phase "leaks$PCT" "$PCT"
# The allocator's file as the target sees it (no /proc/PID/root prefix).
obj=$(jq -r .allocator.object "$TARGETS_TMP/leaks.json" | sed 's|^/proc/[0-9]*/root||')
off=$(printf '0x%x' "$(jq -r .allocator.offset "$TARGETS_TMP/leaks.json")")
# bpftrace 0.17 cannot probe an address outside any symbol (the stripped
# allocator) nor attach to a tracefs uprobe: the same two probes are made
# in tracefs and counted by perf stat, trap for trap the same cost.
fresh
ev=/sys/kernel/tracing/uprobe_events
echo "p:uprobes/luaspy_bench_alloc $obj:$off" >>"$ev"
echo "r:uprobes/luaspy_bench_allocr $obj:$off" >>"$ev"
trap 'echo "-:uprobes/luaspy_bench_alloc" >>"$ev"; echo "-:uprobes/luaspy_bench_allocr" >>"$ev"; stop_all; rm -rf "$TARGETS_TMP"' EXIT
perf stat -x, -e uprobes:luaspy_bench_alloc,uprobes:luaspy_bench_allocr -p "$w" \
  -o "$TARGETS_TMP/bt.out" &
bp=$!
sleep 1
phase uprobes
kill -INT "$bp" 2>/dev/null || true
wait "$bp" 2>/dev/null || true

base=$(rps "$TARGETS_TMP/plain.wrk")
echo "nginx+lua, bench/targets/seed_alloc.lua, wrk -t1 -c1, ${SECS}s per phase, $(nproc) CPUs, $(uname -r)"
printf '%-10s %10s %8s %8s %9s %10s %9s\n' phase "mean ms" "p50 ms" "p99 ms" \
  "max ms" "req/s" slowdown
for p in plain leaks "leaks$PCT" uprobes; do
  [ -s "$TARGETS_TMP/$p.wrk" ] || continue
  r=$(rps "$TARGETS_TMP/$p.wrk")
  printf '%-10s %10.2f %s %10s %8.2fx\n' "$p" \
    "$(awk -v r="$r" 'BEGIN { print (r > 0 ? 1000 / r : 0) }')" \
    "$(latency_ms "$TARGETS_TMP/$p.wrk")" "$r" \
    "$(awk -v r="$r" -v b="$base" 'BEGIN { print (r > 0 ? b / r : 0) }')"
done
for p in leaks "leaks$PCT"; do
  jq -r --arg p "$p" '"\($p): \(.windows) windows, probes on \(.probed_seconds * 1000 | floor) ms of \(.seconds | floor) s, \(.sampled_allocations) allocations sampled; top site \(.sites[0].site // "none") (\(.sites[0].alive_objects // 0) alive samples)"' "$TARGETS_TMP/$p.json"
done
echo "uprobes: $(grep luaspy_bench "$TARGETS_TMP/bt.out" | cut -d, -f1,3 | tr '\n' ' ')"
