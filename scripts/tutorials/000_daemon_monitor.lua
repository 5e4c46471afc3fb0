-- Seed 000, best practices: "Set daemon=True for background monitor
-- threads that should die when the main program exits."
local threading = require("threading")
local time = require("time")

local function monitor()
  while true do
    print("monitor: all systems normal")
    time.sleep(0.5)
  end
end

threading.Thread{target = monitor, daemon = true}:start()
time.sleep(1.2) -- the main program's work
print("Main program exits; the daemon monitor dies with it.")
