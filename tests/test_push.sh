#!/usr/bin/env bash
# `luaspy record --push URL` (issue #8): continuous profiles sent to a
# Pyroscope-style ingest endpoint, here a local HTTP receiver (python3's
# http.server) that keeps each upload's query and body, and can answer
# the first N requests with HTTP 500.
#
#   - uploads: one per --every while recording, each a POST to /ingest
#     with name=APP{host,pid,exe,vm[,labels]}, from < until (following
#     each other), format=pprof, sampleRate, spyName; each body decodes
#     with `go tool pprof -top` and shows foo and bar; -o is still written;
#   - retry: after two 500s the upload is retried with backoff and gets
#     through; record warns, then says uploads work again;
#   - server down: record samples on, warns, exits 0, writes -o and says
#     how many profiles were dropped;
#   - bad input: one "luaspy:" line, exit 2.
set -u
# shellcheck source=tests/lib/harness.sh
. "$(dirname "$0")/lib/harness.sh"

work=$TARGETS_TMP/push
mkdir -p "$work"

cat >"$work/demo.lua" <<'LUA'
-- foo() runs heavy() twice, bar() once: foo has about twice bar's samples.
local ready = require "ready"
local function heavy()
  local sum = 0
  for i = 1, 1e6 do sum = sum + i end
  return sum
end
local function foo() return heavy() + heavy() end
local function bar() return heavy() end
local t = 0
ready() while true do t = t + foo() + bar() end
LUA

