# Test-case helpers, sourced by every tests/test_*.sh (bash, set -u).
#
# Protocol with tests/run: a test file is run as its own bash process and
# prints one line per test case on stdout:
#     ok NAME
#     FAIL NAME: REASON
#     skip NAME: REASON
# Anything else it prints is kept in its log (build/test-logs/FILE.log)
# but not counted. A file that exits non-zero counts as one more failure.
#
#   case_run NAME FUNC [ARGS...]   run FUNC in a subshell as test case NAME;
#                                  targets it starts are stopped afterwards
#   fail REASON / skip REASON      end the current case (inside FUNC)
#   case_log FILE                  keep FILE in the logs, under the case name
#
# Sourcing this file also sources tests/lib/targets.sh and sets an EXIT
# trap that stops every target the file started.
#
# Target scripts (tests/targets/*.lua) state what a dump must show in
# header lines, read by expect_stack and selfcheck_stack:
#   -- expect: FRAME [xN]   one per frame, top-first: luaspy's frame string
#                           as a bash glob ("*" for names LuaJIT can't
#                           derive), chunk as a base name; xN repeats it
#   -- vmstate: STATE       the VM state while blocked/spinning there
#   -- coroutine: yes       the top frames run in a coroutine
#   -- process: blocked     sleeps in the kernel (else it spins)
#
# Environment:
#   LUASPY              binary under test (default: build/asan/luaspy if
#                       present, else ./luaspy)
#   LUASPY_TEST_FILTER  glob: run only the cases whose name matches
#   LUASPY_TEST_LOGS    where logs go (default build/test-logs)
# shellcheck shell=bash

ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
if [ -z "${LUASPY:-}" ]; then
  if [ -x "$ROOT/build/asan/luaspy" ]; then LUASPY=$ROOT/build/asan/luaspy; else LUASPY=$ROOT/luaspy; fi
