-- luaspy jit target: the mcode storm of the Traffic Server report.
-- LuaJIT must place machine code within +-1 GiB of its VM code (x86-64
-- relative jumps) and asks mmap for 64 KiB blocks at hints there. This
-- script first fills every free address in that window with PROT_NONE
-- reservations (ffi mmap, MAP_FIXED_NOREPLACE), with the JIT off so that
-- no machine-code area exists yet. Then each attempt to compile the hot
-- loop at line 48 makes 32 misplaced mmaps, each unmapped again, fails
-- with "failed to allocate mcode memory", flushes, and starts over.
local ready = require "ready"
local ffi = require "ffi"
jit.off()

ffi.cdef [[
void *mmap(void *addr, size_t len, int prot, int flags, int fd, long off);
]]
local MAP_CROWD = 0x02 + 0x20 + 0x4000 + 0x100000 -- PRIVATE ANON NORESERVE FIXED_NOREPLACE
local GiB = 2 ^ 30

local used, exe = {}, nil
for line in io.lines("/proc/self/maps") do
  local lo, hi, path = line:match("^(%x+)-(%x+) %S+ %S+ %S+ %S+%s*(.*)$")
  lo, hi = tonumber(lo, 16), tonumber(hi, 16)
  used[#used + 1] = { lo, hi }
  if not exe and path:find("luajit", 1, true) then exe = lo end
end
assert(exe, "luajit executable not in /proc/self/maps")
table.sort(used, function(a, b) return a[1] < b[1] end)

-- Free gaps of [exe - 1 GiB, exe + 1.25 GiB) (the VM code is in the
-- executable's first 256 MiB), reserved whole.
local lo, hi, crowded = math.max(exe - GiB, 0x10000), exe + GiB + GiB / 4, 0
local function reserve(a, b)
  if b <= a then return end
  local p = ffi.C.mmap(ffi.cast("void *", ffi.cast("uintptr_t", a)), b - a, 0, MAP_CROWD, -1, 0)
  if ffi.cast("intptr_t", p) ~= -1 then crowded = crowded + (b - a) end
end
for _, r in ipairs(used) do
  if r[1] > lo then reserve(lo, math.min(r[1], hi)) end
  lo = math.max(lo, r[2])
  if lo >= hi then break end
end
reserve(lo, hi)
io.stderr:write(("crowded %.0f MiB around 0x%x\n"):format(crowded / 2 ^ 20, exe))

jit.on()
local function hot(n)
  local s = 0
  for i = 1, n do s = (s + i * 3) % 1000003 end
  return s
end

ready()
while true do hot(1000) end
