-- An uncontended lock taken and given back 1,000,000 times, in one of three
-- forms (arg: acquire, with or guard):
--   acquire: lock:acquire(); lock:release()
--   with:    lock:with(f)
--   guard:   do local _ <close> = lock:guard() end
-- Prints "RESULT <seconds per acquire+release>".
local threading = require("threading")
local time = require("time")
local form = arg[1] or "acquire"
local n = 1000000
local lock = threading.Lock()
local t0, secs
if form == "acquire" then
  t0 = time.perf_counter()
  for _ = 1, n do
    lock:acquire(); lock:release()
  end
  secs = time.perf_counter() - t0
elseif form == "with" then
  local function f() end
  t0 = time.perf_counter()
  for _ = 1, n do
    lock:with(f)
  end
  secs = time.perf_counter() - t0
elseif form == "guard" then
  t0 = time.perf_counter()
  for _ = 1, n do
    local _ <close> = lock:guard()
  end
  secs = time.perf_counter() - t0
else
  error("unknown form " .. form .. " (acquire, with or guard)")
end
assert(not lock:locked(), "the lock is still held")
assert(lock:acquire(false), "the lock cannot be taken again")
lock:release()
print("RESULT", secs / n)
