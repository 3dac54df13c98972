-- luaspy jit target: a loop LuaJIT cannot compile. Creating a closure
-- (bytecode FNEW, 51) is not implemented in the trace recorder, so every
-- attempt to compile the loop at line 12 aborts with "NYI: bytecode 51",
-- and after a few dozen aborts LuaJIT blacklists it and only interprets
-- it. A healthy loop (line 17) runs next to it, compiled.
local ready = require "ready"

local function nyi(n)
  local s = 0
  for i = 1, n do
    local f = function() return i end
    s = s + f()
  end
  return s
end

local function ok(n) local s = 0 for i = 1, n do s = s + i end return s end

nyi(100000)
ready()
while true do nyi(1000) ok(1000) end
