-- Exits on its own while being dumped: builds a large heap (so the exit's
-- teardown takes a while), signals ready, spins in heavy for the number
-- of CPU milliseconds given as its argument (default 300), then os.exit(0).
-- For the "process exits during the dump" test: luaspy must either dump
-- it or fail cleanly. (No "-- expect:" header: its stack is not asserted.)
local ready = require "ready"
jit.off()

local ms = tonumber(arg and arg[1]) or 300
local heap = {}
for i = 1, 2e5 do heap[i] = { i, tostring(i) } end

local function heavy()
  local deadline = os.clock() + ms / 1000
  ready()
  local x = 0
  while os.clock() < deadline do
    for i = 1, 1e5 do x = x + i end
  end
end

heavy()
os.exit(0)
