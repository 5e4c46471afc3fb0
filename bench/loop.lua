-- A 10M-iteration loop in one thread, pure Lua (gilua against the stock
-- lua5.4). Prints "RESULT <seconds>", timed with a monotonic clock.
local clock = require("clock")
local t0 = clock()
local x = 0
for i = 1, 1e7 do x = x + i % 7 end
local secs = clock() - t0
assert(x == 29999997, "the loop gave " .. x)
print("RESULT", secs)
