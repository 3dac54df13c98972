-- luaspy jit target: an abort storm. Code generated at run time (as
-- template engines and rule compilers do) keeps bringing new loops that
-- LuaJIT cannot compile: each chunk's loop gets hot, its recording aborts
-- at the closure it creates ("NYI: bytecode 51") half a dozen times with
-- growing penalties, and then the next chunk arrives with a new loop. The
-- chunks are named "jit_aborts_gen", their loop is on line 1. The last
-- 5000 chunks are kept, so that new loops get new addresses (LuaJIT's
-- penalty cache is keyed by bytecode address).
local ready = require "ready"

local code = "local s = 0 for i = 1, 3000 do local g = function() return i end s = s + g() end return s"
local keep, n = {}, 0
local function step()
  local f = load(code, "=jit_aborts_gen")
  n = n + 1
  keep[n % 5000] = f
  return f()
end

step()
ready()
while true do step() end
