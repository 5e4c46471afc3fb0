-- Why threads speed up I/O-bound work and not CPU-bound work.
--
--   gilua scripts/demo/io_vs_cpu.lua [timeline.svg]
--
-- The same jobs run one after another, then in threads: jobs that wait
-- (sleeps standing for downloads, and real HTTP requests to a local
-- server that takes 0.2 s per page) and jobs that compute (recursive
-- fib).  Waiting releases the GIL, so waits overlap; computing needs the
-- GIL, so computing threads only take turns.  For CPU-bound work the
-- answer is processes: the last row runs the same jobs as separate gilua
-- processes, which the OS spreads over the cores.  The threaded runs are
-- traced and drawn as an SVG timeline.
local threading = require("threading")
local time = require("time")
local http = require("http")
local socket = require("socket")

local svg = arg and arg[1] or "gil-timeline.svg"
local gilua = arg and arg[-1] or "gilua"
local ncpu = 2
do
  local p = io.popen("nproc 2>/dev/null")
  if p then
    ncpu = tonumber(p:read("l")) or ncpu
    p:close()
  end
end

-- {====================================================================
-- A local HTTP server (no network here): one thread per connection,
-- each response delayed 0.2 s, as a slow web server would.
-- =====================================================================

local server = assert(socket.bind("127.0.0.1", 0))
local _, port = server:getsockname()
local function serve(client)
  client:settimeout(5)
  local line = client:receive("*l")
  while line and line ~= "" do line = client:receive("*l") end
  time.sleep(0.2)
  local body = string.rep("gilua ", 100)
  client:send("HTTP/1.1 200 OK\r\nContent-Length: " .. #body ..
    "\r\nConnection: close\r\n\r\n" .. body)
  client:close()
end
threading.Thread{daemon = true, name = "http-server", target = function()
  while true do
    local client = server:accept()
    if client then
      threading.Thread{target = serve, args = {client}, daemon = true,
        name = "http-handler"}:start()
    end
  end
end}:start()
local url = string.format("http://127.0.0.1:%d/page", port)

-- }====================================================================

local function fib(n)
  if n < 2 then return n end
  return fib(n - 1) + fib(n - 2)
end

local function sequential(jobs)
  local t0 = time.perf_counter()
  for _, job in ipairs(jobs) do job() end
  return time.perf_counter() - t0
end

local function threaded(jobs)
  local t0 = time.perf_counter()
  local ts = {}
  for i, job in ipairs(jobs) do
    ts[i] = threading.Thread{target = job, name = "job-" .. i}
    ts[i]:start()
  end
  for _, t in ipairs(ts) do t:join() end
  return time.perf_counter() - t0
end

local function jobs_of(n, f, ...)
  local args = table.pack(...)
  local jobs = {}
  for i = 1, n do jobs[i] = function() return f(table.unpack(args, 1, args.n)) end end
  return jobs
end

local FIB = 32
local rows = {}
local function row(name, jobs)
  threading.gil.reset_stats()
  local seq = sequential(jobs)
  threading.gil.reset_stats()
  local thr = threaded(jobs)
  local st = threading.gil.stats()
  rows[#rows + 1] = {name = name, seq = seq, thr = thr, stats = st}
  io.write(string.format("  %-34s sequential %6.2f s   threads %6.2f s   speedup %4.1fx\n",
    name, seq, thr, seq / thr))
end

print(string.format("I/O-bound and CPU-bound jobs, one after another and in threads (%d cores)",
  ncpu))
local trace = svg:gsub("%.svg$", "") .. ".trace.json"
threading.gil.trace_start(trace)
row("8 downloads (sleep 0.25 s each)", jobs_of(8, time.sleep, 0.25))
row("8 HTTP requests (0.2 s per page)", jobs_of(8, function()
  local res = http.get(url)
  assert(res.status == 200 and #res.body == 600)
end))
row(string.format("4 x fib(%d) (pure Lua)", FIB), jobs_of(4, fib, FIB))
threading.gil.trace_stop()

-- What to use instead for CPU-bound work: processes.
local t0 = time.perf_counter()
local procs = {}
for i = 1, 4 do
  procs[i] = io.popen(string.format(
    "%s -e 'local function fib(n) if n < 2 then return n end return fib(n-1) + fib(n-2) end print(fib(%d))'",
    gilua, FIB))
end
for i = 1, 4 do
  assert(tonumber(procs[i]:read("a")))
  procs[i]:close()
end
local procsecs = time.perf_counter() - t0
local cpu = rows[3]
io.write(string.format("  %-34s sequential %6.2f s   processes %4.2f s speedup %4.1fx\n",
  string.format("4 x fib(%d) in 4 processes", FIB), cpu.seq, procsecs,
  cpu.seq / procsecs))

print()
print("What the GIL did during the threaded runs:")
print(string.format("  %-34s %8s %8s %12s %10s", "run", "switches", "forced", "waited (s)",
  "held (s)"))
for _, r in ipairs(rows) do
  print(string.format("  %-34s %8d %8d %12.3f %10.3f", r.name, r.stats.switches,
    r.stats.forced_switches, r.stats.wait_seconds, r.stats.held_seconds))
end

print()
print("Reading the numbers:")
print("  * Waiting threads release the GIL, so 8 waits of 0.25 s overlap into one.")
print("  * Computing threads need the GIL: they take turns every " ..
  threading.getswitchinterval() * 1000 .. " ms (the forced")
print("    switches), so 4 threads compute no faster than 1; each waits for the others.")
print("  * For CPU-bound work use processes (io.popen/os.execute of gilua, or one")
print("    universe per host thread when embedding): they run on all cores.")

threading.gil.timeline(trace, svg, "gilua: I/O-bound threads overlap, CPU-bound threads take turns")
os.remove(trace)
print()
print("The timeline of the threaded runs is in " .. svg)
print("(one lane per thread: green holds the GIL, orange waits for it, grey is blocked")
print(" in a call with the GIL released; render it with any browser or rsvg-convert)")
