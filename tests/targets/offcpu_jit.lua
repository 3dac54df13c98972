-- A JIT-heavy workload for counting mmap/mprotect: each round compiles
-- fresh traces (new closures of new chunks) and flushes them, so LuaJIT
-- allocates and protects machine code areas again and again. It waits
-- for a line on stdin before each burst, so that tracers attached first
-- see all of it: "go\n" runs ROUNDS rounds.
local ready = require "ready"
local ROUNDS = tonumber(arg[1]) or 20
jit.opt.start("sizemcode=64", "maxmcode=256")

local function burst()
  for r = 1, ROUNDS do
    for k = 1, 40 do
      local f = loadstring(([[
        local s = 0
        for i = 1, 300 do s = s + i * %d end
        return s]]):format(k * r))
      f()
    end
    jit.flush()
  end
end

ready()
while io.read("*l") do
  burst()
end
