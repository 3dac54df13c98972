-- xpcall with an error handler: run calls xpcall(failing, handler),
-- failing raises an error, and the handler spins. The handler runs on top
-- of the erroring stack: handler, error, failing, xpcall, run, main chunk.
-- Neither failing nor handler is called by Lua code, so neither has a
-- name LuaJIT can derive ("*").
--
-- expect: * (xpcall.lua:19)
-- expect: builtin:error
-- expect: * (xpcall.lua:23)
-- expect: builtin:xpcall
-- expect: run (xpcall.lua:27)
-- expect: main chunk (xpcall.lua:30)
-- vmstate: interpreted
local ready = require "ready"
jit.off()

local function handler(msg)
  local x = #msg
  ready() for i = 1, math.huge do x = x + i end
end

local function failing()
  error("boom")
end

local function run()
  xpcall(failing, handler)
end

run()
