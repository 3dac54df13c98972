#!/usr/bin/env bash
# Everyday use (issue #8): the pprof and speedscope outputs checked by
# their own tools, `luaspy diff`'s differential flame graph, and what
# `make install` puts in place: the binary, the man page, the bash
# completion. No targets: everything starts from folded files.
#
#   - pprof: `go tool pprof` (Debian's golang-go, installed if missing)
#     reads a profile converted from folded stacks with foo:bar = 2:1;
#     it runs offline, with HOME and GOCACHE in a temporary directory;
#   - speedscope: validated against the schema shipped in speedscope's
#     npm package, with ajv (both installed from npm into a temporary
#     directory; skipped if npm is unreachable);
#   - diff: the SVG parses as XML, the grown function is red, the shrunk
#     one blue, the unchanged one grey, paths only in BEFORE are noted;
#   - install: `make install DESTDIR=... PREFIX=/usr`, then the installed
#     luaspy runs, its man page renders and names every command of
#     `luaspy --help`, its completion completes `luaspy d<TAB>`.
set -u
# shellcheck source=tests/lib/harness.sh
. "$(dirname "$0")/lib/harness.sh"

work=$TARGETS_TMP/formats
mkdir -p "$work"
results=$work/results

# The files every case reads. foo runs twice as long as bar.
printf '%s\n' 'main (app.lua:1);foo (app.lua:10) 200' \
  'main (app.lua:1);bar (lib.lua:20) 100' \
  'main (app.lua:1);bar (lib.lua:20);C:strlen 30' \
  '[GC] 5' >"$work/ratio.folded"
# From BEFORE to AFTER: foo's share grows, bar's shrinks, steady's stays
# a third; old is gone.
printf '%s\n' 'main (app.lua:1);foo (app.lua:10) 100' \
  'main (app.lua:1);bar (lib.lua:20) 100' \
  'main (app.lua:1);steady (app.lua:30) 100' >"$work/before.folded"
printf '%s\n' 'main (app.lua:1);foo (app.lua:10) 500' \
  'main (app.lua:1);bar (lib.lua:20) 100' \
  'main (app.lua:1);steady (app.lua:30) 300' >"$work/after.folded"
{ cat "$work/before.folded"; echo 'main (app.lua:1);old (gone.lua:9) 60'; } \
  >"$work/before_old.folded"

# report_to OUT ARGS...: `luaspy report ARGS -o OUT`, which must succeed.
report_to() {
  local out=$1; shift
  run_luaspy "$work/report.out" "$work/report.err" report "$@" -o "$out"
  [ "$RC" -eq 0 ] || fail "report $* -o $out exited $RC: $(head -c 300 "$work/report.err")"
}

# ---- pprof ---------------------------------------------------------------------

# go_pprof ARGS...: `go tool pprof ARGS`, offline, its state in $work.
go_pprof() {
  HOME=$work/gohome GOCACHE=$work/gohome/cache GOPATH=$work/gohome/go \
    GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local \
    timeout 120 go tool pprof "$@"
}

need_go() {
  if ! command -v go >/dev/null; then
    { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; } ||
      skip "go not installed and cannot be installed (apt-get install golang-go)"
    { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go; }; } \
      >"$work/apt-go.log" 2>&1
    command -v go >/dev/null || skip "golang-go could not be installed: $(tail -n 1 "$work/apt-go.log")"
  fi
  mkdir -p "$work/gohome"
}

pprof_top() {
  need_go
  report_to "$work/ratio.pb.gz" "$work/ratio.folded"
  [ "$(head -c 2 "$work/ratio.pb.gz" | od -An -tx1 | tr -d ' ')" = 1f8b ] ||
    fail "not gzipped"
  go_pprof -top "$work/ratio.pb.gz" >"$work/top.txt" 2>"$work/top.err" ||
    fail "go tool pprof -top failed: $(grep -v 'binary filename' "$work/top.err" | head -n 2 | tr '\n' ' ')"
  case_log "$work/top.txt"
  local foo bar
  foo=$(awk '$NF == "foo" { print $1 }' "$work/top.txt")
  bar=$(awk '$NF == "bar" { print $1 }' "$work/top.txt")
  { [ -n "$foo" ] && [ -n "$bar" ]; } || fail "foo or bar missing from -top: $(tr '\n' '|' <"$work/top.txt" | head -c 400)"
  # bar's own samples: 100 (C:strlen's 30 are C:strlen's).
  { [ "$foo" = 200 ] && [ "$bar" = 100 ]; } || fail "flat foo $foo, bar $bar; want 200 and 100"
  grep -q 'C:strlen' "$work/top.txt" || fail "C:strlen missing from -top"
  grep -q '^Type: samples' "$work/top.txt" || fail "sample type is not samples"
}

