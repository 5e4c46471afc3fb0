-- time: sleep releases the GIL; the clocks.
local T = require("tap")
local threading = require("threading")
local time = require("time")

local t0 = time.perf_counter()
time.sleep(0.2)
T.near(time.perf_counter() - t0, 0.2, "sleep(0.2) takes about 0.2 s")
T.ok(time.perf_counter() - t0 >= 0.2, "sleep never returns early")
time.sleep(0)
T.ok(true, "sleep(0) returns")
T.raises(function() time.sleep(-1) end, "sleep length must be non-negative", "negative sleep")
T.raises(function() time.sleep(0 / 0) end, "sleep length must be non-negative", "NaN sleep")
T.raises(function() time.sleep("x") end, "number expected", "non-number sleep")
T.raises(function() time.sleep() end, "number expected", "missing sleep length")

T.ok(math.abs(time.time() - os.time()) <= 1, "time.time() is the epoch clock")
T.eq(math.type(time.time()), "float", "time.time() is a float")
local prev, back = time.monotonic(), false
for _ = 1, 100000 do
  local now = time.monotonic()
  if now < prev then back = true end
  prev = now
end
T.ok(not back, "monotonic() never goes back")
local smallest = math.huge
for _ = 1, 1000 do
  local a = time.perf_counter()
  local b = time.perf_counter()
  while b == a do b = time.perf_counter() end
  smallest = math.min(smallest, b - a)
end
T.ok(smallest < 1e-5, "perf_counter resolves below 10 µs (" .. smallest .. ")")

-- 200 threads sleeping at once: the waits overlap
local ts = {}
t0 = time.perf_counter()
for i = 1, 200 do
  ts[i] = threading.Thread(time.sleep, 0.2)
  ts[i]:start()
end
for i = 1, 200 do ts[i]:join() end
local wall = time.perf_counter() - t0
T.ok(wall < 1.5, string.format("200 threads sleeping 0.2 s finish in %.3f s", wall))
T.ok(wall >= 0.2, "and not before 0.2 s")
T.done()
