-- traffic_server remap script for /spin/ (start_ats): do_remap calls
-- heavy, which spins forever, holding one ET_NET thread and one of
-- tslua's lua_States. do_remap is called by tslua from C, so it has no
-- name LuaJIT can derive ("*").
--
-- expect: heavy (spin.lua:19)
-- expect: * (spin.lua:23)
-- vmstate: interpreted

-- tslua's package.path doesn't include this directory: add it for "ready".
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = dir .. "?.lua;" .. package.path
local ready = require "ready"

jit.off(true, true)

local function heavy()
  local x = 0
  ready() for i = 1, math.huge do x = x + i end
end

function do_remap()
  heavy()
  return 0
end
