-- traffic_server remap script for the offcpu and syscalls tests: the
-- seed's latency. /fork makes this Lua state's share of a large address
-- space (touched once), then forks for real through the FFI (glibc's
-- system() would use clone(CLONE_VM|CLONE_VFORK), which copies no page
-- tables): the child exits at once, the parent waits. fork() copies the
-- page tables holding mmap_lock for writing, so /fault requests on other
-- net threads, which map and touch fresh memory, wait in page faults.
-- tests/test_offcpu.sh installs it as the "/" remap (hello.lua's place).
local ffi = require "ffi"
ffi.cdef [[
int fork(void);
void _exit(int);
int waitpid(int pid, int *status, int options);
void *malloc(size_t size);
void *mmap(void *addr, size_t len, int prot, int flags, int fd, long off);
int munmap(void *addr, size_t len);
]]
local BIG = 256 * 1024 * 1024
local FAULT = 4 * 1024 * 1024
local PROT_RW, MAP_PRIVATE_ANON = 3, 0x22
local big

local function fork_child()
  local pid = ffi.C.fork()
  if pid == 0 then ffi.C._exit(0) end
  if pid > 0 then ffi.C.waitpid(pid, nil, 0) end
end

local function fault_in()
  local p = ffi.C.mmap(nil, FAULT, PROT_RW, MAP_PRIVATE_ANON, -1, 0)
  ffi.fill(p, FAULT, 1)
  ffi.C.munmap(p, FAULT)
end

local function handler()
  ts.say("HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
end

function do_remap()
  local uri = ts.client_request.get_uri()
  if uri == "/fork" then
    if not big then
      big = ffi.C.malloc(BIG)
      ffi.fill(big, BIG, 1)
    end
    fork_child()
  elseif uri == "/fault" then
    fault_in()
  end
  ts.http.intercept(handler)
  return 0
end
