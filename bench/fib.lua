-- fib(N) recursive in one thread, pure Lua (gilua against the stock lua5.4).
-- Prints "RESULT <seconds>", timed with a monotonic clock.
local clock = require("clock")
local n = tonumber(arg[1]) or 30
local function fib(k)
  if k < 2 then return k end
  return fib(k - 1) + fib(k - 2)
end
local expected = {[27] = 196418, [30] = 832040, [32] = 2178309, [34] = 5702887}
local t0 = clock()
local r = fib(n)
local secs = clock() - t0
assert(expected[n] == nil or r == expected[n], "fib(" .. n .. ") gave " .. r)
print("RESULT", secs)
