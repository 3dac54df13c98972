-- Readiness signal for the test targets (require "ready").
--
-- A target calls ready() on the very line where it then blocks or spins
-- ("ready() for i = 1, math.huge do ... end"), so that the caller's line
-- seen here is the line a profiler sees later.
--
-- ready() writes the Lua stack as LuaJIT itself sees it (debug.getinfo),
-- one frame a line, top-first, in luaspy's frame naming
-- ("NAME (CHUNK:LINE)", "main chunk (CHUNK:LINE)", "C:?"), to the file
-- named by $LUASPY_READY (atomically: tmp file + rename), or to stderr
-- when that is unset. tests/lib/targets.sh waits for the file;
-- tests/test_targets.sh compares its contents with the target's
-- "-- expect:" header, so a header can't drift from its script.
--
-- Frames of other coroutines are invisible to debug.getinfo; a resumer
-- calls ready.mark() on the line of its coroutine.resume() to record its
-- own stack, which ready() then appends below a "C:?" line standing for
-- the resume builtin.
local M = {}
local marked = nil

local function stack(level)
  local out = {}
  while true do
    local info = debug.getinfo(level + 1, "nSl")
    if not info then break end
    local chunk = info.source:gsub("^[@=]", ""):gsub("^.*/", "")
    if info.what == "main" then
      out[#out + 1] = ("main chunk (%s:%d)"):format(chunk, info.currentline)
    elseif info.what == "Lua" then
      out[#out + 1] = ("%s (%s:%d)"):format(info.name or "?", chunk, info.currentline)
    else
      out[#out + 1] = "C:?"
    end
    level = level + 1
  end
  return out
end

-- Record the caller's stack (to be appended by ready()).
function M.mark()
  marked = stack(2)
end

local function signal()
  local frames = stack(3)
  if marked then
    frames[#frames + 1] = "C:?"
    for _, f in ipairs(marked) do frames[#frames + 1] = f end
  end
  local text = table.concat(frames, "\n") .. "\n"
  local path = os.getenv("LUASPY_READY")
  if not path or path == "" then
    io.stderr:write("ready\n", text)
    return
  end
  local f = assert(io.open(path .. ".tmp", "w"))
  f:write(text)
  f:close()
  assert(os.rename(path .. ".tmp", path))
end

return setmetatable(M, { __call = function(_) signal() end })
