-- Sleeping in a C call: serve calls wait_input, which blocks in io.read()
-- on stdin. tests/lib/targets.sh gives every luajit target a FIFO opened
-- read-write as stdin, so the read never returns (no data, no EOF).
-- "local line = io.read()" rather than "return io.read()": a tail call
-- would drop wait_input's frame.
--
-- expect: builtin:io.read
-- expect: wait_input (sleep.lua:17)
-- expect: serve (sleep.lua:22)
-- expect: main chunk (sleep.lua:25)
-- vmstate: c
-- process: blocked
local ready = require "ready"
jit.off()

local function wait_input()
  ready() local line = io.read("*l")
  return line
end

local function serve()
  wait_input()
end

serve()