pprof_lines() {
  need_go
  report_to "$work/ratio.pb.gz" "$work/ratio.folded"
  go_pprof -raw "$work/ratio.pb.gz" >"$work/raw.txt" 2>/dev/null || fail "go tool pprof -raw failed"
  go_pprof -traces -lines "$work/ratio.pb.gz" >"$work/traces.txt" 2>/dev/null ||
    fail "go tool pprof -traces -lines failed"
  case_log "$work/raw.txt"
  case_log "$work/traces.txt"
  local want
  for want in 'foo app.lua:10' 'bar lib.lua:20' 'main app.lua:1'; do
    grep -q " $want s=${want##*:}\$" "$work/raw.txt" ||
      fail "-raw has no location '$want' starting at line ${want##*:}"
    grep -q "  $want\$" "$work/traces.txt" || fail "-traces -lines has no frame '$want'"
  done
  # A stack is leaf first: strlen, then bar, then main.
  grep -A 2 'C:strlen' "$work/traces.txt" | tr -s ' \n' ' ' |
    grep -q 'C:strlen bar lib.lua:20 main app.lua:1' || fail "-traces: C:strlen's stack is not leaf first"
}

pprof_cpu() {
  need_go
  report_to "$work/cpu.pb.gz" "$work/ratio.folded" -F 100
  go_pprof -raw "$work/cpu.pb.gz" >"$work/cpu.txt" 2>/dev/null || fail "go tool pprof -raw failed"
  case_log "$work/cpu.txt"
  grep -q '^PeriodType: cpu nanoseconds' "$work/cpu.txt" || fail "period type is not cpu nanoseconds"
  grep -q '^Period: 10000000$' "$work/cpu.txt" || fail "period is not 10ms at 100 Hz"
  grep -q 'samples/count cpu/nanoseconds\[dflt\]' "$work/cpu.txt" || fail "sample types are not samples/count, cpu/nanoseconds"
  # foo's 200 samples are 2 s of CPU.
  grep -Eq '^ +200 +2000000000: ' "$work/cpu.txt" || fail "no sample of 200 samples, 2000000000 ns"
}

# ---- speedscope ----------------------------------------------------------------

# Installs speedscope and ajv from npm once into $work/npm; skips the case
# if that cannot be done.
need_npm() {
  local dir=$work/npm
  [ -f "$dir/node_modules/ajv/package.json" ] && [ -d "$dir/node_modules/speedscope" ] && return 0
  { command -v npm >/dev/null && command -v node >/dev/null; } || skip "node or npm not installed"
  mkdir -p "$dir"
  (cd "$dir" && HOME=$dir npm_config_cache=$dir/cache timeout 180 \
     npm install --no-audit --no-fund --loglevel=error speedscope ajv) >"$dir/npm.log" 2>&1 ||
    skip "npm install speedscope ajv failed (npm unreachable?): $(tail -n 1 "$dir/npm.log")"
}

speedscope_schema() {
  need_npm
  local schema
  schema=$(find "$work/npm/node_modules/speedscope" -name 'file-format-schema.json' | head -n 1)
  [ -n "$schema" ] || fail "no file-format-schema.json in the speedscope package"
  report_to "$work/ratio.speedscope.json" "$work/ratio.folded" -F 99 -t 'nginx <worker>'
  report_to "$work/bytes.speedscope.json" "$work/ratio.folded"
  cat >"$work/npm/validate.js" <<'EOF'
// node validate.js SCHEMA FILE...: each FILE valid against SCHEMA.
const fs = require("fs");
const Ajv = require("ajv");
const ajv = new Ajv({allErrors: true, strict: false});
const validate = ajv.compile(JSON.parse(fs.readFileSync(process.argv[2], "utf8")));
let ok = true;
for (const file of process.argv.slice(3)) {
  if (!validate(JSON.parse(fs.readFileSync(file, "utf8")))) {
    console.log(file + ": " + ajv.errorsText(validate.errors));
    ok = false;
  }
}
process.exit(ok ? 0 : 1);
EOF
  (cd "$work/npm" && node validate.js "$schema" "$work/ratio.speedscope.json" \
     "$work/bytes.speedscope.json") >"$work/validate.log" 2>&1 ||
    fail "not valid: $(head -c 300 "$work/validate.log")"
}

