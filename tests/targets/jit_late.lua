-- luaspy jit target: a rarely taken path that gets hot only late. The
-- dispatcher (main) is kept interpreted (jit.off(main)), so only its
-- callees count towards LuaJIT's thresholds. The hot path (work's loop,
-- line 22) is compiled at once. Every 2 s main calls housekeeping, whose
-- 20-iteration loop counts 40 towards the hotloop threshold of 112: the
-- third call, 5-6 s after the start, compiles it (line 30), long after
-- any warm-up. With the hot counters reset every second (luaspy jit --write
-- --decay 1) it never gets there and stays interpreted.
--
-- Wall-clock seconds (os.time), not CPU time: on a busy machine the
-- target gets a fraction of a CPU. Why not a branch inside a compiled
-- loop: when its side exit gets compiled depends on how LuaJIT stitched
-- the traces around the C call, which varies from run to run. Why not a shorter loop called more often:
-- LuaJIT then starts recording at the loop's last iteration and aborts
-- ("leaving loop in root trace") every time.
local ready = require "ready"

local PERIOD = 2

local function work(n)
  local s = 0
  for i = 1, n do
    s = (s + i * 7) % 1000003
  end
  return s
end

local function housekeeping(t)
  local n = 0
  for k = 1, 20 do n = n + #t + k end
  return n
end

local function main()
  local t, next_at = {1, 2, 3}, os.time() + PERIOD
  ready()
  while true do
    work(20000)
    if os.time() >= next_at then
      housekeeping(t)
      next_at = next_at + PERIOD
    end
  end
end

work(1000)
jit.off(main)
main()
