#!/usr/bin/env bash
# `luaspy top`: the live view, driven in a tmux pane of a fixed size
# (send-keys / capture-pane) against a real target: heavy, foo and bar
# shown with their shares, sort keys, q and Ctrl-C leaving the terminal
# as it was, the target exiting, plain tables when piped, and bad input.
#
# The target is record's seed experiment, interpreted: heavy() sums 1..N
# (the leaf, most of the self time); foo() calls it twice, bar() once; and
# a function whose chunk name holds terminal escapes.
set -u
. "$(dirname "$0")/lib/harness.sh"

command -v tmux >/dev/null || { echo "skip top: tmux missing (run scripts/deps.sh)"; exit 0; }

SEED=$TARGETS_TMP/top.lua
SUM_LINE=5 # the line of `sum = sum + i` below
cat >"$SEED" <<'LUA'
local ready = require "ready"
jit.off()
local function heavy(n)
  local sum = 0
  for i = 1, n do sum = sum + i end
  return sum
end
local function foo() return heavy(1e5) + heavy(1e5) end
local function bar() local r = heavy(1e5) return r end
-- Terminal escapes in a chunk name: top must show them as text.
local evil = load("return function(n) local s = 0 for i = 1, n do s = s + i end return s end", "=\027]0;pwned\007\027[2J")()
local t = 0
ready() while true do t = t + foo() t = t + bar() + evil(5e4) end
LUA

# A function row: "SELF% TOTAL% SELF TOTAL NAME (top.lua:LINE)".
ROW='^ *[0-9.]+% +[0-9.]+% +[0-9]+ +[0-9]+  '
HEAVY="${ROW}heavy \\([^)]*top\\.lua:3\\)"
FOO="${ROW}foo \\([^)]*top\\.lua:8\\)"
BAR="${ROW}bar \\([^)]*top\\.lua:9\\)"

# One tmux server per case, on its own socket: nothing else sees it.
TMUX_SOCK=luaspy-top-$$-$RANDOM
tm() { tmux -L "$TMUX_SOCK" "$@"; }
pane() { tm capture-pane -p -t top; }
# pane_has ERE: the pane shows a line matching it.
pane_has() { pane | grep -Eq -- "$1"; }
# wait_pane ERE [SECONDS]: until the pane shows it, or fail with the pane.
wait_pane() {
  local out=$TARGETS_TMP/pane.$BASHPID
  wait_for "${2:-30}" pane_has "$1" && return 0
  pane >"$out"
  case_log "$out"
  fail "the pane never showed /$1/: $(grep -v '^$' "$out" | head -c 400 | tr '\n' '|')"
}

# start_pane COLS ROWS COMMAND: a shell in a detached session that runs
# COMMAND and then says how it exited and whether the terminal settings
# are back as they were ("TTY-RESTORED").
start_pane() {
  local cols=$1 rows=$2 cmd=$3
  trap 'tm kill-server 2>/dev/null' EXIT
  tm new-session -d -s top -x "$cols" -y "$rows" "env -i PATH=$PATH TERM=xterm bash --norc --noprofile" ||
    fail "tmux did not start"
  tm send-keys -t top "clear; PS1='$ '; S0=\$(stty -g); $cmd; echo TOP-EXIT=\$?; [ \"\$(stty -g)\" = \"\$S0\" ] && echo TTY-RESTORED" Enter
}

# Line number (in the pane) of the first row matching ERE, 0 if none.
row_of() { pane | grep -En -- "$1" | head -n 1 | cut -d: -f1; }

# wait_exit: top ended with status 0 and the terminal was restored: the
# alternate screen is gone (no help line) and stty settings are the same.
wait_exit() {
  wait_pane "^TOP-EXIT=[0-9]+$" 20
  pane_has '^TOP-EXIT=0$' || fail "top exited $(pane | grep -o 'TOP-EXIT=[0-9]*'): $(pane | grep -v '^$' | head -c 300 | tr '\n' '|')"
  wait_pane '^TTY-RESTORED$' 5
  ! pane_has 'q quit' || fail "the picture is still on the screen after exit"
}

# The pane's function rows in an order: a capture may catch a picture
# half drawn, so the checks are retried (expect_pane).
self_order() { [ "$(row_of "$ROW")" = "$(row_of "$HEAVY")" ]; }
name_order() {
  local b f h
  b=$(row_of "$BAR") f=$(row_of "$FOO") h=$(row_of "$HEAVY")
  [ "$b" -gt 0 ] && [ "$b" -lt "$f" ] && [ "$f" -lt "$h" ]
}
total_order() {
  local f b
  f=$(row_of "$FOO") b=$(row_of "$BAR")
  [ "$f" -gt 0 ] && [ "$f" -lt "$b" ] &&
    pane | grep -E -- "$ROW" | awk '{sub("%", "", $2); if (NR > 1 && $2 + 0 > last + 0) bad = 1; last = $2} END {exit bad}'
}
# expect_pane FUNC WHAT: FUNC holds within 5 s, or fail with the pane.
expect_pane() {
  wait_for 5 "$1" && return 0
  fail "$2: $(pane | grep -v '^$' | head -c 600 | tr '\n' '|')"
}