speedscope_content() {
  command -v jq >/dev/null || skip "jq not installed"
  report_to "$work/ratio.speedscope.json" "$work/ratio.folded"
  local f=$work/ratio.speedscope.json
  case_log "$f"
  jq -e '."$schema" == "https://www.speedscope.app/file-format-schema.json"' "$f" >/dev/null ||
    fail "no \$schema"
  jq -e '.shared.frames | any(.name == "foo" and .file == "app.lua" and .line == 10)' "$f" >/dev/null ||
    fail "no frame foo, app.lua, line 10"
  jq -e '.shared.frames | any(.name == "C:strlen" and (has("file") | not))' "$f" >/dev/null ||
    fail "no frame C:strlen without a file"
  jq -e '.profiles[0] | .type == "sampled" and .unit == "none" and .endValue == 335 and (.weights | add) == 335' "$f" >/dev/null ||
    fail "profile type, unit or total weight wrong"
  # Samples are root first: every stack through main starts with it.
  jq -e '.shared.frames as $fr | .profiles[0] | [.samples[] | map($fr[.].name)] |
      any(. == ["main", "bar", "C:strlen"]) and any(. == ["main", "foo"])' "$f" >/dev/null ||
    fail "samples are not the stacks, root first"
  report_to "$work/cpu.speedscope.json" "$work/ratio.folded" -F 100
  jq -e '.profiles[0] | .unit == "nanoseconds" and .endValue == 3350000000' \
    "$work/cpu.speedscope.json" >/dev/null || fail "-F 100: not 10 ms a sample in nanoseconds"
}

report_formats() {
  run_luaspy "$work/o" "$work/e" report "$work/ratio.folded" -f pprof
  { [ "$RC" -eq 0 ] && [ "$(head -c 2 "$work/o" | od -An -tx1 | tr -d ' ')" = 1f8b ]; } ||
    fail "-f pprof to stdout: exit $RC or not gzip"
  run_luaspy "$work/o" "$work/e" report "$work/ratio.folded" -f speedscope
  { [ "$RC" -eq 0 ] && grep -q '"sampled"' "$work/o"; } || fail "-f speedscope to stdout: exit $RC or no profile"
  run_luaspy "$work/o" "$work/e" report "$work/ratio.folded" -F 0
  [ "$RC" -eq 2 ] || fail "-F 0: exit $RC, want 2"
  expect_clean_error "$work/o" "$work/e"
  run_luaspy "$work/o" "$work/e" report "$work/ratio.folded" -o "$work/x.json"
  [ "$RC" -eq 2 ] || fail "-o x.json: exit $RC, want 2 (which JSON?)"
  expect_clean_error "$work/o" "$work/e"
  grep -q 'speedscope.json' "$work/e" || fail "the error does not name .speedscope.json"
  run_luaspy "$work/o" "$work/e" report "$work/ratio.folded" -f pprof -o /dev/full
  [ "$RC" -eq 1 ] || fail "pprof to a full disk: exit $RC, want 1"
  expect_clean_error "$work/o" "$work/e"
}

# ---- diff ----------------------------------------------------------------------

# frame_fills SVG: "NAME r g b" for every frame of a flame graph.
frame_fills() {
  python3 - "$1" <<'EOF'
import re, sys, xml.dom.minidom as m
doc = m.parse(sys.argv[1])
for g in doc.getElementsByTagName("g"):
    if g.getAttribute("class") != "f":
        continue
    tip = g.getElementsByTagName("title")[0].firstChild.data
    fill = g.getElementsByTagName("rect")[0].getAttribute("fill")
    r, gr, b = map(int, re.match(r"rgb\((\d+),(\d+),(\d+)\)", fill).groups())
    print(tip[:tip.index(" (")], r, gr, b)
EOF
}

