-- Start and join 2,000 no-op threads, one after another (start one, join
-- it, then the next). Prints "RESULT <seconds per thread>".
local threading = require("threading")
local time = require("time")
local n = 2000
local ran = 0
local function noop() ran = ran + 1 end
local t0 = time.perf_counter()
for _ = 1, n do
  local t = threading.Thread(noop)
  t:start()
  t:join()
end
local secs = time.perf_counter() - t0
assert(ran == n, ran .. " of " .. n .. " threads ran")
assert(threading.active_count() == 1, "threads still alive after join")
print("RESULT", secs / n)
