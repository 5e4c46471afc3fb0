-- tap.lua: a small TAP harness for gilua's Lua tests.
--
--   local T = require("tap")
--   T.ok(cond, name); T.eq(got, want, name); T.raises(f, fragment, name)
--   T.near(got, want, name)   -- a duration: >= 0.6x and < 10x want
--   T.skip(name, why); T.diag(msg)
--   T.with_ticker(f)          -- ticks of another thread while f runs
--   T.case(name, f)           -- runs f protected: an error fails the case
--                             -- and the file goes on
--   T.leave(thread)           -- a thread the file means to leave running
--   T.done()                  -- the plan, a summary line, the exit status;
--                             -- fails if a thread is left running
local T = {}
local count, failed = 0, 0

local function report(pass, name, ...)
  count = count + 1
  if not pass then failed = failed + 1 end
  io.write(string.format("%sok %d - %s\n", pass and "" or "not ", count, name or ""))
  for i = 1, select("#", ...) do
    io.write("#   ", tostring((select(i, ...))), "\n")
  end
  io.stdout:flush()
  return pass
end

function T.ok(cond, name)
  return report(cond and true or false, name)
end

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v)
end

function T.eq(got, want, name)
  if got == want then return report(true, name) end
  return report(false, name, "got:  " .. show(got), "want: " .. show(want))
end

function T.raises(f, fragment, name)
  local ok, err = pcall(f)
  if ok then return report(false, name, "no error raised") end
  local msg = tostring(err)
  if msg:find(fragment, 1, true) then return report(true, name) end
  return report(false, name, "error: " .. msg, "wanted a fragment: " .. fragment)
end

function T.near(got, want, name)
  if got >= 0.6 * want and got < 10 * want then return report(true, name) end
  return report(false, name, string.format("got %.4f, want about %.4f", got, want))
end

function T.skip(name, why)
  count = count + 1
  io.write(string.format("ok %d - %s # SKIP %s\n", count, name, why))
end

function T.diag(msg)
  io.write("# ", tostring(msg), "\n")
end

-- Runs f while a second thread ticks every 10 ms; returns the ticks seen
-- while f ran, then f's results.  Ticks prove the GIL was free meanwhile.
function T.with_ticker(f)
  local threading = require("threading")
  local time = require("time")
  local ticks, stop = 0, false
  local t = threading.Thread(function()
    while not stop do
      time.sleep(0.01)
      ticks = ticks + 1
    end
  end)
  t:start()
  time.sleep(0.02)
  local before = ticks
  local res = table.pack(f())
  local seen = ticks - before
  stop = true
  t:join()
  return seen, table.unpack(res, 1, res.n)
end

function T.case(name, f)
  local ok, err = xpcall(f, debug.traceback)
  if not ok then report(false, name .. " (raised)", err) end
  return ok
end

local left = setmetatable({}, {__mode = "k"})
function T.leave(thread) left[thread] = true end

-- Threads still running that nobody meant to leave, after a grace period
-- for those about to end.
local function stray_threads()
  local threading = package.loaded.threading
  if not threading then return {} end
  local time = require("time")
  local deadline = time.monotonic() + 2
  repeat
    local stray = {}
    for _, t in ipairs(threading.enumerate()) do
      if t ~= threading.main_thread() and not left[t] and t:is_alive() then
        stray[#stray + 1] = t.name
      end
    end
    if #stray == 0 or time.monotonic() > deadline then return stray end
    time.sleep(0.02)
  until false
end

function T.done()
  local stray = stray_threads()
  if #stray > 0 then
    report(false, "no thread left running", "still running: " .. table.concat(stray, ", "))
  end
  io.write(string.format("1..%d\n# %d passed, %d failed\n", count, count - failed, failed))
  io.stdout:flush()
  os.exit(failed == 0 and 0 or 1)
end

return T
