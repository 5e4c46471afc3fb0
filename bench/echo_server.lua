-- Echo server for the convoy benchmark: prints its port, echoes lines
-- until the client closes; with arg "spin", a thread spins in pure Lua.
local threading = require("threading")
local socket = require("socket")
local server = assert(socket.bind("127.0.0.1", 0))
local _, port = server:getsockname()
local stop = false
if arg[1] == "spin" then
  for _ = 1, tonumber(arg[2]) or 1 do
    threading.Thread{daemon = true, target = function()
      local n = 0
      while not stop do n = n + 1 end
    end}:start()
  end
end
print(port)
io.stdout:flush()
local c = server:accept()
c:setoption("tcp-nodelay", true)
while true do
  local data = c:receive(1)
  if not data then break end
  c:send(data)
end
stop = true
