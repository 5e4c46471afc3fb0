-- The tutorials' first lessons, run for real in gilua: two downloads that
-- overlap (the GIL is released while a thread sleeps), a counter that
-- loses updates without a lock (a switch can land between any two VM
-- instructions), and the same counter made exact with a Lock.
--
--   gilua scripts/demo.lua
--
-- luacheck: globals counter
local threading = require("threading")
local time = require("time")

local function section(title)
  print()
  print("== " .. title .. " ==")
end

section("1. Two downloads, each taking 3 s (tutorial 000)")
local function download_file(name)
  print(string.format("Starting download of %s...", name))
  time.sleep(3) -- simulating a slow task: the GIL is released meanwhile
  print(string.format("Download of %s complete!", name))
end
local t0 = time.perf_counter()
local t1 = threading.Thread{target = download_file, args = {"Report.pdf"}}
local t2 = threading.Thread{target = download_file, args = {"Image.png"}}
t1:start()
t2:start()
print("Main program continues running!")
t1:join()
t2:join()
print("All downloads complete.")
local wall = time.perf_counter() - t0
print(string.format("-> %.2f s for 6 s of downloading: the two waits overlapped (%.1fx)",
  wall, 6 / wall))

section("2. The locked counter over 1000 threads (tutorial 000)")
local lock = threading.Lock()
counter = 0
local function increment()
  lock:with(function() counter = counter + 1 end)
end
t0 = time.perf_counter()
local threads = {}
for i = 1, 1000 do threads[i] = threading.Thread(increment) end
for _, t in ipairs(threads) do t:start() end
for _, t in ipairs(threads) do t:join() end
print(string.format("Final counter: %d", counter))
print(string.format("-> 1000 threads started and joined in %.3f s", time.perf_counter() - t0))

section("3. The race: 4 threads x 1,000,000 unlocked increments (tutorial 001)")
local N = 1000000
local function run4(body)
  counter = 0
  local ts = {}
  local start = time.perf_counter()
  for i = 1, 4 do
    ts[i] = threading.Thread(body)
    ts[i]:start()
  end
  for i = 1, 4 do ts[i]:join() end
  return counter, time.perf_counter() - start
end
local got, secs = run4(function()
  for _ = 1, N do counter = counter + 1 end
end)
print(string.format("Without a lock: %d of %d (%d updates lost) in %.3f s",
  got, 4 * N, 4 * N - got, secs))
got, secs = run4(function()
  for _ = 1, N do
    lock:acquire()
    counter = counter + 1
    lock:release()
  end
end)
print(string.format("With a Lock:    %d of %d in %.3f s", got, 4 * N, secs))
got, secs = run4(function()
  for _ = 1, N do
    local _ <close> = lock:guard()
    counter = counter + 1
  end
end)
print(string.format("With a guard:   %d of %d in %.3f s", got, 4 * N, secs))
print()
print(string.format("Switch interval: %g s; threads alive now: %d",
  threading.getswitchinterval(), threading.active_count()))
