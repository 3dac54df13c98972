#!/usr/bin/env bash
# Soak: luaspy attaching and detaching again and again from servers under
# steady load must be invisible to their clients. Under wrk (one thread,
# four connections, 127.0.0.1 only) against nginx + lua (2 workers) and
# traffic_server + tslua, each case runs one luaspy command N times (N in
# the case name) and then checks:
#   - wrk saw no socket error and no non-2xx response, and got answers;
#   - the same worker processes serve (none crashed and was restarted);
#   - the response body is what it was before;
#   - nothing is left behind: no luaspy_ BPF program or link, no uprobe;
#   - luaspy's own max RSS is flat: the last 5 runs are not above the
#     first 5 (plus slack), so nothing grows with the target's attach count.
# About 3 minutes in all.
set -u
. "$(dirname "$0")/lib/harness.sh"

SOAK_DUMPS=${SOAK_DUMPS:-50}
SOAK_RECORDS=${SOAK_RECORDS:-10}
SOAK_HEAPS=${SOAK_HEAPS:-10}

# luaspy_ BPF programs no process holds (by a program or link fd): what a
# luaspy that exited left behind (pinned, or a leaked link). Programs of
# other luaspy runs on a shared machine are held by those and don't count.
orphan_progs() {
  local held
  held=$(grep -hs '^prog_id:' /proc/[0-9]*/fdinfo/* | awk '{print $2}' | sort -u)
  bpftool prog show -j 2>/dev/null |
    jq -r '.[] | select(.name | startswith("luaspy_")) | "\(.id) \(.name)"' |
    while read -r id name; do
      grep -qx "$id" <<<"$held" || echo "$id:$name"
    done
}

# What the runs left behind, nothing if clean. An exiting program's BPF
# objects are freed asynchronously: look twice, a second apart.
leftovers() {
  local a b ev=/sys/kernel/tracing/uprobe_events
  [ -r $ev ] || mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null
  a=$(orphan_progs)
  [ -z "$a" ] && [ ! -s $ev ] && return
  sleep 1
  b=$(orphan_progs)
  a=$(comm -12 <(tr ' ' '\n' <<<"$a" | sort) <(tr ' ' '\n' <<<"$b" | sort) | paste -sd ' ')
  [ -z "$a" ] || echo "BPF programs left, held by no process: $a"
  [ ! -s $ev ] || echo "uprobes left: $(head -n 2 $ev | tr '\n' ' ')"
}

_gone() { ! kill -0 "$1" 2>/dev/null || [ "$(proc_state "$1")" = Z ]; }

# Start time of a process (field 22 of /proc/PID/stat): same PID and same
# start time means the same process.
started() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null; }

# soak TARGET CMD N: see the header. TARGET nginx or ats; CMD dump,
# record or heap.
soak() {
  local target=$1 cmd=$2 n=$3 pids port path body0 body1 wrkpid i
  local wrkout rss=$TARGETS_TMP/rss.$cmd err=$TARGETS_TMP/soak.$cmd.err
  case $target in
    nginx) pids=$(start_nginx "" 2) || fail "nginx did not start"; path=/t ;;
    ats) pids=$(start_ats) || fail "traffic_server did not start"; path=/ ;;
  esac
  local -a workers=($pids) starts=()
  for i in "${workers[@]}"; do starts+=("$(started "$i")"); done
  port=$(target_port "${workers[0]}")
  body0=$(http_get "${workers[0]}" "$path") || fail "no answer before the soak"
  # wrk as a target of this case: stopped with it, whatever happens
  local wrkdir
  wrkdir=$(new_target_dir wrk)
  wrkpid=$(spawn "$wrkdir" wrk -t1 -c4 -d600s "http://127.0.0.1:$port$path")
  wrkout=$wrkdir/out.log
  sleep 1
  : >"$rss"
  for ((i = 0; i < n; i++)); do
    local p=${workers[i % ${#workers[@]}]} all
    all=$(IFS=,; echo "${workers[*]}")
    RC=0
    case $cmd in
      dump) timeout -k 5 60 /usr/bin/time -a -o "$rss" -f %M "$LUASPY" dump -p "$p" >/dev/null 2>"$err" || RC=$? ;;
      record) timeout -k 5 60 /usr/bin/time -a -o "$rss" -f %M "$LUASPY" record -F 999 -p "$all" -d 0.2 -o "$TARGETS_TMP/soak.folded" >/dev/null 2>"$err" || RC=$? ;;
      heap) timeout -k 5 60 /usr/bin/time -a -o "$rss" -f %M "$LUASPY" heap -p "$p" >/dev/null 2>"$err" || RC=$? ;;
    esac
    if [ "$RC" -ne 0 ]; then
      case_log "$err"
      fail "$cmd #$((i + 1)) exited $RC: $(head -c 300 "$err" | tr '\n' '|')"
    fi
  done
  kill -INT "$wrkpid" # wrk prints its summary on SIGINT
  wait_for 10 _gone "$wrkpid" || fail "wrk did not stop"
  case_log "$wrkout"
  case_log "$rss"
  grep -q 'requests in' "$wrkout" || fail "wrk printed no result: $(head -c 200 "$wrkout")"
  ! grep -q 'Non-2xx' "$wrkout" || fail "wrk: $(grep 'Non-2xx' "$wrkout")"
  ! grep -q 'Socket errors' "$wrkout" || fail "wrk: $(grep 'Socket errors' "$wrkout")"
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
  local left
  left=$(leftovers)
  [ -z "$left" ] || fail "$left"
  # max RSS in KiB: mean of the last 5 within 10% + 4 MiB of the first 5
  local verdict
  verdict=$(awk '/^[0-9]+$/ { v[n++] = $1 } END {
      if (n < 10) { print "only " n " RSS values"; exit }
      for (i = 0; i < 5; i++) { a += v[i]; b += v[n - 5 + i] }
      a /= 5; b /= 5
      if (b > a * 1.1 + 4096) printf "max RSS grew: first 5 %.0f KiB, last 5 %.0f KiB\n", a, b
      else printf "ok %.0f %.0f\n", a, b }' "$rss")
  case $verdict in
    ok*) echo "$target $cmd x$n: max RSS first 5 / last 5 (KiB): ${verdict#ok }; $(grep -E 'requests in|Requests/sec' "$wrkout" | tr -s ' ' | tr '\n' ' ')" >&2 ;;
    *) fail "$verdict" ;;
  esac
}

for target in nginx ats; do
  case_run "soak: $target under wrk: $SOAK_DUMPS dumps, clients unaffected" soak "$target" dump "$SOAK_DUMPS"
  case_run "soak: $target under wrk: $SOAK_RECORDS records (-d 0.2), clients unaffected" soak "$target" record "$SOAK_RECORDS"
  case_run "soak: $target under wrk: $SOAK_HEAPS heap snapshots, clients unaffected" soak "$target" heap "$SOAK_HEAPS"
done
