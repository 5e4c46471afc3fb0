-- A small HTTP/1.1 server written with gilua's socket module, for the tests,
-- the demos and the tutorials: one thread per connection, every response after `delay`
-- seconds.  Paths: /status/N answers with status N; /echo echoes the
-- request body; /redirect redirects to /; anything else says "hello".
--
--   local server = require("httpserver").start{delay = 0.2}
--   http.get(server.url .. "/page"); server.stop()
local threading = require("threading")
local socket = require("socket")
local time = require("time")

local M = {}

local function handle(client, delay)
  client:settimeout(10)
  local request = client:receive("*l")
  if not request then client:close() return end
  local method, path = request:match("^(%u+) (%S+)")
  local length = 0
  while true do
    local line = client:receive("*l")
    if not line or line == "" then break end
    local n = line:lower():match("^content%-length:%s*(%d+)")
    if n then length = tonumber(n) end
  end
  local body = length > 0 and client:receive(length) or ""
  if delay > 0 then time.sleep(delay) end
  local status, extra, out = 200, "", "hello from " .. tostring(path)
  local code = path and path:match("^/status/(%d+)$")
  if code then
    status, out = tonumber(code), "status " .. code
  elseif path == "/echo" then
    out = method .. " " .. body
  elseif path == "/redirect" then
    status, extra, out = 302, "Location: /\r\n", ""
  end
  client:send(string.format("HTTP/1.1 %d X\r\nContent-Length: %d\r\nX-Server: gilua\r\n%s" ..
    "Connection: close\r\n\r\n%s", status, #out, extra, out))
  client:close()
end

function M.start(opts)
  opts = opts or {}
  local delay = opts.delay or 0
  local server = assert(socket.bind(opts.host or "127.0.0.1", 0))
  local host, port = server:getsockname()
  local running = true
  server:settimeout(0.05)
  local t = threading.Thread{daemon = true, name = "httpserver", target = function()
    while running do
      local client = server:accept()
      if client then
        threading.Thread{daemon = true, target = handle, args = {client, delay}}:start()
      end
    end
    server:close()
  end}
  t:start()
  return {
    url = string.format("http://%s:%d", host:find(":") and "[" .. host .. "]" or host, port),
    port = port,
    stop = function() running = false; t:join() end,
  }
end

return M
