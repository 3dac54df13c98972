-- Deep recursion: rec calls itself 1200 times (not as tail calls, so every
-- call keeps its frame), then spins at the bottom: 1201 rec frames in all.
-- JIT off.
--
-- expect: rec (deep.lua:20)
-- expect: rec (deep.lua:18) x1200
-- expect: main chunk (deep.lua:24)
-- vmstate: interpreted
local ready = require "ready"
jit.off()

local DEPTH = 1200

local function rec(n)
  if n > 0 then
    -- the recursive call is a statement, not "return rec(n - 1)": a tail
    -- call would replace the frame
    rec(n - 1)
  else
    local x = 0 ready() for i = 1, math.huge do x = x + i end
  end
end

rec(DEPTH)
