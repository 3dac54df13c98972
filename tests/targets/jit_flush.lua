-- luaspy jit target: a machine-code flush loop. maxmcode is far too
-- small for the code that is hot: 24 distinct loops (lines 14-37), each
-- compiled to roughly 1 KiB of machine code, against a limit of 16 KiB in
-- 4 KiB areas. When the limit is reached LuaJIT flushes every trace
-- (lj_trace_flushall) and then compiles the same loops again, forever.
local ready = require "ready"
jit.opt.start("maxmcode=16", "sizemcode=4")

local L = {}
-- One function per line below, each with its own loop; the different
-- constants keep the traces apart. (Generated, then kept as is.)
local function f(k, n, a, b, c) return k, n, a, b, c end
local unpack = unpack or table.unpack
L[1] = function(n) local x, y = 0, 1 for i = 1, n do x = (x * 3 + i) % 1000003 y = (y + x * 7) % 999983 x = x + y % 5 end return x + y end
L[2] = function(n) local x, y = 1, 1 for i = 1, n do x = (x * 4 + i) % 1000002 y = (y + x * 9) % 999983 x = x + y % 6 end return x + y end
L[3] = function(n) local x, y = 2, 1 for i = 1, n do x = (x * 5 + i) % 1000001 y = (y + x * 11) % 999983 x = x + y % 7 end return x + y end
L[4] = function(n) local x, y = 3, 1 for i = 1, n do x = (x * 6 + i) % 1000000 y = (y + x * 13) % 999983 x = x + y % 8 end return x + y end
L[5] = function(n) local x, y = 4, 1 for i = 1, n do x = (x * 7 + i) % 999999 y = (y + x * 15) % 999983 x = x + y % 9 end return x + y end
L[6] = function(n) local x, y = 5, 1 for i = 1, n do x = (x * 8 + i) % 999998 y = (y + x * 17) % 999983 x = x + y % 10 end return x + y end
L[7] = function(n) local x, y = 6, 1 for i = 1, n do x = (x * 9 + i) % 999997 y = (y + x * 19) % 999983 x = x + y % 11 end return x + y end
L[8] = function(n) local x, y = 7, 1 for i = 1, n do x = (x * 10 + i) % 999996 y = (y + x * 21) % 999983 x = x + y % 12 end return x + y end
L[9] = function(n) local x, y = 8, 1 for i = 1, n do x = (x * 11 + i) % 999995 y = (y + x * 23) % 999983 x = x + y % 13 end return x + y end
L[10] = function(n) local x, y = 9, 1 for i = 1, n do x = (x * 12 + i) % 999994 y = (y + x * 25) % 999983 x = x + y % 14 end return x + y end
L[11] = function(n) local x, y = 10, 1 for i = 1, n do x = (x * 13 + i) % 999993 y = (y + x * 27) % 999983 x = x + y % 15 end return x + y end
L[12] = function(n) local x, y = 11, 1 for i = 1, n do x = (x * 14 + i) % 999992 y = (y + x * 29) % 999983 x = x + y % 16 end return x + y end
L[13] = function(n) local x, y = 12, 1 for i = 1, n do x = (x * 15 + i) % 999991 y = (y + x * 31) % 999983 x = x + y % 17 end return x + y end
L[14] = function(n) local x, y = 13, 1 for i = 1, n do x = (x * 16 + i) % 999990 y = (y + x * 33) % 999983 x = x + y % 18 end return x + y end
L[15] = function(n) local x, y = 14, 1 for i = 1, n do x = (x * 17 + i) % 999989 y = (y + x * 35) % 999983 x = x + y % 19 end return x + y end
L[16] = function(n) local x, y = 15, 1 for i = 1, n do x = (x * 18 + i) % 999988 y = (y + x * 37) % 999983 x = x + y % 20 end return x + y end
L[17] = function(n) local x, y = 16, 1 for i = 1, n do x = (x * 19 + i) % 999987 y = (y + x * 39) % 999983 x = x + y % 21 end return x + y end
L[18] = function(n) local x, y = 17, 1 for i = 1, n do x = (x * 20 + i) % 999986 y = (y + x * 41) % 999983 x = x + y % 22 end return x + y end
L[19] = function(n) local x, y = 18, 1 for i = 1, n do x = (x * 21 + i) % 999985 y = (y + x * 43) % 999983 x = x + y % 23 end return x + y end
L[20] = function(n) local x, y = 19, 1 for i = 1, n do x = (x * 22 + i) % 999984 y = (y + x * 45) % 999983 x = x + y % 24 end return x + y end
L[21] = function(n) local x, y = 20, 1 for i = 1, n do x = (x * 23 + i) % 999983 y = (y + x * 47) % 999983 x = x + y % 25 end return x + y end
L[22] = function(n) local x, y = 21, 1 for i = 1, n do x = (x * 24 + i) % 999982 y = (y + x * 49) % 999983 x = x + y % 26 end return x + y end
L[23] = function(n) local x, y = 22, 1 for i = 1, n do x = (x * 25 + i) % 999981 y = (y + x * 51) % 999983 x = x + y % 27 end return x + y end
L[24] = function(n) local x, y = 23, 1 for i = 1, n do x = (x * 26 + i) % 999980 y = (y + x * 53) % 999983 x = x + y % 28 end return x + y end

for k = 1, #L do L[k](10) end
ready()
while true do
  for k = 1, #L do L[k](300) end
end
