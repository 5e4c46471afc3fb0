-- Seed 001, "Sharing Data Between Threads": an unsynchronised counter.
-- luacheck: globals counter
local threading = require("threading")

counter = 0

local function increment()
  for _ = 1, 1000000 do
    counter = counter + 1
  end
end

local threads = {}
for i = 1, 4 do threads[i] = threading.Thread{target = increment} end
for _, t in ipairs(threads) do t:start() end
for _, t in ipairs(threads) do t:join() end
print(counter) -- Likely less than 4000000!
