-- Seed 004, "The threading Module".
local threading = require("threading")

local function greet(name)
  print(string.format("Hello, %s!", name))
end

local t1 = threading.Thread{target = greet, args = {"Alice"}}
local t2 = threading.Thread{target = greet, args = {"Bob"}}
t1:start()
t2:start()
t1:join()
t2:join()
