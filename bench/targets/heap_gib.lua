-- bench/run's 1 GiB heap: what an application server's Lua heap holds,
-- built until the GC accounts BENCH_HEAP_MIB MiB (default 1100: about
-- 1 GiB is left once the garbage of building it is collected).
--
-- Per user record: a table with string keys, nested tables (tags, meta,
-- meta.flags), strings of varied sizes (8 to 800 bytes), a closure with
-- an upvalue, a cdata struct; every third record a session (a table keyed
-- by a long string, with a variable-length cdata buffer); an index by name;
-- every 5000th record a 64 KiB string. Writes "ready" to $BENCH_READY once
-- built, then sleeps (the heap stays as it is).
local ffi = require "ffi"
ffi.cdef "typedef struct { double x, y; int32_t id; } bench_point;"

local target = tonumber(os.getenv("BENCH_HEAP_MIB")) or 1100
local words = {}
for i = 1, 4096 do
  words[i] = ("w%x-"):format(i * 2654435761 % 1048573):rep(1 + i % 5)
end
-- A distinct string of n to 2n bytes.
local function str(i, n)
  return words[i % 4096 + 1] .. i .. ("x"):rep(n + i % n)
end

DB = { users = {}, sessions = {}, index = {}, blobs = {} }
local users, sessions, index = DB.users, DB.sessions, DB.index
local i = 0
while collectgarbage("count") < target * 1024 do
  for _ = 1, 10000 do
    i = i + 1
    local u = {
      id = i,
      name = str(i, 8),
      email = str(i + 1, 16) .. "@example.com",
      bio = str(i + 2, i % 50 == 0 and 400 or 40),
      tags = { words[i % 4096 + 1], words[i * 7 % 4096 + 1], "t" .. i % 100 },
      meta = { created = i * 1000, score = i / 7, flags = { a = true, b = i % 2 == 0 } },
      pos = ffi.new("bench_point", i, -i, i),
    }
    u.greet = function() return u.name end
    users[i] = u
    index[u.name] = u
    if i % 3 == 0 then
      sessions[str(i, 24)] = { user = u, hits = i % 97, buf = ffi.new("uint8_t[?]", 64 + i % 512) }
    end
    if i % 5000 == 0 then DB.blobs[#DB.blobs + 1] = str(i, 65536) end
  end
end
collectgarbage()
io.stderr:write(("heap_gib: %d records, %.0f MiB\n"):format(i, collectgarbage("count") / 1024))
local f = assert(io.open(assert(os.getenv("BENCH_READY")), "w"))
f:write("ready")
f:close()
while true do os.execute("sleep 1") end
