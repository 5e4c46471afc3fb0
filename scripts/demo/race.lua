-- The lost-update race, and four ways to fix it.
--
--   gilua scripts/demo/race.lua [threads] [increments]
--
-- Four threads each add 1 to a shared counter many times.  Without
-- synchronisation, `counter = counter + 1` is three VM instructions (read,
-- add, write); the GIL may switch threads between any two of them, and the
-- other thread's increments made in between are overwritten: updates are
-- lost, as the Python tutorials say.  A Lock (acquire/release, `with`, or a
-- `<close>` guard) makes the three one step; a Queue avoids sharing the
-- counter at all.
-- luacheck: globals counter
local threading = require("threading")
local queue = require("queue")
local time = require("time")

local NTHREADS = tonumber(arg and arg[1]) or 4
local N = tonumber(arg and arg[2]) or 1000000
local lock = threading.Lock()

local function run(body)
  counter = 0
  local ts = {}
  local t0 = time.perf_counter()
  for i = 1, NTHREADS do
    ts[i] = threading.Thread(body)
    ts[i]:start()
  end
  for i = 1, NTHREADS do ts[i]:join() end
  return counter, time.perf_counter() - t0
end

local variants = {
  {"no lock", function()
    for _ = 1, N do counter = counter + 1 end
  end},
  {"lock:acquire()/release()", function()
    for _ = 1, N do
      lock:acquire()
      counter = counter + 1
      lock:release()
    end
  end},
  {"lock:with(f)", function()
    local function add() counter = counter + 1 end
    for _ = 1, N do lock:with(add) end
  end},
  {"<close> guard", function()
    for _ = 1, N do
      local _ <close> = lock:guard()
      counter = counter + 1
    end
  end},
}

print(string.format("%d threads x %d increments of one shared counter (expected %d)",
  NTHREADS, N, NTHREADS * N))
print(string.format("%-26s %12s %10s %8s", "variant", "final count", "lost", "seconds"))
for _, v in ipairs(variants) do
  local got, secs = run(v[2])
  print(string.format("%-26s %12d %10d %8.3f", v[1], got, NTHREADS * N - got, secs))
end

-- A queue: the workers send their increments; one thread owns the counter.
local q = queue.Queue(4096)
local t0 = time.perf_counter()
counter = 0
local owner = threading.Thread(function()
  local done = 0
  while done < NTHREADS do
    local n = q:get()
    if n == nil then done = done + 1 else counter = counter + n end
  end
end)
owner:start()
local ts = {}
local BATCH = 1000
for i = 1, NTHREADS do
  ts[i] = threading.Thread(function()
    for _ = 1, N // BATCH do q:put(BATCH) end
    q:put(N % BATCH)
    q:put(nil) -- this worker is done
  end)
  ts[i]:start()
end
for i = 1, NTHREADS do ts[i]:join() end
owner:join()
print(string.format("%-26s %12d %10d %8.3f", "queue to one owner", counter,
  NTHREADS * N - counter, time.perf_counter() - t0))
print()
print("Only the unsynchronised version loses updates; the switch interval is "
  .. threading.getswitchinterval() .. " s.")