fi
case $LUASPY in /*) ;; *) LUASPY=$PWD/$LUASPY ;; esac
export LUASPY
LUASPY_TEST_LOGS=${LUASPY_TEST_LOGS:-$ROOT/build/test-logs}
mkdir -p "$LUASPY_TEST_LOGS"

# shellcheck source=tests/lib/targets.sh
. "$ROOT/tests/lib/targets.sh"

# Stop every target on the way out, also when killed (tests/run's per-file
# timeout sends TERM; bash runs the EXIT trap only for trapped signals).
trap stop_all EXIT
trap 'exit 143' TERM
trap 'exit 130' INT HUP

_case_seq=0
_case_reason=/dev/stderr             # file the current case writes its reason to
_case_name=$(basename "$0" .sh)      # (outside cases: the file's name)

fail() { printf '%s\n' "$*" >"$_case_reason"; exit 1; }
skip() { printf '%s\n' "$*" >"$_case_reason"; exit 77; }

# Copy FILE into the logs as <case>.<basename>, for post-mortems.
case_log() {
  [ -e "$1" ] && cp "$1" "$LUASPY_TEST_LOGS/${_case_name//[^A-Za-z0-9_.-]/_}.$(basename "$1")" 2>/dev/null
  return 0
}

case_run() {
  local name=$1; shift
  if [ -n "${LUASPY_TEST_FILTER:-}" ]; then
    # shellcheck disable=SC2053  # glob match on purpose
    [[ $name == $LUASPY_TEST_FILTER ]] || return 0
  fi
  _case_seq=$((_case_seq + 1))
  local scope="case$$.$_case_seq" rc=0 reason
  _case_reason=$(mktemp "$TARGETS_TMP/reason.XXXXXX")
  (
    _case_name=$name
    TARGETS_SCOPE=$scope
    "$@"
  ) || rc=$?
  stop_scope "$scope"
  reason=$(head -n 3 "$_case_reason" | tr '\n' ' ' | sed 's/ *$//')
  rm -f "$_case_reason"
  case $rc in
    0) echo "ok $name" ;;
    77) echo "skip $name: ${reason:-skipped}" ;;
    *) echo "FAIL $name: ${reason:-exit status $rc}" ;;
  esac
  return 0
}

# ---- luaspy invocation -----------------------------------------------------

# run_luaspy OUT ERR ARGS...: run the binary under test with a time limit;
# sets RC. Exit statuses >= 124 mean timeout or a signal (a crash).
run_luaspy() {
  local out=$1 err=$2; shift 2
  RC=0
  timeout -k 5 60 "$LUASPY" "$@" >"$out" 2>"$err" || RC=$?
}

# A failure must be an exit status in 1..123 with exactly one stderr line,
# starting "luaspy: ". expect_clean_error OUT ERR (after run_luaspy).
expect_clean_error() {
  local err=$2 lines
  [ "$RC" -ne 0 ] || fail "exit status 0, expected an error (stdout: $(head -c 200 "$1"))"
  [ "$RC" -lt 124 ] || fail "exit status $RC (timeout or crash): $(head -n 2 "$err" | tr '\n' ' ')"
  lines=$(wc -l <"$err")
  [ "$lines" -eq 1 ] || fail "stderr has $lines lines, expected 1: $(head -c 300 "$err" | tr '\n' '|')"
  grep -q '^luaspy: ' "$err" || fail "stderr does not start with 'luaspy: ': $(head -c 200 "$err")"
}

# The target must still be alive, not stopped, not traced, not a zombie.
expect_target_ok() {
  local pid=$1 st tracer
  st=$(proc_state "$pid")
  [ -n "$st" ] || fail "target $pid is gone after luaspy"
  case $st in
    T|t) fail "target $pid left stopped (state $st)" ;;
    Z|X) fail "target $pid died (state $st)" ;;
  esac
  tracer=$(awk '/^TracerPid:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
  [ "${tracer:-0}" = 0 ] || fail "target $pid still traced by $tracer"
}

# ---- dump assertions ---------------------------------------------------------

# Shape of a dump (docs/dump-format.md), checked on every JSON dump: pairs
# of (what, jq condition), so a failure says which rule broke.
_JQ_SCHEMA=(
  "top-level pid/exe/vms"
  '(.pid | type == "number") and (.exe | type == "string") and (.vms | type == "array")'
  "VM address/flavor/gc64"
  'all(.vms[]; (.address | test("^0x[0-9a-f]+$")) and (.flavor | IN("openresty", "upstream", "head")) and (.gc64 | type == "boolean"))'
  "VM vmstate/trace"
  'all(.vms[]; (.vmstate | IN("interpreted", "c", "gc", "exit", "record", "optimize", "assemble", "trace")) and ((.vmstate == "trace") == (.trace | type == "number")))'
  "VM coroutine/main_thread"
  'all(.vms[]; (.coroutine | test("^0x[0-9a-f]+$")) and (.main_thread | test("^0x[0-9a-f]+$")))'
  "VM partial/partial_reason"
  'all(.vms[]; (.partial | type == "boolean") and (.partial_reason | type == "string" or type == "null") and (.partial or .partial_reason == null))'
  "frame fields kind/name/chunk/line/what/coroutine/frame"
  'all(.vms[].frames[]; (.kind | IN("lua", "trace", "c", "builtin", "vm")) and (.name | type == "string") and (.chunk | type == "string" or type == "null") and (.line | type == "number" or type == "null") and (.what | type == "string") and (.coroutine | test("^0x[0-9a-f]+$")) and (.frame | type == "string"))'
  "Lua frame string == \"NAME (CHUNK:LINE)\""
  'all(.vms[].frames[] | select(.kind == "lua" and .line != null); .frame == "\(.name) (\(.chunk):\(.line))")'
)

# dump_json PID OUT: one `luaspy dump -p PID --json`; fails the case unless
# it exits 0 with well-formed JSON for PID and leaves the target alone.
dump_json() {
  local pid=$1 out=$2
  run_luaspy "$out" "$out.err" dump -p "$pid" --json
  [ "$RC" -eq 0 ] || fail "dump -p $pid exited $RC: $(head -c 300 "$out.err" | tr '\n' '|')"
  # exactly one JSON object (jq -e alone accepts empty input)
  jq -s -e 'length == 1 and (.[0] | type == "object")' "$out" >/dev/null 2>&1 ||
    fail "dump -p $pid: output is not one JSON object: $(head -c 200 "$out")"
  jq -e --argjson pid "$pid" ".pid == \$pid" "$out" >/dev/null || fail "dump -p $pid: .pid is $(jq -c .pid "$out")"
  local i
  for ((i = 0; i < ${#_JQ_SCHEMA[@]}; i += 2)); do
    jq -e "${_JQ_SCHEMA[i + 1]}" "$out" >/dev/null ||
      { case_log "$out"; fail "dump -p $pid: JSON breaks docs/dump-format.md: ${_JQ_SCHEMA[i]}"; }
  done
  expect_target_ok "$pid"
}

# The "-- expect: FRAME" lines of a target script, top-first, with "xN"
# repetitions expanded. FRAMEs are bash glob patterns on luaspy's frame
# strings, chunk paths cut to their base name.
expected_frames() {
  local line pat n i
  while IFS= read -r line; do
    pat=${line#-- expect: }
    n=1
    if [[ $pat =~ ^(.*)\ x([0-9]+)$ ]]; then pat=${BASH_REMATCH[1]}; n=${BASH_REMATCH[2]}; fi
    for ((i = 0; i < n; i++)); do printf '%s\n' "$pat"; done
  done < <(grep '^-- expect: ' "$1")
}

# The "-- KEY: VALUE" header value of a target script (vmstate, coroutine).
script_header() { sed -n "s/^-- $2: //p" "$1" | head -n 1; }

# Frame strings of VM number VM in dump OUT, chunk paths cut to base names
# ("heavy (/a/b/test.lua:7)" -> "heavy (test.lua:7)"), without the C and
# VM frames below the last Lua frame (the host's C caller, e.g. lua_pcall).
actual_frames() {
  jq -r --argjson vm "${2:-0}" '
    .vms[$vm].frames
    | (map(.kind == "lua" or .kind == "trace" or .kind == "builtin") | rindex(true)) as $last
    | if $last == null then [] else .[0:$last + 1] end
    | .[].frame | sub("\\([^():]*/"; "(")' "$1"
}

