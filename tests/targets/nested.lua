-- Nested calls: the main chunk calls foo, foo calls heavy, heavy spins
-- forever in a numeric for loop. JIT off, so the VM stays in the
-- interpreter.
--
-- expect: heavy (nested.lua:16)
-- expect: foo (nested.lua:20)
-- expect: main chunk (nested.lua:23)
-- vmstate: interpreted
local ready = require "ready"
jit.off()

-- ready() sits on the spinning line so the reported line is that line;
-- the loop keeps heavy (and its callers) on the stack all the time.
local function heavy()
  local x = 0
  ready() for i = 1, math.huge do x = x + i end
end

local function foo()
  heavy()
end

foo()
