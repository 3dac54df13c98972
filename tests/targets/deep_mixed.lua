-- A deep stack of mixed frames: a, b and c call each other DEPTH times
-- (three call sites, frames of different sizes, b a vararg function),
-- every tenth call of b through pcall, and below the middle the rest of
-- the recursion runs in a coroutine (coroutine.wrap). About 620 Lua frames
-- over two stacks, spinning at the bottom. tests/test_record.sh checks the
-- BPF walker's stack against dump's: deep stacks are walked through a
-- window of stack memory and a cache of call instructions.
-- vmstate: interpreted
local ready = require "ready"
jit.off()

local DEPTH = 600
local a, b, c
local wrapped = false

local function spin()
  local x = 0
  ready() for i = 1, math.huge do x = x + i end
end

function a(n)
  if n <= 0 then spin() end
  if n % 10 == 0 then
    local ok, err = pcall(b, n - 1, n)
    return ok, err
  end
  b(n - 1, n, n)
end

function b(n, ...)
  local t1, t2, t3, t4, t5 = n, n + 1, n + 2, n + 3, select("#", ...)
  c(n - 1)
  return t1 + t2 + t3 + t4 + t5
end

function c(n)
  if not wrapped and n < DEPTH / 2 then
    wrapped = true
    coroutine.wrap(a)(n - 1)
  else
    a(n - 1)
  end
end

a(DEPTH)
