-- pcall: the main chunk calls run, run calls pcall(guarded, 1), and the
-- pcall'd function guarded spins. guarded is called by the builtin, so
-- LuaJIT has no name for it ("*").
--
-- expect: * (pcall.lua:15)
-- expect: builtin:pcall
-- expect: run (pcall.lua:19)
-- expect: main chunk (pcall.lua:23)
-- vmstate: interpreted
local ready = require "ready"
jit.off()

local function guarded(a)
  local x = a
  ready() for i = 1, math.huge do x = x + i end
end

local function run()
  local ok, err = pcall(guarded, 1)
  return ok, err
end

run()
