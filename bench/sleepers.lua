-- 100 threads each sleeping 0.1 s: start them all, then join them all.
-- Prints "RESULT <wall seconds>".
local threading = require("threading")
local time = require("time")
local n = 100
local woke, woke_lock = 0, threading.Lock()
local function sleeper()
  time.sleep(0.1)
  woke_lock:acquire()
  woke = woke + 1
  woke_lock:release()
end
local t0 = time.perf_counter()
local ts = {}
for i = 1, n do
  ts[i] = threading.Thread(sleeper)
  ts[i]:start()
end
for i = 1, n do ts[i]:join() end
local secs = time.perf_counter() - t0
assert(woke == n, woke .. " of " .. n .. " sleepers woke")
assert(secs >= 0.1, "slept less than 0.1 s")
print("RESULT", secs)