# The receiver: receiver.py DIR FAIL_FIRST. Writes its port to DIR/port,
# each request's "STATUS PATH?QUERY" to DIR/requests, and each accepted
# upload N to DIR/N.query and DIR/N.body.
cat >"$work/receiver.py" <<'PY'
import http.server, os, sys
out, fail_first = sys.argv[1], int(sys.argv[2])
seen = accepted = 0
class Ingest(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        global seen, accepted
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        seen += 1
        status = 500 if seen <= fail_first else 200
        with open(os.path.join(out, "requests"), "a") as f:
            f.write("%d %s %s\n" % (status, self.path, self.headers.get("Content-Type")))
        if status == 200:
            accepted += 1
            path, _, query = self.path.partition("?")
            with open(os.path.join(out, "%d.query" % accepted), "w") as f:
                f.write(query)
            with open(os.path.join(out, "%d.body" % accepted), "wb") as f:
                f.write(body)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
srv = http.server.HTTPServer(("127.0.0.1", 0), Ingest)
with open(os.path.join(out, "port.tmp"), "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(os.path.join(out, "port.tmp"), os.path.join(out, "port"))
srv.serve_forever()
PY

# start_receiver FAIL_FIRST: sets RDIR and PORT.
start_receiver() {
  RDIR=$(new_target_dir receiver)
  spawn "$RDIR" python3 "$work/receiver.py" "$RDIR" "$1" >/dev/null
  wait_for 10 test -s "$RDIR/port" || fail "the receiver did not start: $(head -c 300 "$RDIR/out.log")"
  PORT=$(cat "$RDIR/port")
}

# go_pprof ARGS...: `go tool pprof ARGS`, offline (as in test_formats.sh).
go_pprof() {
  mkdir -p "$work/gohome"
  HOME=$work/gohome GOCACHE=$work/gohome/cache GOPATH=$work/gohome/go \
    GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local \
    timeout 120 go tool pprof "$@"
}

# check_queries DIR NAME_REGEX: every accepted upload's query has a name
# matching NAME_REGEX, format=pprof, sampleRate=99, spyName=luaspy, and
# from < until, each from the last one's until. Prints what is wrong.
cat >"$work/check.py" <<'PY'
import glob, os, re, sys, urllib.parse
out, want = sys.argv[1], sys.argv[2]
n = len(glob.glob(os.path.join(out, "*.query")))
last = None
for i in range(1, n + 1):
    q = urllib.parse.parse_qs(open(os.path.join(out, "%d.query" % i)).read())
    get = lambda k: q.get(k, [""])[0]
    if not re.fullmatch(want, get("name")):
        sys.exit("upload %d: name %r does not match %r" % (i, get("name"), want))
    for k, v in (("format", "pprof"), ("sampleRate", "99"), ("spyName", "luaspy")):
        if get(k) != v:
            sys.exit("upload %d: %s is %r, not %r" % (i, k, get(k), v))
    f, u = int(get("from")), int(get("until"))
    if not f < u <= f + 3 or (last is not None and f != last):
        sys.exit("upload %d: from %d until %d after until %s" % (i, f, u, last))
    last = u
PY
check_queries() {
  python3 "$work/check.py" "$@" >"$work/check.err" 2>&1 || fail "$(tail -n 1 "$work/check.err")"
}

push_uploads() {
  local pid n i
  start_receiver 0
  pid=$(start_luajit openresty "$work/demo.lua") || fail "target did not start"
  run_luaspy "$work/up.out" "$work/up.err" record -p "$pid" \
    --push "http://127.0.0.1:$PORT" --every 1s -d 4.5 -o "$work/up.folded"
  case_log "$work/up.err"
  case_log "$RDIR/requests"
  [ "$RC" -eq 0 ] || fail "record exited $RC: $(head -c 300 "$work/up.err" | tr '\n' '|')"
  grep -q 'foo' "$work/up.folded" || fail "-o has no foo"
  n=$(grep -c '^200 ' "$RDIR/requests")
  # One upload a second for 4.5 s, and the last half second's at exit.
  [ "$n" -ge 4 ] && [ "$n" -le 6 ] || fail "$n uploads in 4.5 s at --every 1s; want about 5"
  grep -qv '^200 /ingest?' "$RDIR/requests" && fail "not all POST /ingest: $(head -n 3 "$RDIR/requests")"
  grep -q 'application/octet-stream$' "$RDIR/requests" || fail "Content-Type is not application/octet-stream"
  grep -q "push: $n profiles sent to 127.0.0.1" "$work/up.err" || fail "no summary of $n uploads: $(tail -n 3 "$work/up.err")"
  check_queries "$RDIR" "luaspy\\.luajit\\{host=[A-Za-z0-9_.:/@+-]+,pid=$pid,exe=luajit,vm=0x[0-9a-f]+\\}"
  command -v go >/dev/null || skip "go not installed (golang-go): the bodies are not checked"
  for i in $(seq 1 "$n"); do
    go_pprof -top "$RDIR/$i.body" >"$work/top$i.txt" 2>"$work/top$i.err" ||
      fail "upload $i: go tool pprof failed: $(grep -v 'binary filename' "$work/top$i.err" | head -n 2 | tr '\n' ' ')"
  done
  case_log "$work/top2.txt"
  # A whole interval, not the short last one, shows both functions.
  for i in 2 3; do
    grep -q ' foo$' "$work/top$i.txt" && grep -q ' bar$' "$work/top$i.txt" ||
      fail "upload $i has no foo or bar: $(tr '\n' '|' <"$work/top$i.txt" | head -c 400)"
  done
  expect_target_ok "$pid"
}

push_retry() {
  local pid n
  start_receiver 2
  pid=$(start_luajit openresty "$work/demo.lua") || fail "target did not start"
  cd "$work" || fail "no $work"
  run_luaspy "$work/re.out" "$work/re.err" record -p "$pid" \
    --push "http://127.0.0.1:$PORT/" --every 1 -d 2.5 --app shop.api \
    --push-label env=test --push-label host=web1
  case_log "$work/re.err"
  case_log "$RDIR/requests"
  [ "$RC" -eq 0 ] || fail "record exited $RC: $(head -c 300 "$work/re.err" | tr '\n' '|')"
  [ ! -e profile.svg ] || fail "wrote profile.svg without -o"
  [ "$(head -n 2 "$RDIR/requests" | cut -d' ' -f1 | tr '\n' ' ')" = "500 500 " ] ||
    fail "the first two requests did not get 500: $(head -n 3 "$RDIR/requests")"
  n=$(grep -c '^200 ' "$RDIR/requests")
  [ "$n" -ge 2 ] || fail "only $n uploads got through after the 500s"
  grep -q 'push: upload failed: the server answered HTTP 500; retrying' "$work/re.err" ||
    fail "no warning about the 500: $(head -c 300 "$work/re.err")"
  grep -q 'push: uploads work again' "$work/re.err" || fail "no word that uploads work again"
  grep -q 'dropped' "$work/re.err" && fail "profiles dropped: $(grep dropped "$work/re.err")"
  check_queries "$RDIR" "shop\\.api\\{pid=$pid,exe=luajit,vm=0x[0-9a-f]+,env=test,host=web1\\}"
  expect_target_ok "$pid"
}

push_down() {
  local pid port
  port=$(free_port 47000)
  pid=$(start_luajit openresty "$work/demo.lua") || fail "target did not start"
  run_luaspy "$work/down.out" "$work/down.err" record -p "$pid" \
    --push "http://127.0.0.1:$port" --every 1 -d 2.5 -o "$work/down.folded"
  case_log "$work/down.err"
  [ "$RC" -eq 0 ] || fail "record exited $RC with the server down: $(head -c 300 "$work/down.err" | tr '\n' '|')"
  grep -q 'foo' "$work/down.folded" || fail "-o has no foo: sampling stopped?"
  grep -q 'luaspy: push: upload failed: .*retrying' "$work/down.err" || fail "no warning: $(head -c 300 "$work/down.err")"
  grep -q 'luaspy: push: 0 profiles sent to 127.0.0.1, [0-9]* dropped' "$work/down.err" ||
    fail "no summary of dropped profiles: $(tail -n 2 "$work/down.err")"
  expect_target_ok "$pid"
}

push_bad_input() {
  local args
  while IFS= read -r args; do
    # shellcheck disable=SC2086  # the arguments split on purpose
    run_luaspy "$work/bad.out" "$work/bad.err" record -p 1 $args
    expect_clean_error "$work/bad.out" "$work/bad.err"
    [ "$RC" -eq 2 ] || fail "record $args: exit $RC, want 2"
  done <<'EOF'
--push ftp://127.0.0.1/
--push 127.0.0.1:4040
--push http://
--push http://x --every 0
--push http://x --every 2d
--every 5s
--push http://x --push-label a
--push http://x --push-label 1x=y
--push http://x --push-label x=a,b
--push http://x --app a{b}
--push http://x -f svg
EOF
}

case_run push_uploads push_uploads
case_run push_retry push_retry
case_run push_down push_down
case_run push_bad_input push_bad_input
