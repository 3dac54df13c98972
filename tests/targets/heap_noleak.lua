-- nginx target of tests/test_alloc.sh: heap_leak.lua's handler without
-- the leak. The id is made and dropped; `luaspy leaks` must find nothing
-- above its noise floor.
local _M = {}

function _M.main()
  local id = string.format("%08x%08x", math.random(0, 0x7fffffff),
                           math.random(0, 0x7fffffff))
  ngx.say(#id > 0 and "ok" or "?")
end

return _M
