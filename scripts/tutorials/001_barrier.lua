-- Seed 001, "Other Synchronization Primitives": a Barrier for phased
-- processing.
local threading = require("threading")

local function process_phase(barrier, phase)
  print(string.format("Phase %d starting", phase))
  barrier:wait() -- Wait for all threads
  print(string.format("Phase %d complete", phase))
end

local barrier = threading.Barrier(3)
local threads = {}
for i = 1, 3 do
  threads[i] = threading.Thread{target = process_phase, args = {barrier, i}}
end
for _, t in ipairs(threads) do t:start() end
for _, t in ipairs(threads) do t:join() end
