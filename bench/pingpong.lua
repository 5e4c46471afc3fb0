-- Two threads bounce a turn through two Events: round trips per second.
local threading = require("threading")
local time = require("time")
local n = 20000
local ping, pong = threading.Event(), threading.Event()
local other = threading.Thread(function()
  for _ = 1, n do
    ping:wait(); ping:clear()
    pong:set()
  end
end)
other:start()
local t0 = time.perf_counter()
for _ = 1, n do
  ping:set()
  pong:wait(); pong:clear()
end
local secs = time.perf_counter() - t0
other:join()
print("RESULT", n / secs)
