-- Waits that others end, for offcpu --wakers: read_line blocks reading a
-- pipe that a shell (another process) writes a line into every 20 ms;
-- wake_thread starts a thread that blocks in sem_wait and, after a nap,
-- wakes it with sem_post from Lua (a waker with Lua frames), then joins
-- it. The JIT is off so that the frames are the interpreter's.
local ready = require "ready"
local ffi = require "ffi"
ffi.cdef [[
typedef union { char size[32]; long align; } sem_t;
int sem_init(sem_t *sem, int pshared, unsigned int value);
int sem_wait(sem_t *sem);
int sem_post(sem_t *sem);
int pthread_create(unsigned long *thread, const void *attr,
                   void *(*start)(void *), void *arg);
int pthread_join(unsigned long thread, void **ret);
int poll(void *fds, unsigned long nfds, int timeout);
]]
jit.off()

local pipe = assert(io.popen("while :; do echo x; sleep 0.02; done"))
local sem, thread = ffi.new("sem_t"), ffi.new("unsigned long[1]")
local waiter = ffi.cast("void *(*)(void *)", ffi.C.sem_wait)

local function read_line()
  local line = pipe:read("*l") -- not a tail call: keep this frame
  return line
end

local function wake_thread()
  ffi.C.sem_init(sem, 0, 0)
  assert(ffi.C.pthread_create(thread, nil, waiter, sem) == 0)
  ffi.C.poll(nil, 0, 10)
  ffi.C.sem_post(sem)
  ffi.C.pthread_join(thread[0], nil)
end

ready()
while true do
  read_line()
  wake_thread()
end
