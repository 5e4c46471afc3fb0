-- socket: LuaSocket's TCP core; every wait releases the GIL.
-- luacheck: ignore 311
local T = require("tap")
local threading = require("threading")
local socket = require("socket")
local time = require("time")

local with_ticker = T.with_ticker

local server = assert(socket.bind("127.0.0.1", 0))
local host, port, family = server:getsockname()
T.ok(host == "127.0.0.1" and port > 0 and family == "inet", "bind and getsockname")
T.ok(tostring(server):find("tcp{server}", 1, true), "tostring names the kind")

-- accept blocks without the GIL
local connector = threading.Thread(function()
  time.sleep(0.3)
  local c = assert(socket.connect("127.0.0.1", port))
  c:send("line one\r\nline two\nrest")
  time.sleep(0.3)
  c:send(" and more")
  c:close()
end)
connector:start()
local seen, client = with_ticker(function() return server:accept() end)
T.ok(client ~= nil, "accept returns a client")
T.ok(seen >= 10, "ticks continue while accept waits (" .. seen .. ")")
local peer, pport = client:getpeername()
T.ok(peer == "127.0.0.1" and pport > 0, "getpeername")
T.eq(client:receive("*l"), "line one", "receive *l strips CR LF")
T.eq(client:receive("l"), "line two", "receive l")
T.eq(client:receive(4), "rest", "receive a count")
local data
seen, data = with_ticker(function() return client:receive("*a") end)
T.eq(data, " and more", "receive *a reads until closed")
T.ok(seen >= 10, "ticks continue while receive waits (" .. seen .. ")")
connector:join()
local d, err = client:receive("*l")
T.ok(d == nil and err == "closed", "receive on a closed peer says closed")
client:close()

-- timeouts and partial results
local pair = threading.Thread(function()
  local c = assert(socket.connect("127.0.0.1", port))
  c:send("partial")
  time.sleep(0.5)
  c:close()
end)
pair:start()
client = server:accept()
client:settimeout(0.1)
local t0 = time.perf_counter()
local r, e, partial = client:receive("*l")
T.ok(r == nil and e == "timeout" and partial == "partial", "timeout returns the partial line")
T.near(time.perf_counter() - t0, 0.1, "after about the timeout")
r, e, partial = client:receive(100, "pre:")
T.ok(r == nil and e == "timeout" and partial == "pre:", "prefix joins the partial result")
pair:join()
client:close()
server:settimeout(0.05)
r, e = server:accept()
T.ok(r == nil and e == "timeout", "accept with a timeout")
server:settimeout(nil)

-- select
local readable, writable, serr
seen, readable, writable, serr = with_ticker(function() return socket.select({server}, nil, 0.3) end)
T.ok(#readable == 0 and serr == "timeout", "select times out")
T.ok(seen >= 10, "ticks continue while select waits (" .. seen .. ")")
local later = threading.Thread(function()
  time.sleep(0.1)
  local c = socket.connect("127.0.0.1", port)
  time.sleep(0.2)
  c:close()
end)
later:start()
readable = socket.select({server}, nil, 5)
T.ok(readable[1] == server and readable[server] == 1, "select: a readable server")
local sc = server:accept()
readable, writable = socket.select(nil, {sc}, 1)
T.eq(writable[1], sc, "select: a writable client")
later:join()
sc:close()

-- connect failures, refused and unresolvable
local free = socket.bind("127.0.0.1", 0)
local _, freeport = free:getsockname()
free:close()
local c, cerr = socket.connect("127.0.0.1", freeport)
T.ok(c == nil and cerr == "connection refused", "connect to a closed port is refused")
c, cerr = socket.connect("no-such-host.invalid", 80)
T.ok(c == nil and type(cerr) == "string", "an unknown host fails: " .. tostring(cerr))
T.raises(function() socket.connect("127.0.0.1", 70000) end, "port out of range", "bad port")
T.raises(function() socket.bind() end, "string expected", "bind without host")

-- 200 echo round trips between threads
local es = assert(socket.bind("127.0.0.1", 0))
local _, eport = es:getsockname()
local echo = threading.Thread(function()
  local conn = es:accept()
  conn:setoption("tcp-nodelay", true)
  while true do
    local line = conn:receive("*l")
    if not line then break end
    conn:send(line .. "\n")
  end
  conn:close()
end)
echo:start()
c = assert(socket.connect("127.0.0.1", eport))
T.eq(c:setoption("tcp-nodelay", true), 1, "setoption tcp-nodelay")
local good = 0
for i = 1, 200 do
  local msg = "ping " .. i
  assert(c:send(msg .. "\n") == #msg + 1)
  if c:receive("*l") == msg then good = good + 1 end
end
T.eq(good, 200, "200 echo round trips across threads")
T.eq(c:send("abcdef", 2, 4), 4, "send(data, i, j) returns the last index sent")
T.eq(c:send("\n"), 1, "send")
T.eq(c:receive("*l"), "bcd", "the slice arrived")
c:shutdown("send")
T.ok(echo:join(5), "shutdown(send) ends the peer's loop")
c:close()
T.raises(function() c:send("x") end, "closed socket", "send on a closed socket")

-- IPv6, if the loopback has it
local s6 = socket.bind("::1", 0)
if s6 then
  local _, p6, fam6 = s6:getsockname()
  local c6 = socket.connect("::1", p6)
  local a6 = s6:accept()
  c6:send("six\n")
  T.ok(fam6 == "inet6" and a6:receive("*l") == "six", "IPv6 on ::1")
  c6:close(); a6:close(); s6:close()
else
  T.skip("IPv6 on ::1", "no IPv6 loopback here")
end

-- a master socket step by step
local m = socket.tcp()
T.ok(tostring(m):find("tcp{master}", 1, true), "socket.tcp() is a master")
T.eq(m:bind("127.0.0.1", 0), 1, "master:bind")
T.eq(m:listen(), 1, "master:listen makes a server")
T.ok(tostring(m):find("tcp{server}", 1, true), "now a server")
m:close()
server:close()
T.done()
