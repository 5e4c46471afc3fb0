-- Draws the two timelines the README shows side by side (make timeline):
-- the same 60 ms of an echo server next to a CPU-bound thread, under the
-- fifo policy (CPython's: the convoy) and under the fair one.
--
--   gilua scripts/demo/policy_timeline.lua docs/gil-policy
--
-- writes docs/gil-policy-fifo.svg and docs/gil-policy-fair.svg.  The
-- client is a thread of this process too, so each request is two waits
-- for I/O: the client's receive and the server's.
local threading = require("threading")
local socket = require("socket")
local time = require("time")

local base = arg[1] or "gil-policy"

local function run(policy)
  threading.setswitchpolicy(policy)
  local server = assert(socket.bind("127.0.0.1", 0))
  local ip, port = server:getsockname()
  local stop = false
  local echo = threading.Thread{name = "echo server", target = function()
    local c = server:accept()
    while true do
      local b = c:receive(1)
      if not b then break end
      c:send(b)
    end
    c:close()
  end}
  echo:start()
  local spinner = threading.Thread{name = "CPU-bound", target = function()
    local x = 0
    while not stop do x = x + 1 end
  end}
  spinner:start()
  local n = 0
  local client = threading.Thread{name = "client", target = function()
    local c = assert(socket.connect(ip, port))
    c:setoption("tcp-nodelay", true)
    local t0 = time.monotonic()
    while time.monotonic() - t0 < 0.06 do
      c:send("x")
      c:receive(1)
      n = n + 1
    end
    c:close()
  end}
  local trace = os.tmpname() -- (a trace written to a slow disk slows the run)
  threading.gil.trace_start(trace)
  client:start()
  client:join()
  threading.gil.trace_stop()
  stop = true
  echo:join()
  spinner:join()
  server:close()
  local svg = base .. "-" .. policy .. ".svg"
  threading.gil.timeline(trace, svg, string.format(
    "policy %s: an echo server next to a CPU-bound thread, %d round trips in 60 ms", policy, n))
  os.remove(trace)
  print(string.format("%s: %d round trips in 60 ms, timeline in %s", policy, n, svg))
end

run("fifo")
run("fair")
