-- Metamethod: lookup reads a missing key of a table whose __index is a
-- function; that function spins. LuaJIT names it from the instruction
-- that triggered it: "__index" (a metamethod).
--
-- expect: __index (meta.lua:14)
-- expect: lookup (meta.lua:18)
-- expect: main chunk (meta.lua:22)
-- vmstate: interpreted
local ready = require "ready"
jit.off()

local proxy = setmetatable({}, { __index = function(t, key)
  local x = #key
  ready() for i = 1, math.huge do x = x + i end
end })

local function lookup()
  local v = proxy.missing
  return v
end

lookup()
