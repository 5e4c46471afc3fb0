-- Seed 001, "Daemon Threads": the program exits without waiting for it.
local threading = require("threading")
local time = require("time")

local function background_task()
  while true do
    time.sleep(0.3)
    print("background task still running")
  end
end

local thread = threading.Thread{target = background_task, daemon = true}
thread:start()
time.sleep(1)
print("Main done") -- Program exits even if thread is still running
