-- A 10M-iteration loop (pure Lua).
local t0 = os.clock()
local x = 0
for i = 1, 10000000 do x = x + i % 7 end
assert(x > 0)
print("RESULT", os.clock() - t0)
