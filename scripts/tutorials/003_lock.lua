-- Seed 003, "Solution: Locks".
-- luacheck: globals counter
local threading = require("threading")

counter = 0
-- Create a lock object
local lock = threading.Lock()

local function increment_with_lock()
  for _ = 1, 1000000 do
    lock:with(function() -- acquires and releases the lock
      counter = counter + 1
    end)
  end
end

local threads = {}
for i = 1, 2 do
  local thread = threading.Thread{target = increment_with_lock}
  threads[i] = thread
  thread:start()
end
for _, thread in ipairs(threads) do thread:join() end
print("Expected counter: 2,000,000")
print(string.format("Actual counter: %d", counter)) -- Correctly prints 2000000
