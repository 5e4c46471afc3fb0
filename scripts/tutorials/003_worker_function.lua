-- Seed 003, "Method 2: Using a Function and target".
local threading = require("threading")
local time = require("time")

local function worker_function(thread_name)
  -- Function to be run in a thread.
  print(string.format("%s: starting", thread_name))
  time.sleep(2)
  print(string.format("%s: finished", thread_name))
end

-- Create thread objects: 'target' is the function to run, 'args' its
-- arguments
local thread1 = threading.Thread{target = worker_function, args = {"Worker-1"}}
local thread2 = threading.Thread{target = worker_function, args = {"Worker-2"}}
print("Main : before starting threads")
thread1:start()
thread2:start()
print("Main : waiting for threads to complete")
thread1:join()
thread2:join()
print("Main : all threads done")
