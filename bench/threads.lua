-- start+join of 2,000 no-op threads, one after another: seconds per thread.
local threading = require("threading")
local time = require("time")
local n = 2000
local function noop() end
local t0 = time.perf_counter()
for _ = 1, n do
  local t = threading.Thread(noop)
  t:start()
  t:join()
end
print("RESULT", (time.perf_counter() - t0) / n)
