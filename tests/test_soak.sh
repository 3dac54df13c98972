#!/usr/bin/env bash
# Soak (issue #9): luaspy attaching and detaching again and again from
# servers under steady load must be invisible to their clients and leave
# nothing behind. Under wrk (one thread, four connections, 127.0.0.1 only)
# against nginx + lua (2 workers; tests/targets/nginx/soak.lua gives every
# request Lua CPU time, JIT traces and garbage) and traffic_server +
# tslua, each case runs one luaspy command N times in a row, the workers in
# turn: every command that attaches to a process, in short runs.
#   dump, heap                              one snapshot
#   record, top --once (all workers)        -F 999 -d 0.1
#   alloc, jit, offcpu, syscalls            -d 0.1
#   leaks                                   -d 0.2 --grace 0.1, and its
#                                           0.5 s between two heap walks
# Every run must exit 0; alloc and leaks must open a probe window (attach
# a uprobe) in every run, and each command must see the target work
# (samples, allocations, waits, syscalls...) in at least half its runs.
# Then:
#   - wrk saw no socket error and no non-2xx response, and got answers;
#   - the same worker processes serve (none crashed and was restarted);
#   - the response body is what it was before;
#   - alloc, leaks: the workers' code is still byte for byte the files
#     they map, as before the soak (an uprobe's int3 left in place would
#     show; no other command writes there);
#   - nothing is left behind: no luaspy_ BPF program or link held by no
#     process, nothing in uprobe_events, no uprobe perf event of a luaspy_
#     program held by a process other than luaspy;
#   - luaspy's own max RSS is flat: the smallest of the last 10 runs is
#     not above that of the first 10 (plus slack): nothing grows with the
#     number of times the target was attached.
#
# N is SOAK_N (default 50) on nginx and SOAK_N_ATS (default 50) on
# traffic_server; SOAK_CMDS limits the commands. Runs are short because
# most of a run is start-up and detaching (BPF verification, VM discovery,
# synchronous tracepoint and uprobe removal): with the ASan build and the
# load on the same 2 CPUs, a run takes 0.1 s (dump) to 0.6-0.9 s (jit,
# offcpu, syscalls) and 1-1.2 s (leaks): 50 of each on both targets take
# about 8 minutes.
# The log has the time, RSS and wrk's figures of each case.
set -u
. "$(dirname "$0")/lib/harness.sh"

SOAK_N=${SOAK_N:-50}
SOAK_N_ATS=${SOAK_N_ATS:-50}
SOAK_CMDS=${SOAK_CMDS:-dump heap record top alloc leaks jit offcpu syscalls}

# soak_args CMD PID ALL OUT: the arguments of one run of CMD against worker
# PID (ALL: every worker, comma-separated), in SOAK_ARGS. OUT: a file name
# prefix for the outputs.
soak_args() {
  local cmd=$1 p=$2 all=$3 out=$4
  case $cmd in
    dump) SOAK_ARGS=(dump -p "$p") ;;
    heap) SOAK_ARGS=(heap -p "$p") ;;
    record) SOAK_ARGS=(record -F 999 -p "$all" -d 0.1 -o "$out.folded") ;;
    top) SOAK_ARGS=(top -F 999 -p "$all" --once -d 0.1) ;;
    alloc) SOAK_ARGS=(alloc -p "$p" -d 0.1 -o "$out.folded") ;;
    leaks) SOAK_ARGS=(leaks -p "$p" -d 0.2 --grace 0.1 --json) ;;
    jit) SOAK_ARGS=(jit -p "$p" -d 0.1 --json) ;;
    offcpu) SOAK_ARGS=(offcpu -p "$p" -d 0.1 -o "$out.folded") ;;
    syscalls) SOAK_ARGS=(syscalls -p "$p" -d 0.1 --json) ;;
    *) fail "no soak for command $cmd" ;;
  esac
}

