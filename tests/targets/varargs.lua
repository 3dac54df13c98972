-- Varargs: outer(...) calls va(...), va spins. Calls of vararg functions
-- have an extra VARG frame link (the main chunk is vararg too), which a
-- stack walker must step over without showing it.
--
-- expect: va (varargs.lua:14)
-- expect: outer (varargs.lua:18)
-- expect: main chunk (varargs.lua:21)
-- vmstate: interpreted
local ready = require "ready"
jit.off()

local function va(...)
  local x = select("#", ...)
  ready() for i = 1, math.huge do x = x + i end
end

local function outer(...)
  va(...)
end

outer(1, "two", 3)
