-- A C function on top: build calls string.rep in a loop, building a
-- 16 MiB string each time (~10 ms of C), so string.rep is on top almost
-- all the time; between calls the VM may briefly be in the GC or in
-- build's own bytecode.
--
-- expect: builtin:string.rep
-- expect: build (cfunc.lua:17)
-- expect: main chunk (cfunc.lua:20)
-- vmstate: c
local ready = require "ready"
jit.off()

local SIZE = 16 * 1024 * 1024

local function build()
  local s
  ready() for i = 1, math.huge do s = string.rep("x", SIZE) end
end

build()
