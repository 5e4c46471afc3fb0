-- Draws the GIL timeline the README shows (make timeline):
--
--   gilua scripts/demo/timeline.lua docs/gil-timeline.svg
--
-- First four "downloads" (each waits three times 30 ms and does a little
-- work in between): their waits overlap, the GIL is mostly free.  Then
-- three CPU-bound threads: they take turns on the GIL every switch
-- interval, and each spends most of its time waiting for it.
local threading = require("threading")
local time = require("time")

local svg = arg[1] or "gil-timeline.svg"
local trace = svg:gsub("%.svg$", "") .. ".trace.json"

local function work(n)
  local x = 0
  for i = 1, n do x = x + i % 7 end
  return x
end

local function download()
  for _ = 1, 3 do
    time.sleep(0.03) -- waiting for the network: the GIL is released
    work(200000)      -- parsing what came: needs the GIL
  end
end

local function fib(n)
  if n < 2 then return n end
  return fib(n - 1) + fib(n - 2)
end

local function run(prefix, n, f, ...)
  local ts = {}
  for i = 1, n do
    ts[i] = threading.Thread{target = f, args = table.pack(...), name = prefix .. i}
    ts[i]:start()
  end
  for _, t in ipairs(ts) do t:join() end
end

threading.gil.trace_start(trace)
run("download-", 4, download)
time.sleep(0.02)
run("compute-", 3, fib, 29)
threading.gil.trace_stop()
threading.gil.timeline(trace, svg,
  "I/O-bound threads overlap their waits; CPU-bound threads take turns on the GIL")
os.remove(trace)
print("wrote " .. svg)