diff_colours() {
  command -v python3 >/dev/null || skip "python3 not installed"
  run_luaspy "$work/diff.out" "$work/diff.err" diff "$work/before.folded" "$work/after.folded" -o "$work/diff.svg"
  [ "$RC" -eq 0 ] || fail "diff exited $RC: $(head -c 300 "$work/diff.err")"
  case_log "$work/diff.svg"
  frame_fills "$work/diff.svg" >"$work/fills.txt" 2>"$work/fills.err" ||
    fail "the SVG does not parse as XML: $(tail -n 1 "$work/fills.err")"
  # grown: red well above blue; shrunk: the other way; unchanged: grey.
  awk '$1 == "foo" && $2 > $4 + 100 { ok = 1 } END { exit !ok }' "$work/fills.txt" ||
    fail "foo (grown) is not red: $(grep '^foo ' "$work/fills.txt")"
  awk '$1 == "bar" && $4 > $2 + 100 { ok = 1 } END { exit !ok }' "$work/fills.txt" ||
    fail "bar (shrunk) is not blue: $(grep '^bar ' "$work/fills.txt")"
  awk '$1 == "steady" && $2 - $4 < 10 && $4 - $2 < 10 { ok = 1 } END { exit !ok }' "$work/fills.txt" ||
    fail "steady (unchanged share) is not grey: $(grep '^steady ' "$work/fills.txt")"
  grep -q '<title>foo (app.lua:10) (before 100, after 500 samples; share 33.33% -&gt; 55.56%, +22.22%)</title>' \
    "$work/diff.svg" || fail "foo's hover text does not give counts and the change"
}

diff_gone() {
  run_luaspy "$work/gone.svg" "$work/gone.err" diff "$work/before_old.folded" "$work/after.folded"
  [ "$RC" -eq 0 ] || fail "diff exited $RC: $(head -c 300 "$work/gone.err")"
  grep -q '<text class="note"[^>]*>Only in BEFORE, not drawn (1 call path):</text>' "$work/gone.svg" ||
    fail "no note on the path only in BEFORE"
  grep -q '<text class="note"[^>]*>-16.67% old (gone.lua:9): 60 samples, called from main (app.lua:1)</text>' \
    "$work/gone.svg" || fail "the note does not name old (gone.lua:9) with its share and caller"
  grep -q '<title>old' "$work/gone.svg" && fail "old is drawn, though AFTER has no such path"
  return 0
}

diff_errors() {
  run_luaspy "$work/o" "$work/e" diff --help
  { [ "$RC" -eq 0 ] && grep -q '^usage: luaspy diff BEFORE AFTER' "$work/o" &&
    grep -q 'only in BEFORE' "$work/o"; } || fail "--help: exit $RC or does not explain paths only in BEFORE"
  run_luaspy "$work/o" "$work/e" diff "$work/before.folded"
  [ "$RC" -eq 2 ] || fail "one recording: exit $RC, want 2"
  expect_clean_error "$work/o" "$work/e"
  run_luaspy "$work/o" "$work/e" diff - - </dev/null
  [ "$RC" -eq 2 ] || fail "both on stdin: exit $RC, want 2"
  expect_clean_error "$work/o" "$work/e"
  run_luaspy "$work/o" "$work/e" diff "$work/before.folded" "$work/none.folded"
  [ "$RC" -eq 1 ] || fail "missing AFTER: exit $RC, want 1"
  expect_clean_error "$work/o" "$work/e"
  printf 'a;b 1\na;b x\n' >"$work/bad.folded"
  run_luaspy "$work/o" "$work/e" diff "$work/before.folded" "$work/bad.folded"
  [ "$RC" -eq 1 ] || fail "bad AFTER: exit $RC, want 1"
  expect_clean_error "$work/o" "$work/e"
  grep -q "^luaspy: $work/bad.folded:2: " "$work/e" || fail "a bad line is not named FILE:LINE: $(head -c 200 "$work/e")"
  run_luaspy "$work/o" "$work/e" diff "$work/before.folded" "$work/after.folded" -o /dev/full
  [ "$RC" -eq 1 ] || fail "to a full disk: exit $RC, want 1"
  expect_clean_error "$work/o" "$work/e"
}

# ---- install -------------------------------------------------------------------

stage=$work/stage

