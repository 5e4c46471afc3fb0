-- Seed 000, "What is threading in Python?": two downloads of 3 s each
-- run at the same time; the main program goes on meanwhile.
local threading = require("threading")
local time = require("time")

local function download_file(name)
  print(string.format("Starting download of %s...", name))
  time.sleep(3) -- Simulating a slow task
  print(string.format("Download of %s complete!", name))
end

-- Create threads
local t1 = threading.Thread{target = download_file, args = {"Report.pdf"}}
local t2 = threading.Thread{target = download_file, args = {"Image.png"}}
-- Start threads
t1:start()
t2:start()
print("Main program continues running!")
-- Wait for threads to finish
t1:join()
t2:join()
print("All downloads complete.")
