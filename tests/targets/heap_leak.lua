-- nginx heap target (tests/test_heap.sh): the leak of issue #5. Each
-- request stores a fresh random id in a module-level lookup table that
-- nothing ever cleans; luaspy heap --diff must name that table, here
-- an upvalue of the handler: upvalue "lookup" of main (.../test.lua:9).
local _M = {}
local lookup = {}

function _M.main()
  lookup[string.format("%08x%08x", math.random(0, 0x7fffffff),
                       math.random(0, 0x7fffffff))] = ngx.now()
  ngx.say("ok")
end

return _M
