-- Coroutines: the main chunk calls runner, which resumes a coroutine whose
-- body calls inner, which spins. The dump shows the running coroutine's
-- frames, then (below builtin:coroutine.resume) the main thread's.
-- The body function has no name LuaJIT can derive (it is called by
-- resume, not by Lua code), hence the "*".
--
-- expect: inner (co.lua:21)
-- expect: * (co.lua:25)
-- expect: builtin:coroutine.resume
-- expect: runner (co.lua:29)
-- expect: main chunk (co.lua:32)
-- vmstate: interpreted
-- coroutine: yes
local ready = require "ready"
jit.off()

-- ready.mark() (in runner) records the main thread's stack for ready(),
-- which can't see past the coroutine boundary.
local function inner()
  local x = 0
  ready() for i = 1, math.huge do x = x + i end
end

local co = coroutine.create(function()
  inner()
end)

local function runner()
  ready.mark() coroutine.resume(co)
end

runner()
