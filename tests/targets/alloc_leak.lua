-- luaspy leaks target (tests/test_alloc.sh): handle() keeps one new table
-- per call in a module-level list that is never trimmed (line 16), and
-- makes garbage it drops (line 17), like a request handler with a leak.
-- Interpreted: compiled, handle() would be inlined into the loop's trace
-- and its allocations would show at the trace's line (the call, 23).
jit.off()
local ffi = require("ffi")
local ready = require("ready")
ffi.cdef("int usleep(unsigned int usec);")
local seen = {}
local n = 0
sink = nil

local function handle()
  n = n + 1
  seen[#seen + 1] = { id = n }
  sink = { n, n + 1, n + 2 }
end

ready()
while true do
  for _ = 1, 100 do
    handle()
  end
  ffi.C.usleep(10000) -- a server waits for its next requests
end
