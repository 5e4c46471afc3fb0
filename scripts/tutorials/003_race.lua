-- Seed 003, "Example of a Race Condition".
-- luacheck: globals counter
local threading = require("threading")

-- A shared resource
counter = 0

local function increment()
  for _ = 1, 1000000 do
    counter = counter + 1 -- This is NOT an atomic operation!
  end
end

local threads = {}
for i = 1, 2 do
  local thread = threading.Thread{target = increment}
  threads[i] = thread
  thread:start()
end
for _, thread in ipairs(threads) do thread:join() end
print("Expected counter: 2,000,000")
print(string.format("Actual counter: %d", counter)) -- Will likely be less than 2,000,000
