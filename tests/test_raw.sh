#!/usr/bin/env bash
# Raw recordings (.luaspy, docs/raw-format.md) and timelines (issue #8):
#
#   - record the demo (heavy() called twice by foo, once by bar) into
#     run.luaspy; report turns it into folded stacks with foo's share of
#     foo+bar in 0.60..0.73 and as many samples as record counted, into a
#     pprof profile that `go tool pprof -top` reads, into a timeline;
#   - a target whose chunk is named "<script>..." recorded with
#     --timeline straight to HTML, and to a raw file by a luaspy killed
#     with SIGKILL halfway: the name is escaped, the killed recording
#     reads as truncated and still renders;
#   - a file cut short, a corrupted file (one clear error line, exit 1),
#     diff of two raw recordings, usage errors.
# About 10 s of recording in all.
set -u
# shellcheck source=tests/lib/harness.sh
. "$(dirname "$0")/lib/harness.sh"

work=$TARGETS_TMP/raw
mkdir -p "$work"
run=$work/run.luaspy
HZ=499

# report_ok ARGS...: `luaspy report ARGS`, which must succeed.
report_ok() {
  run_luaspy "$work/report.out" "$work/report.err" report "$@"
  [ "$RC" -eq 0 ] || fail "report $* exited $RC: $(head -c 300 "$work/report.err")"
}

xml_ok() {
  python3 -c 'import sys, xml.dom.minidom as m; m.parse(sys.argv[1])' "$1" \
    2>"$work/xml.log" || fail "$(basename "$1") is not well-formed XML: $(tail -n 1 "$work/xml.log")"
}

count_through() { grep -E "$2" "$1" | awk '{n += $NF} END {print n + 0}'; }

# The demo workload, after the ready() signal start_luajit waits for.
DEMO=$TARGETS_TMP/demo_ready.lua
printf 'require("ready")()\ndofile("%s")\n' "$ROOT/tests/targets/demo.lua" >"$DEMO"

record_demo() {
  local pid
  pid=$(start_luajit openresty "$DEMO") || fail "target did not start"
  run_luaspy "$work/rec.out" "$work/rec.err" record -p "$pid" -F $HZ -d 2 -o "$run"
  case_log "$work/rec.err"
  [ "$RC" -eq 0 ] || fail "record exited $RC: $(head -c 300 "$work/rec.err")"
  expect_target_ok "$pid"
  [ "$(head -c 8 "$run" | od -An -c | tr -d ' ')" = '211luaspy\n' ] || fail "no magic at the start of run.luaspy"
  cp "$run" "$work/run.keep"
}

folded_ratio() {
  [ -s "$run" ] || skip "no recording"
  report_ok "$run" -o "$work/run.folded"
  case_log "$work/run.folded"
  local foo bar total want
  foo=$(count_through "$work/run.folded" ';foo \(')
  bar=$(count_through "$work/run.folded" ';bar \(')
  [ $((foo + bar)) -ge 100 ] || fail "only $((foo + bar)) samples in foo or bar"
  awk -v f="$foo" -v b="$bar" 'BEGIN {s = f / (f + b); exit !(s >= 0.60 && s <= 0.73)}' ||
    fail "foo's share of foo+bar is $foo/($foo+$bar), outside 0.60..0.73"
  total=$(awk '{n += $NF} END {print n + 0}' "$work/run.folded")
  want=$(sed -n 's/^luaspy: \([0-9]*\) samples.*/\1/p' "$work/rec.err" | head -n 1)
  [ "$total" = "$want" ] || fail "report has $total samples, record counted $want"
}

