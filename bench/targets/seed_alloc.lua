-- The microbenchmark of the leak story (issue #5, seed 003): every request
-- builds 33 tables of 500 small tables ({i = i}), and leaks one random id
-- into a module-level lookup table (line 15), as the real case did.
local _M = {}
local lookup = {}

function _M.main()
  for _ = 1, 33 do
    local t = {}
    for i = 1, 500 do
      table.insert(t, { i = i })
    end
  end
  local id = string.format("%08x%08x", math.random(0, 0x7fffffff), math.random(0, 0x7fffffff))
  lookup[id] = ngx.now()
  ngx.say("ok")
end

return _M
