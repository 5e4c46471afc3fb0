-- Seed 000, FAQ "What is the difference between start() and run()?":
-- start() launches the function in a new thread; run() executes it in the
-- current thread, sequentially.
local threading = require("threading")

local function where()
  print("running in " .. threading.current_thread().name)
end

local t = threading.Thread{target = where, name = "Worker"}
t:run()   -- runs in MainThread, like a plain call
t:start() -- runs in the new thread, Worker
t:join()
