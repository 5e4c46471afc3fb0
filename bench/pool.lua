-- ThreadPoolExecutor(8) (arg: map, submit or latency): tasks per second.
local futures = require("futures")
local time = require("time")
local form = arg[1] or "map"
local n = form == "latency" and 2000 or 10000
local function task(x) return x + 1 end
local ex = futures.ThreadPoolExecutor(8)
ex:submit(task, 0):result() -- a warm worker
local items = {}
for i = 1, n do items[i] = i end
local t0 = time.perf_counter()
if form == "map" then
  local r = ex:map(task, items)
  assert(#r == n and r[n] == n + 1)
elseif form == "submit" then
  local fs = {}
  for i = 1, n do fs[i] = ex:submit(task, i) end
  for i = 1, n do assert(fs[i]:result() == i + 1) end
else
  for i = 1, n do assert(ex:submit(task, i):result() == i + 1) end
end
local secs = time.perf_counter() - t0
ex:shutdown()
print("RESULT", n / secs)
