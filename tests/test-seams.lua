-- The seams (issue 10): every wait Ctrl-C can end, handles whose close
-- wakes their waiters, errors that name their function, and the layers.
local T = require("tap")
local threading = require("threading")
local time = require("time")
local socket = require("socket")
local GILUA = os.getenv("GILUA") or "build/gilua"

local function tmpfile(text)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

-- Runs GILUA on 'script', sends it 'sigs' SIGINTs after 'delay' seconds;
-- returns its exit status and stderr.  (timeout --foreground: plain
-- timeout would forward each SIGINT twice, to the child and its group.)
local function interrupted(script, sigs, delay)
  local path = tmpfile(script)
  local errf = os.tmpname()
  local kills = string.rep("kill -INT $p; sleep 0.05; ", sigs or 1)
  local cmd = string.format("timeout --foreground -s KILL 20 %s %s 2>%s & p=$!; sleep %s; %s"
    .. "wait $p; echo $?", GILUA, path, errf, delay or 0.5, kills)
  local p = io.popen(cmd)
  local out = p:read("a")
  p:close()
  local f = io.open(errf)
  local err = f:read("a")
  f:close()
  os.remove(path)
  os.remove(errf)
  return tonumber(out:match("(%d+)%s*$")), err
end

local prelude = "local socket = require('socket'); local time = require('time'); "
  .. "local threading = require('threading'); local http = require('http'); "

T.case("Ctrl-C ends a main thread blocked in each kind of wait", function()
  local fifo = os.tmpname()
  os.remove(fifo)
  os.execute("mkfifo " .. fifo)
  local cases = {
    {"accept", "socket.bind('127.0.0.1', 0):accept()"},
    {"receive", "local s = socket.bind('127.0.0.1', 0); local ip, port = s:getsockname(); "
      .. "local c = assert(socket.connect(ip, port)); c:receive('*l')"},
    {"select", "local s = socket.bind('127.0.0.1', 0); socket.select({s}, nil)"},
    {"http.get against a server that never answers",
      "local s = socket.bind('127.0.0.1', 0); local ip, port = s:getsockname(); "
      .. "http.get('http://' .. ip .. ':' .. port .. '/', {timeout = false})"},
    {"io.read on a pipe", "io.popen('sleep 1'):read('l')"},
    {"io.lines on a FIFO", "local w = io.popen('sleep 2 > " .. fifo .. "'); "
      .. "for l in io.lines('" .. fifo .. "') do end"},
    {"os.execute", "os.execute('exec sleep 10')"},
    {"Condition:wait", "local c = threading.Condition(); c:acquire(); c:wait()"},
  }
  for _, case in ipairs(cases) do
    local t0 = time.monotonic()
    local status, err = interrupted(prelude .. case[2])
    T.ok(status == 1 and err:find("interrupted!", 1, true),
      "Ctrl-C ends " .. case[1] .. " (status " .. tostring(status) .. ")")
    T.ok(time.monotonic() - t0 < 5, "and at once")
  end
  os.remove(fifo)
end)

T.case("a second Ctrl-C while the first is pending gets the default action", function()
  -- a pattern match with exponential backtracking: a long C call that
  -- never waits through gilua, so the first interrupt stays pending
  local status, err = interrupted("print(('a'):rep(40):find(('a-'):rep(20) .. 'b'))", 2)
  T.eq(status, 130, "killed by SIGINT (128 + 2)")
  T.eq(err, "", "without a message")
end)

T.case("the first Ctrl-C during the wait for non-daemon threads at exit ends the program",
  function()
    local status, err = interrupted(prelude
      .. "threading.Thread(function() time.sleep(30) end):start(); print('main done')")
    T.eq(status, 130, "exit status 130")
    T.ok(err:find("interrupted!", 1, true), "and the message")
  end)

