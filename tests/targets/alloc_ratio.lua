-- luaspy alloc target (tests/test_alloc.sh): big() and small() each make
-- one table per call, with an array part of 3000 and 1000 slots, equally
-- often: a 3:1 ratio of bytes allocated (24,072 : 8,072 with the table
-- headers) and 1:1 of allocations. Interpreted: compiled, both would be
-- inlined into the loop's trace and their allocations would show under
-- its trace#N frame.
jit.off()
local new = require("table.new")
local ready = require("ready")
sink = nil

local function big()
  sink = new(3000, 0)
end

local function small()
  sink = new(1000, 0)
end

ready()
while true do
  for _ = 1, 100 do
    big()
    small()
  end
end
