-- nginx /block: the worker blocks in a C call with a known Lua stack:
-- main -> wait, which runs os.execute("sleep 3600") (the worker waits in
-- waitpid; the sleep child is in nginx's process group, so stopping the
-- group stops it too).
--
-- expect: builtin:os.execute
-- expect: wait (block.lua:16)
-- expect: main (block.lua:20)
-- expect: main chunk (content_by_lua(nginx.conf:*):1)
-- vmstate: c
-- process: blocked
local ready = require "ready"
local _M = {}

local function wait()
  ready() os.execute("sleep 3600")
end

function _M.main()
  wait()
end

return _M