pprof_loads() {
  [ -s "$run" ] || skip "no recording"
  command -v go >/dev/null || skip "go not installed (tests/test_formats.sh installs it)"
  report_ok "$run" -o "$work/run.pb.gz"
  mkdir -p "$work/gohome"
  HOME=$work/gohome GOCACHE=$work/gohome/cache GOPATH=$work/gohome/go GOPROXY=off \
    GOTOOLCHAIN=local timeout 120 go tool pprof -top -cum "$work/run.pb.gz" \
    >"$work/top.txt" 2>"$work/top.err" || fail "go tool pprof failed: $(head -c 200 "$work/top.err")"
  case_log "$work/top.txt"
  grep -q ' foo$' "$work/top.txt" && grep -q ' bar$' "$work/top.txt" && grep -q ' heavy$' "$work/top.txt" ||
    fail "foo, bar or heavy missing from pprof -top: $(head -c 300 "$work/top.txt" | tr '\n' '|')"
  # The rate comes from the recording: 499 samples are a second of CPU.
  grep -q '^Type: cpu' "$work/top.txt" || fail "no CPU time: the sample rate was not kept"
}

timeline_report() {
  [ -s "$run" ] || skip "no recording"
  report_ok "$run" -o "$work/run.html"
  case_log "$work/run.html"
  xml_ok "$work/run.html"
  local bars
  bars=$(sed -n '/<g id="bars">/,/<\/g>/p' "$work/run.html" | grep -c '<rect')
  [ "$bars" -ge 20 ] || fail "only $bars bars in the timeline"
  grep -q '<title>[0-9.]*-[0-9.]* s: heavy ([^<]*demo.lua:[0-9]*): [0-9]* of [0-9]* samples' "$work/run.html" ||
    fail "no bar titled with a time, heavy and its samples"
  [ "$(grep -c '<script' "$work/run.html")" = 1 ] || fail "not exactly one script"
  report_ok "$run" --timeline -o "$work/run.svg"
  xml_ok "$work/run.svg"
  ! grep -q '<script' "$work/run.svg" || fail "the SVG timeline has a script"
}

HOSTILE=$TARGETS_TMP/hostile.lua
cat >"$HOSTILE" <<'LUA'
-- A hot function whose chunk name is markup.
local ready = require "ready"
local f = load("local n = 0 for i = 1, 100000 do n = n + i end return n",
  "=<script>alert(1)</script>&\"'")
ready() while true do f() end
LUA

hostile_timeline() {
  local pid
  pid=$(start_luajit openresty "$HOSTILE") || fail "target did not start"
  run_luaspy "$work/h.out" "$work/h.err" record -p "$pid" -F $HZ -d 1 --timeline -o "$work/hostile.html"
  [ "$RC" -eq 0 ] || fail "record --timeline exited $RC: $(head -c 300 "$work/h.err")"
  case_log "$work/hostile.html"
  xml_ok "$work/hostile.html"
  grep -q '&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;&#39;' "$work/hostile.html" ||
    fail "the chunk name is not there, escaped"
  [ "$(grep -c '<script' "$work/hostile.html")" = 1 ] || fail "more than our own script"
}

killed_truncated() {
  local pid rec n
  pid=$(start_luajit openresty "$HOSTILE") || fail "target did not start"
  "$LUASPY" record -p "$pid" -F $HZ -d 30 -o "$work/killed.luaspy" >/dev/null 2>"$work/killed.err" &
  rec=$!
  # Chunks are written every second: wait for two past the header.
  for _ in $(seq 100); do
    [ "$(stat -c %s "$work/killed.luaspy" 2>/dev/null || echo 0)" -gt 2000 ] && break
    sleep 0.1
  done
  sleep 1.2
  kill -KILL "$rec"
  wait "$rec" 2>/dev/null
  expect_target_ok "$pid"
  report_ok "$work/killed.luaspy" -o "$work/killed.svg"
  grep -q "^luaspy: .*killed.luaspy: truncated" "$work/report.err" ||
    fail "not said to be truncated: $(head -c 200 "$work/report.err")"
  xml_ok "$work/killed.svg"
  grep -q '&lt;script&gt;alert(1)' "$work/killed.svg" || fail "no samples of the hot chunk"
  n=$(sed -n 's/.*using its \([0-9]*\) samples/\1/p' "$work/report.err")
  [ "${n:-0}" -ge 100 ] || fail "only ${n:-0} samples kept"
}

