-- Seed 001, "Subclassing Thread".
local threading = require("threading")
local time = require("time")

local DownloadTask = threading.Thread:extend()

function DownloadTask:init(filename)
  threading.Thread.init(self)
  self.filename = filename
end

function DownloadTask:run()
  print(string.format("Downloading %s", self.filename))
  time.sleep(2)
  print(string.format("Done: %s", self.filename))
end

-- Use it
local task = DownloadTask("report.pdf")
task:start()
task:join()
