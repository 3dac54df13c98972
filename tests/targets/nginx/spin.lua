-- nginx /spin: the seed's OpenResty example shape, spinning forever.
-- content_by_lua_block { require "spin".main() } -> main -> foo -> heavy,
-- heavy spins in a for loop (JIT off for this module's functions, so the
-- worker stays in the interpreter). It blocks the worker for good: the
-- harness kills nginx afterwards. The content_by_lua chunk is named after
-- the directive's nginx.conf line, hence the "*"; its code is on line 1.
--
-- expect: heavy (spin.lua:20)
-- expect: foo (spin.lua:24)
-- expect: main (spin.lua:28)
-- expect: main chunk (content_by_lua(nginx.conf:*):1)
-- vmstate: interpreted
local ready = require "ready"
local _M = {}

jit.off(true, true)  -- this module's functions only; nginx's stay JIT'able

local function heavy()
  local x = 0
  ready() for i = 1, math.huge do x = x + i end
end

local function foo()
  heavy()
end

function _M.main()
  foo()
end

return _M
