-- The demo workload (scripts/demo.sh): CPU-bound, JIT on.
-- heavy() sums 1..N; foo() calls heavy twice, bar() once; the main loop
-- calls foo then bar forever. A CPU profile should show foo with about
-- twice the samples of bar, both above the main chunk.
local N = 1e7

local function heavy()
  local sum = 0
  for i = 1, N do
    sum = sum + i
  end
  return sum
end

local function foo()
  local a = heavy()
  a = a + heavy()
  return a
end

local function bar()
  return (heavy())
end

while true do
  foo()
  bar()
end
