-- Seed 001, "Locks: Protecting Shared Data".
-- luacheck: globals counter
local threading = require("threading")

counter = 0
local lock = threading.Lock()

local function increment()
  for _ = 1, 1000000 do
    local _ <close> = lock:guard()
    counter = counter + 1
  end
end

local threads = {}
for i = 1, 4 do threads[i] = threading.Thread{target = increment} end
for _, t in ipairs(threads) do t:start() end
for _, t in ipairs(threads) do t:join() end
print(counter) -- Exactly 4000000
