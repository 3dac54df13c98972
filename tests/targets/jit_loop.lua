-- JIT-compiled hot loop: main chunk -> outer -> hot; hot runs a numeric
-- for loop that LuaJIT traces after a few dozen iterations (JIT on, the
-- default). ready() is called once, after the first 1e8 iterations, so by
-- then the loop has long been compiled and runs as a trace: the VM state
-- is the trace number and the top frame is the trace, started at line 18.
-- The line of hot itself is whatever the trace's snapshot says ("*").
--
-- expect: trace#* (jit_loop.lua:18)
-- expect: hot (jit_loop.lua:*)
-- expect: outer (jit_loop.lua:24)
-- expect: main chunk (jit_loop.lua:27)
-- vmstate: trace
local ready = require "ready"

local function hot()
  local s, signalled = 0, false
  while true do
    for i = 1, 1e8 do s = s + i end
    if not signalled then signalled = true ready() end
  end
end

local function outer()
  hot()
end

outer()
