-- NTHREADS threads (arg, default 4) share 1,000,000 locked increments of a
-- global counter: lock:acquire(); counter = counter + 1; lock:release().
-- The count must be exact. Prints "RESULT <seconds>" (start to last join).
-- luacheck: globals counter
local threading = require("threading")
local time = require("time")
local nthreads = tonumber(arg[1]) or 4
local total = 1000000
assert(total % nthreads == 0, "threads must divide 1,000,000")
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
if counter ~= total then
  error(string.format("counter is %d, not %d", counter, total))
end
print("RESULT", secs)
