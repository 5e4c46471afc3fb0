-- fib(N) in one thread (pure Lua): gilua against the stock lua5.4.
local n = tonumber(arg[1]) or 30
local function fib(k) if k < 2 then return k end return fib(k - 1) + fib(k - 2) end
local t0 = os.clock()
assert(fib(n) > 0)
print("RESULT", os.clock() - t0)
