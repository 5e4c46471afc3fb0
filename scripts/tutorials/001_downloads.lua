-- Seed 001, "Creating Threads".
local threading = require("threading")
local time = require("time")

local function download_file(filename)
  print(string.format("Starting download: %s", filename))
  time.sleep(2) -- Simulate I/O work
  print(string.format("Finished: %s", filename))
end

-- Create threads
local thread1 = threading.Thread{target = download_file, args = {"data.csv"}}
local thread2 = threading.Thread{target = download_file, args = {"image.png"}}
-- Start them
thread1:start()
thread2:start()
-- Wait for both to finish
thread1:join()
thread2:join()
print("All downloads complete")