top_keys() {
  local pid
  pid=$(start_luajit openresty "$SEED") || fail "target did not start"
  start_pane 120 30 "$LUASPY top -p $pid -i 0.5"
  wait_pane "$BAR"
  wait_pane "$HEAVY" 5
  wait_pane "$FOO" 5
  wait_pane "^luaspy top - pid $pid - 99 Hz - last 0\\.[0-9] s - sorted by self" 5
  wait_pane '^VM: interp [0-9.]+%  JIT' 5
  wait_pane '^s self  t total  n name  c since start  q quit' 5
  wait_pane "${ROW}evil \\(\\?]0;pwned\\?\\?\\[2J:1\\)" 5
  [ "$(tm display-message -p -t top '#{pane_title}')" != pwned ] || fail "a chunk name set the terminal's title"
  # By self, heavy (nearly all self time) comes first.
  expect_pane self_order "sorted by self, heavy is not the first row"
  tm send-keys -t top n
  wait_pane 'sorted by name' 5
  expect_pane name_order "sorted by name, not bar, foo, heavy"
  tm send-keys -t top t
  wait_pane 'sorted by total' 5
  expect_pane total_order "sorted by total, TOTAL% goes up or bar is above foo"
  tm send-keys -t top c
  wait_pane 'since start, [0-9.]+ s' 5
  # A smaller terminal: drawn again to its size, help on the last line.
  tm resize-window -t top -x 70 -y 12
  wait_pane '^[ ]+[0-9.]+%.{20,}…$' 5
  [ "$(pane | sed 's/…/./g' | awk 'length > 70' | wc -l)" -eq 0 ] || fail "lines longer than the 70 columns"
  tm send-keys -t top q
  wait_exit
  expect_target_ok "$pid"
}

top_ctrl_c() {
  local pid
  pid=$(start_luajit openresty "$SEED") || fail "target did not start"
  start_pane 100 20 "$LUASPY top -p $pid -i 0.5 --lines"
  # --lines: heavy's row is the line running, the sum.
  wait_pane "${ROW}heavy \\([^)]*top\\.lua:$SUM_LINE\\)"
  tm send-keys -t top C-c
  wait_exit
}

top_target_exit() {
  # The target is killed: top says so and exits by itself.
  local pid
  pid=$(start_luajit openresty "$SEED") || fail "target did not start"
  start_pane 100 20 "$LUASPY top -p $pid -i 0.5"
  wait_pane "$HEAVY"
  kill "$pid"
  wait_pane "^luaspy: top: process $pid exited$" 20
  wait_exit
}

top_plain() {
  # Not a terminal: a plain table every interval, on stdout.
  local pid out=$TARGETS_TMP/batch.txt n foo bar
  pid=$(start_luajit openresty "$SEED") || fail "target did not start"
  run_luaspy "$out" "$out.err" top -p "$pid" -i 0.5 -d 1.6 -n 5
  case_log "$out"
  [ "$RC" -eq 0 ] || fail "top exited $RC: $(head -c 300 "$out.err" | tr '\n' '|')"
  [ ! -s "$out.err" ] || fail "stderr: $(head -c 300 "$out.err" | tr '\n' '|')"
  ! grep -q $'\033' "$out" || fail "escape sequences in plain output"
  n=$(grep -c "^luaspy top - pid $pid - 99 Hz - last [0-9.]* s - sorted by self" "$out")
  [ "$n" -ge 2 ] || fail "$n tables, expected at least 2"
  [ "$(grep -c '^  SELF%  TOTAL%     SELF    TOTAL  FUNCTION$' "$out")" -eq "$n" ] || fail "a table without its column header"
  grep -Eq "$HEAVY" "$out" || fail "no heavy row: $(head -c 300 "$out")"
  awk -v re="$ROW" '$0 ~ re {r++} /^$/ {if (r > 5) bad = 1; r = 0} END {exit bad}' "$out" || fail "more than 5 rows with -n 5"
  # --once: one table of the whole run, here sorted by total.
  out=$TARGETS_TMP/once.txt
  run_luaspy "$out" "$out.err" top -p "$pid" --once -i 1 -s total -F 999
  case_log "$out"
  [ "$RC" -eq 0 ] || fail "top exited $RC: $(head -c 300 "$out.err" | tr '\n' '|')"
  [ "$(grep -c '^luaspy top - ' "$out")" -eq 1 ] || fail "not one table: $(head -c 300 "$out")"
  grep -q 'since start, [0-9.]* s - sorted by total' "$out" || fail "header: $(head -n 1 "$out")"
  grep -Eq "$HEAVY" "$out" && grep -Eq "$FOO" "$out" && grep -Eq "$BAR" "$out" ||
    fail "heavy, foo or bar missing: $(head -c 400 "$out" | tr '\n' '|')"
  foo=$(grep -E "$FOO" "$out" | awk '{print $4}')
  bar=$(grep -E "$BAR" "$out" | awk '{print $4}')
  [ "$foo" -gt "$bar" ] || fail "foo has $foo samples, bar $bar: foo calls heavy twice as often"
  grep -Eq "${ROW}evil \\(\\?]0;pwned\\?\\?\\[2J:1\\)$" "$out" || fail "no evil row with its escapes as '?'"
}

top_bad_input() {
  local out=$TARGETS_TMP/bad args pid
  pid=$(start_luajit openresty "$SEED") || fail "target did not start"
  # usage errors: exit 2
  for args in "" "-p $pid -i 0.01" "-p $pid -n 0" "-p $pid -s bogus" "-p $pid extra"; do
    # shellcheck disable=SC2086  # word splitting on purpose
    run_luaspy "$out" "$out.err" top $args
    expect_clean_error "$out" "$out.err"
    [ "$RC" -eq 2 ] || fail "top $args: exit $RC, expected 2"
  done
  # runtime errors: exit 1
  for args in "-p 999999999" "-p $$"; do
    # shellcheck disable=SC2086
    run_luaspy "$out" "$out.err" top $args
    expect_clean_error "$out" "$out.err"
    [ "$RC" -eq 1 ] || fail "top $args: exit $RC, expected 1"
  done
  expect_target_ok "$pid"
}

case_run top_keys top_keys
case_run top_ctrl_c top_ctrl_c
case_run top_target_exit top_target_exit
case_run top_plain top_plain
case_run top_bad_input top_bad_input
