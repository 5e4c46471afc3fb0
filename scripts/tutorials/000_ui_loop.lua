-- Seed 000, "Preventing GUI freezes": the heavy work runs in a thread, so
-- the main loop (standing for Tkinter's mainloop) keeps handling events.
local threading = require("threading")
local time = require("time")

local function heavy_task()
  time.sleep(1) -- a long download or computation off the main loop
  print("Background task finished.")
end

local worker = threading.Thread(heavy_task)
worker:start()
local ticks = 0
while worker:is_alive() do -- the main loop stays responsive
  ticks = ticks + 1
  print(string.format("UI event loop tick %d: window responsive", ticks))
  time.sleep(0.25)
end
worker:join()
print("The window never froze.")
