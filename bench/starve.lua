-- Starvation under the GIL (issue 13, T8): 4 CPU-bound threads and 8 echo
-- threads serving clients in another process, for some seconds, while the
-- main thread waits.  Prints every thread's longest wait for the GIL and
-- "RESULT <the longest wait of any thread, in seconds>".
-- Args: the policy (fair or fifo), the seconds (10).
local threading = require("threading")
local socket = require("socket")
threading.setswitchpolicy(arg[1] or "fair")
local seconds = tonumber(arg[2]) or 10
local srv = assert(socket.bind("127.0.0.1", 0))
local _, port = srv:getsockname()
local stop = false
local threads = {}
for i = 1, 4 do
  threads[#threads + 1] = threading.Thread{name = "spinner-" .. i, target = function()
    local x = 0
    while not stop do x = x + 1 end
  end}
end
for i = 1, 8 do
  threads[#threads + 1] = threading.Thread{name = "echo-" .. i, target = function()
    local c = srv:accept()
    while true do
      local b = c:receive(1)
      if not b then break end
      c:send(b)
    end
    c:close()
  end}
end
for _, t in ipairs(threads) do t:start() end
threading.gil.reset_stats()
local clients = io.popen(string.format("/usr/bin/python3 echo_clients.py %d 8 %g", port, seconds))
local rate = clients:read("a"):match("RESULT%s+(%S+)")
clients:close()
stop = true
for _, t in ipairs(threads) do t:join() end
local s = threading.gil.stats()
local worst, who = 0, "?"
for _, r in ipairs(s.threads) do
  if r.longest_wait_seconds > worst and r.acquisitions > 0 then
    worst, who = r.longest_wait_seconds, r.name
  end
end
print(string.format("INFO %s: echo %s round trips/s, longest wait %.2f ms (%s), %d preemptions",
  threading.getswitchpolicy(), rate, worst * 1e3, who, s.preemptions))
print("RESULT", worst)
