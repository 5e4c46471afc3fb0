-- The convoy effect (GIL-NOTES section 2, Python issue 7946).
--
--   gilua scripts/demo/convoy.lua [seconds per measurement]
--
-- An echo server runs in a thread of this process; a client in another
-- process sends 1-byte requests as fast as it can.  Alone, the server
-- answers tens of thousands of requests a second.  Next to one CPU-bound
-- thread it must win the GIL back for every request: if the spinner holds
-- it, the server waits until its switch interval has passed.  The shorter
-- the interval, the sooner it gets the GIL back, and the more the spinner
-- pays in switches.  That is the fifo policy, CPython's.  Under the fair
-- policy a thread back from a wait asks a holder that ran more than its
-- share to step aside at once: the convoy is gone at any interval.
local threading = require("threading")
local socket = require("socket")

local SECONDS = tonumber(arg and arg[1]) or 0.5
local gilua = arg and arg[-1] or "gilua"

local server = assert(socket.bind("127.0.0.1", 0))
local _, port = server:getsockname()

local function serve()
  while true do
    local c = server:accept()
    if c then
      c:setoption("tcp-nodelay", true)
      while true do
        local b = c:receive(1)
        if not b then break end
        c:send(b)
      end
      c:close()
    end
  end
end
threading.Thread{target = serve, daemon = true, name = "echo-server"}:start()

local client = string.format([[
local socket = require("socket")
local time = require("time")
local c = assert(socket.connect("127.0.0.1", %d))
c:setoption("tcp-nodelay", true)
local n, t0 = 0, time.perf_counter()
while time.perf_counter() - t0 < %g do
  c:send("x")
  assert(c:receive(1) == "x")
  n = n + 1
end
print(n / (time.perf_counter() - t0))
c:close()]], port, SECONDS)
local path = os.tmpname()
local f = assert(io.open(path, "w"))
f:write(client)
f:close()

local function measure()
  local p = io.popen(gilua .. " " .. path)
  local rate = tonumber(p:read("a"))
  p:close()
  return rate or 0
end

local spinning = false
local function spinner()
  local n = 0
  while spinning do n = n + 1 end
end

print("1-byte echo round trips per second, server in this process")
print(string.format("%-8s %-16s %10s %14s %8s %10s %12s", "policy", "switch interval",
  "alone", "next to a spin", "ratio", "switches", "preemptions"))
for _, policy in ipairs{"fifo", "fair"} do
  threading.setswitchpolicy(policy)
  for _, interval in ipairs{0.1, 0.01, 0.005, 0.001, 1e-4} do
    threading.setswitchinterval(interval)
    local alone = measure()
    spinning = true
    local t = threading.Thread{target = spinner, name = "spinner"}
    t:start()
    threading.gil.reset_stats()
    local busy = measure()
    local st = threading.gil.stats()
    spinning = false
    t:join()
    print(string.format("%-8s %-16s %10.0f %14.0f %8.3f %10d %12d", policy, interval .. " s",
      alone, busy, busy / alone, st.switches, st.preemptions))
  end
end
threading.setswitchinterval(0.005)
os.remove(path)
print([[

What the numbers show: alone, the server answers as fast as the loopback
allows.  Next to a thread that never blocks, every request the server
receives must wait for the GIL; gilua's receive first tries with the GIL
held (data already there costs nothing), but when it has to wait, getting
the GIL back takes up to one switch interval under fifo.  Shorter
intervals bring the rate back up, and cost the spinner more switches: the
trade-off CPython lives with (about 100 requests/s at 5 ms in the classic
measurements; see bench/ for both side by side).  Under fair, the server
preempts the spinner as soon as it has data, whatever the interval: a
preemption per request, charged to the server, and the spinner still
gets its share.]])
