-- A user's program: one thread reads a 300,000-line file with io.lines
-- while three threads compute.  Prints "RESULT <seconds the reader took>"
-- (and, on stderr, its rate alone for scale).  Args: the file (made when
-- missing), the policy (fair or fifo).
local threading = require("threading")
local time = require("time")
local path = arg[1] or "/tmp/gilua-lines.txt"
threading.setswitchpolicy(arg[2] or "fair")
local f = io.open(path)
if not f then
  f = assert(io.open(path, "w"))
  for i = 1, 300000 do f:write("line ", i, " of some text to read back\n") end
  f:close()
else
  f:close()
end
local function read_all()
  local n = 0
  for _ in io.lines(path) do n = n + 1 end
  assert(n == 300000)
end
local t0 = time.perf_counter()
read_all()
local alone = time.perf_counter() - t0
local stop = false
local cpus = {}
for i = 1, 3 do
  cpus[i] = threading.Thread(function() local x = 0 while not stop do x = x + 1 end end)
  cpus[i]:start()
end
t0 = time.perf_counter()
read_all()
local took = time.perf_counter() - t0
stop = true
for i = 1, 3 do cpus[i]:join() end
print(string.format("INFO reader alone %.3f s, next to 3 compute threads %.3f s (%.1f x its fair share)",
  alone, took, took / (4 * alone)))
print("RESULT", took)
