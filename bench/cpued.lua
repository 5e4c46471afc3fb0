-- CPython's ccbench "cpued" case (Nir Aides, bpo-7946): two pure-Lua
-- threads and one that computes about 1 ms then calls time.sleep(0), for
-- 2 s.  Prints each thread's share of the work done (ideal: a third each)
-- and "RESULT <the smallest share>".  Arg: the policy (fair or fifo).
local threading = require("threading")
local time = require("time")
threading.setswitchpolicy(arg[1] or "fair")
local stop = false
local done = {0, 0, 0}
local function work(i, yield)
  return function()
    while not stop do
      local t0 = time.perf_counter()
      repeat
        for _ = 1, 1000 do end
        done[i] = done[i] + 1
      until time.perf_counter() - t0 >= 0.001 or not yield
      if yield then time.sleep(0) end
    end
  end
end
local ts = {threading.Thread(work(1, false)), threading.Thread(work(2, false)),
  threading.Thread(work(3, true))}
for _, t in ipairs(ts) do t:start() end
time.sleep(2)
stop = true
for _, t in ipairs(ts) do t:join() end
local total = done[1] + done[2] + done[3]
local shares, least = {}, 1
for i = 1, 3 do
  shares[i] = done[i] / total
  least = math.min(least, shares[i])
end
print(string.format("INFO %s: shares %.3f %.3f %.3f (the third yields)", threading.getswitchpolicy(),
  shares[1], shares[2], shares[3]))
print("RESULT", least)
