-- Seed 004, "Daemon Threads": a heartbeat that dies with the program.
local threading = require("threading")
local time = require("time")

local function background_task()
  while true do
    print("heartbeat")
    time.sleep(0.4)
  end
end

local t = threading.Thread{target = background_task, daemon = true}
t:start()
-- No need to join — it will die with the main program
time.sleep(1)
print("Main program done")
