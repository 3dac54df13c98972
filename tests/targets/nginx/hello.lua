-- Default /t handler of start_nginx (when no test module is given).
local _M = {}

function _M.main()
  ngx.say("hello")
end

return _M
