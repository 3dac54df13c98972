-- nginx /t handler for the offcpu test: a request handler that blocks the
-- worker, reading a file (io.open/read: read syscalls) and then waiting
-- 50 ms for a shell command (os.execute: off CPU, "waiting for a child").
local _M = {}

local function read_file()
  local f = assert(io.open("/etc/services", "rb"))
  local s = f:read("*a")
  f:close()
  return #s
end

local function run_sleep()
  os.execute("sleep 0.05")
end

function _M.main()
  local n = read_file()
  run_sleep()
  ngx.say(n)
end

return _M
