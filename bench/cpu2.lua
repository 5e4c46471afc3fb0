-- Two CPU-bound calls, fib(N) (arg, default 34: about 0.3 s each here), in
-- two threads against the same two calls one after the other (each twice:
-- sequential, threaded, threaded, sequential). Prints
-- "RESULT <threaded / sequential>" (1.0: the GIL costs nothing) and an
-- INFO line with both times.
local threading = require("threading")
local time = require("time")
local n = tonumber(arg[1]) or 34
local function fib(k)
  if k < 2 then return k end
  return fib(k - 1) + fib(k - 2)
end
local results = {}
local function call(i) results[i] = fib(n) end

local function sequential(i)
  local t0 = time.perf_counter()
  call(i); call(i + 1)
  return time.perf_counter() - t0
end

local function threaded(i)
  local t0 = time.perf_counter()
  local a, b = threading.Thread(call, i), threading.Thread(call, i + 1)
  a:start(); b:start()
  a:join(); b:join()
  return time.perf_counter() - t0
end

-- In the order sequential, threaded, threaded, sequential, so that a drift
-- in the machine's pace weighs on both alike.
local seq = sequential(1)
local thr = threaded(3) + threaded(5)
seq = seq + sequential(7)

for i = 1, 8 do
  assert(results[i] == results[1], "call " .. i .. " of fib(" .. n .. ") gave " .. tostring(results[i]))
end
print(string.format("INFO fib(%d): sequential %.3f s, threaded %.3f s (2 runs each)",
  n, seq, thr))
print("RESULT", thr / seq)
