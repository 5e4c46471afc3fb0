-- Seed 002, the method table: Thread(), start(), is_alive(), join(),
-- run() and local(), each in use.
local threading = require("threading")
local time = require("time")

local data = threading["local"]() -- .local(): data specific to each thread
data.owner = "main"

local function task(name)
  data.owner = name -- this thread's own value
  time.sleep(0.2)
  print(string.format("%s sees data.owner = %s", name, data.owner))
end

local t = threading.Thread(task, "worker") -- .Thread()
print("before start, is_alive: " .. tostring(t:is_alive())) -- .is_alive()
t:start() -- .start()
print("after start, is_alive: " .. tostring(t:is_alive()))
t:join() -- .join()
print("after join, is_alive: " .. tostring(t:is_alive()))
print("main sees data.owner = " .. data.owner)
threading.Thread(task, "run-in-main"):run() -- .run(): in this thread
print("after run() in main, data.owner = " .. data.owner)
