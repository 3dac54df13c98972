-- Heap target (tests/test_heap.sh): a heap that never sits still. Tables
-- and strings are made and dropped all the time, so the GC allocates,
-- sweeps and frees (and the string table resizes) while luaspy heap
-- walks it: a live snapshot must cope, skip and count what changed.
local ready = require "ready"

CHURN = {}
local i = 0
local function step()
  for _ = 1, 1000 do
    i = i + 1
    local t = { id = i, s = "churn-" .. i .. "-" .. math.random(), {} }
    CHURN[i % 50000] = t
    if i % 7 == 0 then CHURN[(i * 31) % 50000] = nil end
  end
end

step()
ready()
while true do step() end