cut_short() {
  [ -s "$work/run.keep" ] || skip "no recording"
  local size
  size=$(stat -c %s "$work/run.keep")
  head -c $((size * 2 / 3)) "$work/run.keep" >"$work/cut.luaspy"
  report_ok "$work/cut.luaspy" -o "$work/cut.folded"
  grep -q 'cut.luaspy: truncated' "$work/report.err" || fail "not said to be truncated"
  [ -s "$work/cut.folded" ] || fail "nothing rendered"
  report_ok "$work/cut.luaspy" -o "$work/cut.html"
  xml_ok "$work/cut.html"
}

corrupted() {
  [ -s "$work/run.keep" ] || skip "no recording"
  cp "$work/run.keep" "$work/bad.luaspy"
  printf '\377\000\377' | dd of="$work/bad.luaspy" bs=1 seek=$(($(stat -c %s "$work/bad.luaspy") / 2)) conv=notrunc 2>/dev/null
  run_luaspy "$work/bad.out" "$work/bad.err" report "$work/bad.luaspy" -o "$work/bad.svg"
  expect_clean_error "$work/bad.out" "$work/bad.err"
  [ "$RC" -eq 1 ] || fail "exit status $RC, want 1"
  grep -q 'bad.luaspy: corrupt recording' "$work/bad.err" || fail "not said to be corrupt: $(cat "$work/bad.err")"
  # The first byte of the format, then garbage: not a recording.
  printf '\211garbage' >"$work/junk.luaspy"
  run_luaspy "$work/bad.out" "$work/bad.err" report "$work/junk.luaspy"
  expect_clean_error "$work/bad.out" "$work/bad.err"
}

diff_raw() {
  [ -s "$work/run.keep" ] && [ -s "$work/cut.luaspy" ] || skip "no recordings"
  run_luaspy "$work/diff.out" "$work/diff.err" diff "$work/cut.luaspy" "$work/run.keep" -o "$work/diff.svg"
  [ "$RC" -eq 0 ] || fail "diff exited $RC: $(head -c 300 "$work/diff.err")"
  xml_ok "$work/diff.svg"
  grep -q 'heavy (' "$work/diff.svg" || fail "no heavy in the differential graph"
}

usage_errors() {
  printf 'main (a.lua:1) 3\n' >"$work/a.folded"
  run_luaspy "$work/u.out" "$work/u.err" report "$work/a.folded" -o "$work/x.luaspy"
  expect_clean_error "$work/u.out" "$work/u.err"
  [ "$RC" -eq 2 ] || fail "report -o x.luaspy: exit $RC, want 2"
  run_luaspy "$work/u.out" "$work/u.err" report "$work/a.folded" --timeline -o "$work/x.folded"
  [ "$RC" -eq 2 ] || fail "report --timeline -o x.folded: exit $RC, want 2"
  run_luaspy "$work/u.out" "$work/u.err" report "$work/a.folded" -o "$work/x.html"
  expect_clean_error "$work/u.out" "$work/u.err"
  grep -q 'no times' "$work/u.err" || fail "a timeline of folded stacks: $(cat "$work/u.err")"
  run_luaspy "$work/u.out" "$work/u.err" record -p 1 --timeline -o "$work/x.pb.gz"
  [ "$RC" -eq 2 ] || fail "record --timeline -o x.pb.gz: exit $RC, want 2"
}

case_run "raw: record the demo to run.luaspy" record_demo
case_run "raw: report to folded keeps foo:bar and every sample" folded_ratio
case_run "raw: report to pprof loads in go tool pprof" pprof_loads
case_run "raw: report to a timeline (html, svg)" timeline_report
case_run "raw: record --timeline escapes a <script> chunk" hostile_timeline
case_run "raw: a recording killed halfway reads as truncated" killed_truncated
case_run "raw: a file cut short renders, said truncated" cut_short
case_run "raw: a corrupted file is one error line" corrupted
case_run "raw: diff of two raw recordings" diff_raw
case_run "raw: usage errors" usage_errors
