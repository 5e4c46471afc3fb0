-- Seed 003, "Method 1: Subclassing threading.Thread".
local threading = require("threading")
local time = require("time")

local MyThread = threading.Thread:extend()

function MyThread:init(name)
  threading.Thread.init(self)
  self.name = name
end

function MyThread:run()
  -- The method that runs when the thread is started.
  print(string.format("Thread %s: starting", self.name))
  time.sleep(2) -- Simulate a long-running I/O task
  print(string.format("Thread %s: finished", self.name))
end

-- Create and start the threads
local thread1 = MyThread("Alpha")
local thread2 = MyThread("Beta")
print("Main : before starting threads")
thread1:start()
thread2:start()
print("Main : waiting for threads to complete")
thread1:join() -- Wait for thread1 to finish
thread2:join() -- Wait for thread2 to finish
print("Main : all threads done")
