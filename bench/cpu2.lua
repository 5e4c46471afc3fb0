-- Two fib calls in two threads against the same two calls one after the
-- other: the ratio threaded / sequential (1.0 = the GIL costs nothing).
local threading = require("threading")
local time = require("time")
local n = tonumber(arg[1]) or 32
local function fib(k) if k < 2 then return k end return fib(k - 1) + fib(k - 2) end
local t0 = time.perf_counter()
fib(n); fib(n)
local seq = time.perf_counter() - t0
t0 = time.perf_counter()
local a, b = threading.Thread(fib, n), threading.Thread(fib, n)
a:start(); b:start(); a:join(); b:join()
local thr = time.perf_counter() - t0
print("RESULT", thr / seq)
