-- 100 threads each sleeping 0.1 s: the wall time.
local threading = require("threading")
local time = require("time")
local t0 = time.perf_counter()
local ts = {}
for i = 1, 100 do
  ts[i] = threading.Thread(time.sleep, 0.1)
  ts[i]:start()
end
for i = 1, 100 do ts[i]:join() end
print("RESULT", time.perf_counter() - t0)
