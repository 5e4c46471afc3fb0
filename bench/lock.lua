-- Uncontended lock:acquire(); lock:release(), 1M times (arg: acquire,
-- with or guard): seconds per pair.
local threading = require("threading")
local time = require("time")
local form = arg[1] or "acquire"
local n = 1000000
local lock = threading.Lock()
local t0 = time.perf_counter()
if form == "acquire" then
  for _ = 1, n do lock:acquire(); lock:release() end
elseif form == "with" then
  local function f() end
  for _ = 1, n do lock:with(f) end
else
  for _ = 1, n do local _ <close> = lock:guard() end
end
print("RESULT", (time.perf_counter() - t0) / n)
