-- nginx /t handler of tests/test_soak.sh: each request does a little of
-- what the soaked commands look at, so that under wrk they have work:
-- Lua on the CPU in a loop the JIT compiles (record, top, jit), and
-- garbage (alloc, leaks: a table and a string per request, dropped).
-- The answer never changes: the soak compares it before and after.
local _M = {}

local function sum(n)
  local t = {}
  for i = 1, n do t[i] = i end
  local s = 0
  for i = 1, n do s = s + t[i] end
  return s
end

function _M.main()
  local id = string.format("%08x", math.random(0, 0x7fffffff))
  ngx.say((#id == 8 and sum(100) == 5050) and "ok" or "?")
end

return _M
