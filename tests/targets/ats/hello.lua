-- traffic_server remap script (start_ats): answers every request from Lua
-- through an intercept, so no origin server is needed.
local function handler()
  ts.say("HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
end

function do_remap()
  ts.http.intercept(handler)
  return 0
end