install_run() {
  make -s -C "$ROOT" install DESTDIR="$stage" PREFIX=/usr >"$work/install.log" 2>&1 ||
    fail "make install failed: $(tail -n 2 "$work/install.log" | tr '\n' ' ')"
  local f
  for f in usr/bin/luaspy usr/share/man/man1/luaspy.1 usr/share/bash-completion/completions/luaspy; do
    [ -f "$stage/$f" ] || fail "$f not installed"
  done
  "$stage/usr/bin/luaspy" --version >"$work/version" 2>&1 || fail "installed luaspy --version failed"
  grep -Eq '^luaspy [0-9]+\.[0-9]+' "$work/version" || fail "--version printed: $(head -c 100 "$work/version")"
}

# The commands `luaspy --help` lists.
commands_listed() {
  "$1" --help | awk '/^commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 } on && /^$/ { exit }'
}

man_page() {
  [ -x "$stage/usr/bin/luaspy" ] || install_run
  command -v man >/dev/null || skip "man not installed"
  MANPAGER=cat MANWIDTH=100 man -l "$stage/usr/share/man/man1/luaspy.1" >"$work/man.txt" 2>"$work/man.err" ||
    fail "man -l failed: $(head -n 1 "$work/man.err")"
  [ -s "$work/man.err" ] && fail "man warns: $(head -n 1 "$work/man.err")"
  { grep -q '^NAME' "$work/man.txt" && grep -q '^SYNOPSIS' "$work/man.txt"; } || fail "no NAME or SYNOPSIS"
  local cmds c n=0
  cmds=$(commands_listed "$stage/usr/bin/luaspy")
  for c in $cmds; do
    n=$((n + 1))
    grep -q "^   luaspy $c " "$work/man.txt" || fail "the man page has no section on 'luaspy $c'"
  done
  [ "$n" -ge 3 ] || fail "luaspy --help lists only $n commands"
  # Every long option of every command's --help is described.
  for c in $cmds; do
    for opt in $("$stage/usr/bin/luaspy" "$c" --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
      grep -q -- "$opt" "$work/man.txt" || fail "the man page does not mention $c's $opt"
    done
  done
}

completion() {
  [ -x "$stage/usr/bin/luaspy" ] || install_run
  local file=$stage/usr/share/bash-completion/completions/luaspy out
  out=$(bash -c '
    set -u
    . "$1" || exit 1
    complete -p luaspy >/dev/null || exit 1
    COMP_WORDS=("$2" d); COMP_CWORD=1; _luaspy; echo "${COMPREPLY[*]}"
    COMP_WORDS=("$2" report --fo); COMP_CWORD=2; _luaspy; echo "${COMPREPLY[*]}"
    COMP_WORDS=("$2" report -f s); COMP_CWORD=3; _luaspy; echo "${COMPREPLY[*]}"
  ' _ "$file" "$stage/usr/bin/luaspy" 2>&1) || fail "the completion file does not source: $out"
  [ "$(sed -n 1p <<<"$out")" = "dump diff" ] || fail "luaspy d<TAB> completes to '$(sed -n 1p <<<"$out")', want 'dump diff'"
  [ "$(sed -n 2p <<<"$out")" = "--format" ] || fail "luaspy report --fo<TAB>: '$(sed -n 2p <<<"$out")'"
  [ "$(sed -n 3p <<<"$out")" = "svg speedscope" ] || fail "luaspy report -f s<TAB>: '$(sed -n 3p <<<"$out")'"
}

# ---- run -----------------------------------------------------------------------

check() { case_run "$@" | tee -a "$results"; }

check "formats: pprof -top: foo and bar 2:1" pprof_top
check "formats: pprof -raw/-traces: files and lines, leaf first" pprof_lines
check "formats: pprof with -F: cpu nanoseconds, period" pprof_cpu
check "formats: speedscope valid against speedscope's schema" speedscope_schema
check "formats: speedscope frames, stacks root first, weights" speedscope_content
check "formats: report -f pprof/speedscope, bad -F, ambiguous .json" report_formats
check "formats: diff colours grown red, shrunk blue, same grey" diff_colours
check "formats: diff notes paths only in BEFORE" diff_gone
check "formats: diff --help and errors" diff_errors
check "formats: make install DESTDIR PREFIX=/usr; --version" install_run
check "formats: man page renders, covers every command and option" man_page
check "formats: bash completion: luaspy d<TAB>, options, formats" completion

! grep -q '^FAIL ' "$results" 2>/dev/null
