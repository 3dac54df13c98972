-- Blocking under known Lua frames, for offcpu and syscalls: handler naps
-- in a C call (poll with a 20 ms timeout: off CPU, "poll"), reads a file
-- (read syscalls), and runs a shell command (os.execute: system() starts
-- it with clone and waits for it: off CPU, "waiting for a child").
-- The JIT is off so that the frames are the interpreter's, line by line.
local ready = require "ready"
local ffi = require "ffi"
ffi.cdef "int poll(void *fds, unsigned long nfds, int timeout);"
jit.off()
local path = arg[1] or "/etc/services"

local function nap()
  ffi.C.poll(nil, 0, 20)
end

local function read_file()
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return #s
end

local function run_sleep()
  os.execute("sleep 0.05")
end

local function handler()
  nap()
  read_file()
  run_sleep()
end

ready()
while true do
  handler()
end
