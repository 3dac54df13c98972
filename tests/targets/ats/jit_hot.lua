-- traffic_server remap script for tests/test_jit.sh (installed as the "/"
-- remap, hello.lua's place): every request runs a hot loop, so each Lua
-- state that serves requests compiles a trace at the loop (line 7) early
-- and then only runs it: a healthy JIT.
local function checksum(n)
  local s = 0
  for i = 1, n do
    s = (s + i * 7) % 65521
  end
  return s
end

local function handler()
  ts.say("HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
end

function do_remap()
  ts.ctx.sum = checksum(2000)
  ts.http.intercept(handler)
  return 0
end
