-- Seed 000, FAQ "How do I stop a thread forcefully?": there is no safe
-- way to kill a thread; use a control variable (flag) that the thread
-- itself checks to exit the loop.
local threading = require("threading")
local time = require("time")

local stop = threading.Event() -- the flag
local function worker()
  local rounds = 0
  while not stop:is_set() do
    rounds = rounds + 1
    time.sleep(0.1)
  end
  print(string.format("Worker saw the flag and stopped after %d rounds.", rounds))
end

local t = threading.Thread(worker)
t:start()
time.sleep(0.55)
print("Main sets the stop flag.")
stop:set()
t:join()
print("Worker has finished.")