# compare_frames EXPECTED_FILE ACTUAL_FILE: empty output if they match,
# else a one-line description of the first difference.
compare_frames() {
  local -a want got
  mapfile -t want <"$1"
  mapfile -t got <"$2"
  local i
  for ((i = 0; i < ${#want[@]} || i < ${#got[@]}; i++)); do
    if ((i >= ${#got[@]})); then echo "frame #$i missing, expected '${want[i]}' (got ${#got[@]} frames)"; return; fi
    if ((i >= ${#want[@]})); then echo "extra frame #$i '${got[i]}' (expected ${#want[@]} frames)"; return; fi
    # shellcheck disable=SC2053  # expected frames are glob patterns
    [[ ${got[i]} == ${want[i]} ]] || { echo "frame #$i is '${got[i]}', expected '${want[i]}'"; return; }
  done
}

# expect_stack PID SCRIPT [FLAVOR]: dump PID up to 5 times (a spinning
# target is sampled at a random moment) until one dump shows exactly the
# stack of SCRIPT's "-- expect:" header (and its "-- vmstate:"), with no
# partial stack. FLAVOR, if given, must be the VM's flavor. Fails with the
# last difference seen.
expect_stack() {
  local pid=$1 script=$2 flavor=${3:-} try out diff vmstate
  local exp=$TARGETS_TMP/expect.$$.$RANDOM
  expected_frames "$script" >"$exp"
  vmstate=$(script_header "$script" vmstate)
  for try in 1 2 3 4 5; do
    out=$TARGETS_TMP/dump.$$.$try.json
    dump_json "$pid" "$out"
    case_log "$out"
    diff=$(_check_stack "$out" "$exp" "$flavor" "$vmstate" "$(script_header "$script" coroutine)")
    [ -z "$diff" ] && return 0
    sleep 0.2
  done
  fail "$(basename "$script"): $diff (5 dumps)"
}

_check_stack() {
  local out=$1 exp=$2 flavor=$3 vmstate=$4 coroutine=$5 n act diff
  n=$(jq '.vms | length' "$out")
  [ "$n" -eq 1 ] || { echo "$n VMs found, expected 1"; return; }
  if [ -n "$flavor" ]; then
    [ "$(jq -r '.vms[0].flavor' "$out")" = "$flavor" ] || { echo "flavor $(jq -r '.vms[0].flavor' "$out"), expected $flavor"; return; }
  fi
  jq -e '.vms[0].partial == false' "$out" >/dev/null || { echo "partial stack: $(jq -r '.vms[0].partial_reason' "$out")"; return; }
  act=$out.frames
  actual_frames "$out" >"$act"
  diff=$(compare_frames "$exp" "$act")
  [ -z "$diff" ] || { echo "$diff"; return; }
  # Kinds follow from the frame strings; check them against the fields too.
  jq -e '.vms[0].frames | all(
           if (.frame | startswith("builtin:")) then .kind == "builtin"
           elif (.frame | test("^trace#[0-9]+ ")) then .kind == "trace"
           elif (.frame | startswith("C:")) then .kind == "c"
           elif (.frame | test("^\\[")) then .kind == "vm"
           else .kind == "lua" end)' "$out" >/dev/null || { echo "frame kinds do not match frame strings"; return; }
  if [ -n "$vmstate" ]; then
    [ "$(jq -r '.vms[0].vmstate' "$out")" = "$vmstate" ] || { echo "vmstate $(jq -r '.vms[0].vmstate' "$out"), expected $vmstate"; return; }
  fi
  if [ "$vmstate" = trace ]; then
    jq -e '.vms[0] as $v | $v.frames[0].frame | startswith("trace#\($v.trace) ")' "$out" >/dev/null ||
      { echo "top frame is not trace#N with N = the VM's trace number"; return; }
  fi
  if [ "$coroutine" = yes ]; then
    # Frames above builtin:coroutine.resume belong to the running coroutine,
    # the rest to the main thread.
    jq -e '.vms[0] as $v | ($v.coroutine != $v.main_thread)
           and ($v.frames | (map(.frame == "builtin:coroutine.resume") | index(true)) as $r
                | $r != null
                and all(.[0:$r][]; .coroutine == $v.coroutine)
                and all(.[$r:][]; .coroutine == $v.main_thread))' "$out" >/dev/null ||
      { echo "coroutine/main_thread fields do not split the stack at builtin:coroutine.resume"; return; }
  fi
}

# selfcheck_stack SCRIPT SIGNAL_FILE: compare SCRIPT's "-- expect:" header
# with the stack its ready() call wrote (LuaJIT's own view, debug.getinfo).
# That view can't see the frames above the ready() caller (the builtin or
# trace on top), so leading builtin/trace/C expectations are skipped;
# builtins and C frames further down show as "C:?". Prints the first
# difference, nothing if they agree.
selfcheck_stack() {
  local script=$1 signal=$2 e top=1
  local exp=$TARGETS_TMP/selfexp.$$.$RANDOM act=$TARGETS_TMP/selfact.$$.$RANDOM
  while IFS= read -r e; do
    case $e in
      builtin:* | C:* | trace#*) [ "$top" = 1 ] && continue; echo "C:?" ;;
      *) top=0; printf '%s\n' "$e" ;;
    esac
  done < <(expected_frames "$script") >"$exp"
  # without the host's C frames at the bottom (luajit's pmain)
  awk '{ l[NR] = $0 } END { n = NR; while (n > 0 && l[n] == "C:?") n--; for (i = 1; i <= n; i++) print l[i] }' \
    "$signal" >"$act"
  compare_frames "$exp" "$act"
  rm -f "$exp" "$act"
}
