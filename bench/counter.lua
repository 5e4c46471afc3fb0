-- NTHREADS threads share 1,000,000 locked `counter = counter + 1`.
-- luacheck: globals counter
local threading = require("threading")
local time = require("time")
local nthreads = tonumber(arg[1]) or 4
local total = 1000000
local lock = threading.Lock()
counter = 0
local function work(k)
  for _ = 1, k do
    lock:acquire()
    counter = counter + 1
    lock:release()
  end
end
local t0 = time.perf_counter()
local ts = {}
for i = 1, nthreads do
  ts[i] = threading.Thread(work, total // nthreads)
  ts[i]:start()
end
for i = 1, nthreads do ts[i]:join() end
local secs = time.perf_counter() - t0
assert(counter == total, "counter is " .. counter)
print("RESULT", secs)