# did_work CMD OUT ERR: 0 if the run saw the target work, 1 if not, 2 if
# alloc or leaks opened no probe window (never attached). Bash matching
# only: forks are slow here and this runs after every run.
did_work() {
  local cmd=$1 out="" err=""
  read -r -d '' out <"$2"
  read -r -d '' err <"$3"
  case $cmd in
    dump) [[ $out == *"VM 0x"* ]] ;;
    heap) [[ $out == *"GC total"* ]] ;;
    record) [[ $err =~ luaspy:\ ([0-9]+)\ samples ]] && ((BASH_REMATCH[1] > 0)) ;;
    top) [[ $out =~ samples\ ([0-9]+) ]] && ((BASH_REMATCH[1] > 0)) ;;
    alloc)
      [[ $err =~ in\ ([0-9]+)\ windows\;\ ([0-9]+)\ allocator\ calls ]] && ((BASH_REMATCH[1] > 0)) || return 2
      ((BASH_REMATCH[2] > 0)) ;;
    leaks)
      [[ $out =~ \"windows\":\ ([0-9]+) ]] && ((BASH_REMATCH[1] > 0)) || return 2
      [[ $out =~ \"sampled_allocations\":\ ([0-9]+) ]] && ((BASH_REMATCH[1] > 0)) ;;
    jit) [[ $out =~ \"looks\":\ ([0-9]+) ]] && ((BASH_REMATCH[1] > 0)) ;;
    offcpu) [[ $err =~ luaspy:\ ([0-9]+)\ waits ]] && ((BASH_REMATCH[1] > 0)) ;;
    syscalls) [[ $out =~ \"events\":\ ([0-9]+) ]] && ((BASH_REMATCH[1] > 0)) ;;
  esac
}

# ---- nothing left behind -------------------------------------------------------

# "ID NAME" of the loaded luaspy_ BPF programs.
luaspy_progs() {
  bpftool prog show -j 2>/dev/null |
    jq -r '.[] | select((.name // "") | startswith("luaspy_")) | "\(.id) \(.name)"'
}

# IDs of the BPF programs or links (KIND prog or link) that some process
# holds by an fd (a link's fd also names its program).
held_ids() { grep -hs "^$1_id:" /proc/[0-9]*/fdinfo/* | awk '{print $2}' | sort -u; }

# What luaspy runs that exited left behind, one line each: luaspy_
# programs and links no process holds (pinned, or leaked), uprobe perf
# events of luaspy_ programs held by another process than a luaspy (one
# running on a shared machine holds its own). Other luaspy runs' objects
# are held by those, and don't count.
orphans() {
  local progs held id name prog pid comm
  progs=$(luaspy_progs)
  [ -n "$progs" ] || return 0
  held=$(held_ids prog)
  while read -r id name; do
    grep -qx "$id" <<<"$held" || echo "BPF program $id $name held by no process"
  done <<<"$progs"
  held=$(held_ids link)
  bpftool link show -j 2>/dev/null | jq -r '.[] | "\(.id) \(.prog_id)"' |
    while read -r id prog; do
      name=$(awk -v p="$prog" '$1 == p { print $2 }' <<<"$progs")
      [ -z "$name" ] || grep -qx "$id" <<<"$held" || echo "BPF link $id of $name held by no process"
    done
  bpftool perf show -j 2>/dev/null |
    jq -r '.[] | select(.fd_type == "uprobe" or .fd_type == "uretprobe") | "\(.pid) \(.prog_id)"' |
    while read -r pid prog; do
      name=$(awk -v p="$prog" '$1 == p { print $2 }' <<<"$progs")
      comm=$(cat "/proc/$pid/comm" 2>/dev/null)
      [ -z "$name" ] || [ "$comm" = luaspy ] || echo "uprobe perf event of $name held by pid $pid ($comm)"
    done
}

# What the runs left behind, nothing if clean. An exiting program's BPF
# objects are freed asynchronously: what is still there a second later.
leftovers() {
  local a b ev=/sys/kernel/tracing/uprobe_events
  [ -r $ev ] || mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null
  a=$(orphans)
  if [ -n "$a" ] || [ -s $ev ]; then
    sleep 1
    b=$(orphans)
    comm -12 <(sort <<<"$a") <(sort <<<"$b") | sed '/^$/d' | head -n 3
    [ ! -s $ev ] || echo "uprobes left in $ev: $(head -n 2 $ev | tr '\n' ' ')"
  fi
}

# code_diffs PID: for each executable mapping of a file, "FILE@OFFSET N",
# N the bytes of PID's code that differ from the file's. A uprobe is an
# int3 written into the target's copy of the page while attached; the
# kernel writes the original byte back on detach.
code_diffs() {
  local pid=$1 range perms off path lo hi n
  while read -r range perms off _ _ path; do
    [[ $perms == r-xp && $path == /* ]] || continue
    lo=$((16#${range%-*})) hi=$((16#${range#*-}))
    n=$(cmp -l <(dd if="/proc/$pid/mem" bs=64K iflag=skip_bytes,count_bytes skip=$lo count=$((hi - lo)) 2>/dev/null) \
      <(dd if="/proc/$pid/map_files/$range" bs=64K iflag=skip_bytes,count_bytes skip=$((16#$off)) count=$((hi - lo)) 2>/dev/null) \
      2>/dev/null | wc -l)
    echo "$path@$off $n"
  done <"/proc/$pid/maps"
}

# The commands that attach uprobes to the target's code.
uprobes() { [ "$1" = alloc ] || [ "$1" = leaks ]; }

_gone() { ! kill -0 "$1" 2>/dev/null || [ "$(proc_state "$1")" = Z ]; }

# Start time of a process (field 22 of /proc/PID/stat): same PID and same
# start time means the same process.
started() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null; }

# rss_verdict FILE: "ok FIRST LAST" (KiB, the smallest of the first and
# of the last 10 max RSS values, or thirds when fewer than 30), or why not
# flat: LAST above FIRST by more than 10% + 4 MiB. The smallest, because
# a run's RSS follows how many events it got and, under ASan, how its
# allocator's pages fell (syscalls: 180 or 280 MB, one or the other):
# what grows with the attach count raises the floor. "few N" for fewer
# than 6 runs: nothing to judge.
rss_verdict() {
  awk '/^[0-9]+$/ { v[n++] = $1 }
    function low(lo, hi,   i, m) {
      m = v[lo]; for (i = lo + 1; i < hi; i++) if (v[i] < m) m = v[i]
      return m }
    END {
      if (n < 6) { print "few " n; exit }
      m = n >= 30 ? 10 : int(n / 3)
      a = low(0, m); b = low(n - m, n)
      if (b > a * 1.1 + 4096) printf "max RSS grew: the smallest of the first %d runs %.0f KiB, of the last %d %.0f KiB\n", m, a, m, b
      else printf "ok %.0f %.0f\n", a, b }' "$1"
}

# soak TARGET CMD N: see the header. TARGET nginx or ats.
soak() {
  local target=$1 cmd=$2 n=$3 pids port path body0 body1 wrkpid wrkdir i rc
  local out=$TARGETS_TMP/soak.$cmd rss=$TARGETS_TMP/soak.$cmd.rss worked=0 t0 took
  command -v wrk >/dev/null || skip "wrk missing"
  command -v bpftool >/dev/null || skip "bpftool missing"
  case $target in
    nginx) pids=$(start_nginx "$TARGETS_DIR/nginx/soak.lua" 2) || fail "nginx did not start"; path=/t ;;
    ats) pids=$(start_ats) || fail "traffic_server did not start"; path=/ ;;
  esac
  local -a workers starts=() code0=()
  local all
  read -r -a workers <<<"$pids"
  all=$(IFS=,; echo "${workers[*]}")
  for i in "${workers[@]}"; do
    starts+=("$(started "$i")")
    uprobes "$cmd" && code0+=("$(code_diffs "$i")")
  done
  port=$(target_port "${workers[0]}")
  body0=$(http_get "${workers[0]}" "$path") || fail "no answer before the soak"
  # wrk as a target of this case: stopped with it, whatever happens
  wrkdir=$(new_target_dir wrk)
  wrkpid=$(spawn "$wrkdir" wrk -t1 -c4 -d600s "http://127.0.0.1:$port$path")
  sleep 0.5
  : >"$rss"
  t0=$EPOCHREALTIME
  for ((i = 0; i < n; i++)); do
    soak_args "$cmd" "${workers[i % ${#workers[@]}]}" "$all" "$out"
    RC=0
    timeout -k 5 60 /usr/bin/time -a -o "$rss" -f %M "$LUASPY" "${SOAK_ARGS[@]}" >"$out.out" 2>"$out.err" || RC=$?
    if [ "$RC" -ne 0 ]; then
      case_log "$out.err"
      fail "$cmd #$((i + 1)) exited $RC: $(head -c 300 "$out.err" | tr '\n' '|')"
    fi
    rc=0
    did_work "$cmd" "$out.out" "$out.err" || rc=$?
    case $rc in
      0) worked=$((worked + 1)) ;;
      2) case_log "$out.out"; case_log "$out.err"
         fail "$cmd #$((i + 1)) opened no probe window: $(head -c 300 "$out.err" | tr '\n' '|')" ;;
    esac
  done
  took=$(awk -v a="$t0" -v b="$EPOCHREALTIME" -v n="$n" 'BEGIN { printf "%.0f s, %.2f s a run", b - a, (b - a) / n }')
  kill -INT "$wrkpid" # wrk prints its summary on SIGINT
  wait_for 10 _gone "$wrkpid" || fail "wrk did not stop"
  case_log "$wrkdir/out.log"
  case_log "$rss"
  grep -q 'requests in' "$wrkdir/out.log" || fail "wrk printed no result: $(head -c 200 "$wrkdir/out.log")"
  ! grep -q 'Non-2xx' "$wrkdir/out.log" || fail "wrk: $(grep 'Non-2xx' "$wrkdir/out.log")"
  ! grep -q 'Socket errors' "$wrkdir/out.log" || fail "wrk: $(grep 'Socket errors' "$wrkdir/out.log")"
  for i in "${!workers[@]}"; do
    [ "$(started "${workers[i]}")" = "${starts[i]}" ] || fail "worker ${workers[i]} is gone (crashed or restarted)"
    expect_target_ok "${workers[i]}"
  done
  if [ "$target" = nginx ]; then
    local now
    now=$(pgrep -P "$(ps -o ppid= -p "${workers[0]}" | tr -d ' ')" | sort -n | paste -sd ' ')
    [ "$now" = "$pids" ] || fail "workers changed: $pids -> $now"
  fi
  body1=$(http_get "${workers[0]}" "$path") || fail "no answer after the soak"
  [ "$body1" = "$body0" ] || fail "response changed: '$body0' -> '$body1'"
  for i in "${!code0[@]}"; do
    local code1
    code1=$(code_diffs "${workers[i]}")
    [ "$code1" = "${code0[i]}" ] ||
      fail "code of worker ${workers[i]} differs from its files: $(diff <(echo "${code0[i]}") <(echo "$code1") | grep '^>' | head -n 2 | tr '\n' ' ')"
  done
  local left
  left=$(leftovers)
  [ -z "$left" ] || fail "$(tr '\n' ' ' <<<"$left")"
  ((2 * worked >= n)) || { case_log "$out.out"; case_log "$out.err"; fail "$cmd saw the target work in $worked of $n runs only"; }
  local verdict
  verdict=$(rss_verdict "$rss")
  case $verdict in
    ok* | few*)
      [[ $verdict == ok* ]] && verdict="max RSS smallest first / last (KiB): ${verdict#ok }" || verdict="RSS not judged"
      echo "$target $cmd x$n: $took; worked in $worked; $verdict; $(grep -E 'requests in|Requests/sec' "$wrkdir/out.log" | tr -s ' ' | tr '\n' ' ')" >&2 ;;
    *) fail "$verdict" ;;
  esac
}

for target in nginx ats; do
  n=$SOAK_N
  [ "$target" = ats ] && n=$SOAK_N_ATS
  for cmd in $SOAK_CMDS; do
    case_run "soak: $target under wrk: $cmd x$n, clients unaffected, nothing left" soak "$target" "$cmd" "$n"
  done
done