T.case("closing a socket from another thread wakes its receive and its send", function()
  local srv = assert(socket.bind("127.0.0.1", 0))
  local ip, port = srv:getsockname()
  local c = assert(socket.connect(ip, port))
  local peer = assert(srv:accept())
  local got, err
  local t = threading.Thread(function() got, err = c:receive("*l") end)
  t:start()
  time.sleep(0.1)
  local t0 = time.monotonic()
  c:close()
  T.ok(t:join(5), "the receiver returned")
  T.ok(got == nil and err == "closed", "with nil, \"closed\" (" .. tostring(err) .. ")")
  T.ok(time.monotonic() - t0 < 1, "at once")
  -- a send larger than the socket buffers, nobody reading at the other end
  local c2 = assert(socket.connect(ip, port))
  local peer2 = assert(srv:accept())
  local big = string.rep("x", 64 * 1024 * 1024)
  local sent, serr
  t = threading.Thread(function() sent, serr = c2:send(big) end)
  t:start()
  time.sleep(0.2)
  c2:close()
  T.ok(t:join(5), "the sender returned")
  T.ok(sent == nil and serr == "closed", "with nil, \"closed\" (" .. tostring(serr) .. ")")
  peer:close()
  peer2:close()
  srv:close()
end)

T.case("closing an io.popen handle from another thread wakes its reader", function()
  local p = assert(io.popen("sleep 1"))
  local got, err, at
  local t = threading.Thread(function()
    got, err = p:read("l")
    at = time.monotonic()
  end)
  t:start()
  time.sleep(0.1)
  local t0 = time.monotonic()
  local ok, how, code = p:close() -- pclose: waits for the child, as in stock Lua
  T.ok(t:join(5), "the reader returned")
  T.ok(got == nil and type(err) == "string", "with the io error (" .. tostring(err) .. ")")
  T.ok(at - t0 < 0.5, "woken by the close, not by the child's exit")
  T.ok(ok == true and how == "exit" and code == 0, "close still returns the exit status")
end)

T.case("Timer with a callable table", function()
  local seen
  local obj = setmetatable({}, {__call = function(_, ...) seen = table.pack(...) end})
  local tm = threading.Timer(0.01, obj, "a", "b")
  tm:start()
  tm:join()
  T.ok(seen and seen.n == 2 and seen[1] == "a" and seen[2] == "b",
    "gets exactly its arguments (" .. tostring(seen and seen.n) .. ")")
end)

T.case("runtime/ includes and calls nothing from bindings/", function()
  local p = io.popen("grep -n -E 'bindings\\.h|gilua__open_|luaopen_' runtime/*.c runtime/*.h")
  local hits = p:read("a")
  p:close()
  T.eq(hits, "", "no binding header, opener or library in runtime/")
end)

