-- Seed 000, "Race conditions and Lock": 1000 threads each add 1 under a
-- lock.
-- luacheck: globals counter
local threading = require("threading")

local lock = threading.Lock()
counter = 0

local function increment()
  local _ <close> = lock:guard() -- Only one thread enters this block at a time
  counter = counter + 1
end

local threads = {}
for i = 1, 1000 do threads[i] = threading.Thread{target = increment} end
for _, t in ipairs(threads) do t:start() end
for _, t in ipairs(threads) do t:join() end
print(string.format("Final counter: %d", counter)) -- Always 1000
