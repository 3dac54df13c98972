-- Tail calls: start calls countdown(100), which tail-calls itself 100
-- times ("return countdown(n - 1)"), then spins. Each tail call replaces
-- the frame: one countdown frame is left, whose caller is start.
-- (A self tail call keeps the name unambiguous: LuaJIT names a frame from
-- its caller's call instruction, which for a tail-called g reached via
-- "return g()" inside f would say "f".)
--
-- expect: countdown (tail.lua:20)
-- expect: start (tail.lua:24)
-- expect: main chunk (tail.lua:27)
-- vmstate: interpreted
local ready = require "ready"
jit.off()

local function countdown(n)
  if n > 0 then
    return countdown(n - 1)
  end
  local x = 0
  ready() for i = 1, math.huge do x = x + i end
end

local function start()
  countdown(100)
end

start()
