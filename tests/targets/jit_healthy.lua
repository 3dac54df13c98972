-- luaspy jit target: a healthy JIT. One hot loop, compiled within the
-- first milliseconds and then only run: no aborts, no flushes, no late
-- compiles, so `luaspy jit` must give no verdict.
local ready = require "ready"

local function work(n)
  local s = 0
  for i = 1, n do s = (s + i * 3) % 1000003 end
  return s
end

work(1000)
ready()
while true do work(100000) end
