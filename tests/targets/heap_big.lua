-- Heap target (tests/test_heap.sh): a global table BIG of 100,000
-- distinct strings, and a module "metrics" whose lookup table grows by
-- 500 entries every 100 ms and is never cleaned.
local ffi = require "ffi"
local ready = require "ready"
ffi.cdef "int usleep(unsigned int usec);"

BIG = {}
for i = 1, 100000 do BIG[i] = "big-string-" .. i end

local metrics = { lookup = {} }
package.loaded["metrics"] = metrics

local n = 0
local function grow()
  for _ = 1, 500 do
    n = n + 1
    metrics.lookup["id-" .. n] = n
  end
end

grow()
ready()
while true do
  grow()
  ffi.C.usleep(100000)
end
