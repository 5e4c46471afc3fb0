-- Seed 004, "Thread Synchronization with Locks".
-- luacheck: globals counter
local threading = require("threading")

counter = 0
local lock = threading.Lock()

local function increment()
  for _ = 1, 100000 do
    local _ <close> = lock:guard()
    counter = counter + 1
  end
end

local threads = {}
for i = 1, 5 do threads[i] = threading.Thread{target = increment} end
for _, t in ipairs(threads) do t:start() end
for _, t in ipairs(threads) do t:join() end
print(string.format("Final count: %d", counter)) -- Always 500000
