-- Seed 000, FAQ "What happens if I forget join()?": the main program goes
-- on; the non-daemon thread keeps the process alive until it finishes.
local threading = require("threading")
local time = require("time")

threading.Thread(function()
  time.sleep(1)
  print("Background thread finished (the process waited for it).")
end):start()
print("Main program reached its end without join().")
