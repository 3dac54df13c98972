-- traffic_server global script (plugin.config, start_ats): tags every
-- response, so a test can see the global hook ran.
function do_global_send_response()
  ts.client_response.header["X-Luaspy-Global"] = "1"
  return 0
end
