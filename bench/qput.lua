-- Queue throughput: one producer, one consumer, 200,000 items (arg: maxsize, 0 unbounded):
-- items per second.
local threading = require("threading")
local queue = require("queue")
local time = require("time")
local maxsize = tonumber(arg[1]) or 0
local n = 200000
local q = queue.Queue(maxsize)
local sum = 0
local t0 = time.perf_counter()
local consumer = threading.Thread(function()
  for _ = 1, n do sum = sum + q:get() end
end)
consumer:start()
for i = 1, n do q:put(i) end
consumer:join()
local secs = time.perf_counter() - t0
assert(sum == n * (n + 1) // 2)
print("RESULT", n / secs)
