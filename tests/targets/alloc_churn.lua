-- luaspy leaks target (tests/test_alloc.sh): a "request" that builds 200
-- small tables (line 17), holds them while it waits, then drops them and
-- a full collection frees them. Every round hands the same blocks out in
-- the same order, so the tables found alive by leaks' two heap walks are
-- at the same addresses with the same contents, round after round: only
-- watching a block shows it is freed and made anew. keep() leaks one
-- table per round (line 22): that one stays.
jit.off()
local ffi = require("ffi")
local ready = require("ready")
ffi.cdef("int usleep(unsigned int usec);")
local kept = {}

local function request()
  local t = {}
  for i = 1, 200 do
    t[i] = { i = i }
  end
  ffi.C.usleep(50000) -- t is in flight while the request waits
end

local function keep(n) kept[#kept + 1] = { n = n } end

ready()
for n = 1, math.huge do
  request()
  keep(n)
  collectgarbage()
end
