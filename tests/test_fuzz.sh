#!/usr/bin/env bash
# Fuzzing, bounded for CI: builds the libFuzzer targets (make fuzz), replays
# each target's corpus in tests/fuzz/corpus/TARGET/ (seeds and the inputs
# of every crash found so far), then fuzzes each target for
# LUASPY_FUZZ_SECONDS (default 10) from a copy of that corpus. A crash
# fails the case; its input is kept in build/test-logs/fuzz-TARGET-crash-*
# and belongs in the corpus once fixed. Longer runs: tests/fuzz/README.md.
set -u
. "$(dirname "$0")/lib/harness.sh"

FUZZ_SECONDS=${LUASPY_FUZZ_SECONDS:-10}
FUZZ_TARGETS="walk symbolize heap cli raw"
FUZZ_BIN=$ROOT/build/fuzz

build_fuzz() {
  command -v clang >/dev/null || skip "clang missing (scripts/deps.sh)"
  make -C "$ROOT" -j"$(nproc)" fuzz >"$LUASPY_TEST_LOGS/make-fuzz.log" 2>&1 ||
    fail "make fuzz: $(tail -n 3 "$LUASPY_TEST_LOGS/make-fuzz.log" | tr '\n' ' ')"
}

# The first line saying what went wrong in a libFuzzer log.
fuzz_error() {
  grep -m1 -E 'ERROR: |runtime error|deadly signal|Timeout|out-of-memory' "$1" ||
    tail -n 1 "$1"
}

# The seed generator's images must still walk: the fuzzer starts from them.
seeds_walk() {
  local dir=$TARGETS_TMP/seeds
  [ -x "$FUZZ_BIN/gen_seeds" ] || skip "not built"
  mkdir -p "$dir"
  "$FUZZ_BIN/gen_seeds" "$dir" || fail "gen_seeds exited $?"
  local f
  for f in stack-c stack-interp stack-trace; do
    cmp -s "$dir/$f" "$ROOT/tests/fuzz/corpus/walk/$f" ||
      fail "$f differs from tests/fuzz/corpus/walk/$f: regenerate the seeds (tests/fuzz/README.md)"
  done
}

replay() {
  local t=$1 log=$LUASPY_TEST_LOGS/fuzz-$1-replay.log
  [ -x "$FUZZ_BIN/fuzz_$t" ] || skip "not built"
  local -a inputs=("$ROOT/tests/fuzz/corpus/$t"/*)
  [ -e "${inputs[0]}" ] || fail "no corpus in tests/fuzz/corpus/$t"
  timeout -k 5 120 "$FUZZ_BIN/fuzz_$t" -timeout=60 "${inputs[@]}" >"$log" 2>&1 ||
    fail "$(fuzz_error "$log")"
}

fuzz() {
  local t=$1 log=$LUASPY_TEST_LOGS/fuzz-$1.log corpus=$TARGETS_TMP/corpus-$1
  [ -x "$FUZZ_BIN/fuzz_$t" ] || skip "not built"
  mkdir -p "$corpus"
  cp "$ROOT/tests/fuzz/corpus/$t"/* "$corpus/"
  timeout -k 5 $((FUZZ_SECONDS + 60)) "$FUZZ_BIN/fuzz_$t" \
    -max_total_time="$FUZZ_SECONDS" -timeout=60 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$LUASPY_TEST_LOGS/fuzz-$t-" \
    "$corpus" >"$log" 2>&1 ||
    fail "$(fuzz_error "$log") (input: build/test-logs/$(cd "$LUASPY_TEST_LOGS" && ls -t fuzz-"$t"-* 2>/dev/null | grep -v '\.log$' | head -n 1))"
  echo "fuzz_$t: $(grep -m1 'number_of_executed_units' "$log") in ${FUZZ_SECONDS}s" >&2
}

case_run "fuzz: make fuzz builds the targets" build_fuzz
case_run "fuzz: seed images unchanged" seeds_walk
for t in $FUZZ_TARGETS; do
  case_run "fuzz: $t replays its corpus" replay "$t"
done
for t in $FUZZ_TARGETS; do
  case_run "fuzz: $t ${FUZZ_SECONDS}s without a crash" fuzz "$t"
done