-- Every module function and method, given a bad argument, raises an error
-- that names it.  A coroutine is a bad argument for all of them; functions
-- that take no argument, or any value, are listed as such.
T.case("every error message names its function", function()
  local queue, futures = require("queue"), require("futures")
  local http = require("http")
  local bad = coroutine.create(function() end)
  local takes_anything = {
    ["Queue.put_nowait"] = true, ["Event.is_set"] = true, ["Event.set"] = true,
    ["Event.clear"] = true, ["Lock.release"] = true, ["Lock.locked"] = true,
    ["RLock.locked"] = true, ["Queue.qsize"] = true, ["Queue.empty"] = true,
    ["Queue.full"] = true, ["Queue.task_done"] = true, ["Queue.join"] = true,
    ["Queue.get_nowait"] = true, ["Queue.shutdown"] = true, ["Barrier.reset"] = true,
    ["Barrier.abort"] = true, ["Future.done"] = true, ["Future.running"] = true,
    ["Future.cancelled"] = true, ["Future.cancel"] = true, ["Future.traceback"] = true,
    ["Thread.is_alive"] = true, ["Thread.run"] = true, ["Thread.start"] = true,
    ["Thread.extend"] = true, ["Thread.init"] = true, ["Semaphore.release"] = false,
    ["time.time"] = true, ["time.monotonic"] = true, ["time.perf_counter"] = true,
    ["threading.current_thread"] = true, ["threading.main_thread"] = true,
    ["threading.enumerate"] = true, ["threading.active_count"] = true,
    ["threading.get_ident"] = true, ["threading.get_native_id"] = true,
    ["threading.getswitchinterval"] = true, ["threading.getswitchpolicy"] = true, ["threading.excepthook"] = false,
    ["threading.__excepthook__"] = false, ["threading.Lock"] = true,
    ["threading.RLock"] = true, ["threading.Event"] = true, ["queue.SimpleQueue"] = true,
    ["threading.gil.stats"] = true, ["threading.gil.reset_stats"] = true,
    ["threading.gil.trace_stop"] = true, ["Queue.put"] = true,
    ["Condition.locked"] = true, ["Condition.notify_all"] = true,
    ["Condition.release"] = true, ["Condition.guard"] = true, ["Lock.guard"] = true,
    ["RLock.guard"] = true, ["Semaphore.guard"] = true,
    ["ThreadPoolExecutor.shutdown"] = true,
  }
  local function check(name, f, ...)
    if takes_anything[name] then return end
    local ok, err = pcall(f, ...)
    local short = name:match("([%w_]+)$")
    -- one function, two names: either is right
    if short == "thread_local" then short = "local" end
    if short == "__excepthook__" then short = "excepthook" end
    T.ok(not ok and tostring(err):find(short, 1, true),
      name .. " names itself: " .. (ok and "no error" or tostring(err)))
  end
  local modules = {time = time, threading = threading, queue = queue, futures = futures,
    http = http, ["threading.gil"] = threading.gil}
  local skip_fn = {Thread = true, Timer = true, Barrier = true, local_ = true,
    thread_local = true, ThreadPool = true, ThreadPoolExecutor = true,
    ["local"] = true, Condition = true, Semaphore = true, BoundedSemaphore = true,
    Queue = true, LifoQueue = true, PriorityQueue = true, timeline = true, report = true,
    as_completed = true, wait = true, stack_size = true}
  for mname, m in pairs(modules) do
    for k, f in pairs(m) do
      if type(f) == "function" and not skip_fn[k] then check(mname .. "." .. k, f, bad, bad) end
    end
  end
  -- constructors with a bad first argument
  for _, k in ipairs{"Condition", "Semaphore", "BoundedSemaphore", "Barrier", "Timer",
      "thread_local", "stack_size"} do
    check("threading." .. k, threading[k], bad, bad)
  end
  for _, k in ipairs{"Queue", "LifoQueue", "PriorityQueue"} do check("queue." .. k, queue[k], bad) end
  check("futures.ThreadPoolExecutor", futures.ThreadPoolExecutor, bad)
  check("futures.wait", futures.wait, bad)
  check("futures.as_completed", futures.as_completed, bad)
  -- methods: each object's methods called with a bad argument
  local ex = futures.ThreadPoolExecutor(1)
  local objects = {
    Lock = threading.Lock(), RLock = threading.RLock(), Condition = threading.Condition(),
    Semaphore = threading.Semaphore(), Event = threading.Event(),
    Barrier = threading.Barrier(2), Queue = queue.Queue(), ThreadPoolExecutor = ex,
    Future = ex:submit(function() end), Thread = threading.Thread(function() end),
  }
  objects.Future:result()
  for tname, obj in pairs(objects) do
    local mt = getmetatable(obj)
    local methods = type(mt) == "table" and (type(mt.__index) == "table" and mt.__index
      or mt.methods) or nil
    if tname == "Thread" then methods = threading.Thread end
    for k, f in pairs(methods or {}) do
      if type(f) == "function" then check(tname .. "." .. k, f, obj, bad, bad) end
    end
  end
  ex:shutdown()
end)

T.done()
