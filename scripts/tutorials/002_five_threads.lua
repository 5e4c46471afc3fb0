-- Seed 002, "How to Create and Run Threads": five threads wait 1 to 10 s
-- (random) and end at different points.
local threading = require("threading")
local time = require("time")

-- Simulates waiting time (e.g., an API call/response)
local function slow_function(thread_index)
  time.sleep(math.random(1, 10))
  print(string.format("Thread %d done!", thread_index))
end

local function run_threads()
  local threads = {}
  for thread_index = 0, 4 do
    local individual_thread = threading.Thread{target = slow_function, args = {thread_index}}
    threads[#threads + 1] = individual_thread
    individual_thread:start()
  end
  -- At this point, threads are running independently from the main flow of
  -- application and each other
  print("Main flow of application")
  -- This ensures that all threads finish before the main flow of
  -- application continues
  for _, individual_thread in ipairs(threads) do
    individual_thread:join()
  end
  print("All threads are done")
end

run_threads()
