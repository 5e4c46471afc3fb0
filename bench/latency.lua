-- ccbench's latency mode, ported: a server thread answers pings from a
-- client process while N CPU-bound threads run.  Prints "RESULT <the mean
-- delay of a ping, in seconds>".  Args: N (1), the policy (fair or fifo).
local threading = require("threading")
local socket = require("socket")
local n = tonumber(arg[1]) or 1
threading.setswitchpolicy(arg[2] or "fair")
local srv = assert(socket.bind("127.0.0.1", 0))
local _, port = srv:getsockname()
local stop = false
local cpus = {}
for i = 1, n do
  cpus[i] = threading.Thread(function() local x = 0 while not stop do x = x + 1 end end)
  cpus[i]:start()
end
local server = threading.Thread(function()
  local c = srv:accept()
  c:setoption("tcp-nodelay", true)
  while true do
    local b = c:receive(1)
    if not b then break end
    c:send(b)
  end
end)
server:start()
local p = io.popen(string.format("/usr/bin/python3 latency_client.py %d 100 0.02 2>&1", port))
local out = p:read("a")
p:close()
stop = true
for i = 1, n do cpus[i]:join() end
server:join()
print("INFO " .. threading.getswitchpolicy() .. ", " .. n .. " CPU threads: "
  .. (out:match("delay[^\n]*") or out))
print("RESULT", tonumber(out:match("RESULT%s+(%S+)")))
