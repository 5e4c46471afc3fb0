-- Correct at the edges (issue 11): no crash, hang or lost item on any
-- input; CPython's exit-time rules; the rough spots a new user hit.
local T = require("tap")
local threading = require("threading")
local queue = require("queue")
local futures = require("futures")
local time = require("time")
local GILUA = os.getenv("GILUA") or "build/gilua"
local SAN = os.getenv("GILUA_SANITIZER")

local function tmpfile(text)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

-- Runs a script in a gilua process; returns stdout, stderr, exit status.
local function run(script, args, prefix)
  local path, errf = tmpfile(script), os.tmpname()
  local p = io.popen(string.format("%s timeout -s KILL 60 %s %s %s 2>%s; echo \"status=$?\"",
    prefix or "", GILUA, args or "", path, errf))
  local out = p:read("a")
  p:close()
  local f = io.open(errf)
  local err = f:read("a")
  f:close()
  os.remove(path)
  os.remove(errf)
  local status = tonumber(out:match("status=(%d+)%s*$"))
  return out:gsub("status=%d+%s*$", ""), err, status
end

-- {======================================================================
-- 1. Crashes become errors naming the function
-- ========================================================================

T.case("lengths taken from user data are checked", function()
  local f = function() end
  for _, args in ipairs{{n = -100000}, {n = math.maxinteger}, {n = 1.5},
      setmetatable({}, {__len = function() return -1 end}),
      setmetatable({}, {__len = function() return 2 ^ 40 end}),
      setmetatable({}, {__len = function() return 0.5 end})} do
    local t0 = time.monotonic()
    local ok, err = pcall(function() threading.Thread{target = f, args = args}:run() end)
    T.ok(not ok and tostring(err):find("Thread", 1, true), "refused: " .. tostring(err))
    T.ok(time.monotonic() - t0 < 1, "at once")
  end
  local ok, err = pcall(function()
    local ex = futures.ThreadPoolExecutor{max_workers = 1, initializer = f,
      initargs = {n = -5}}
    local r = ex:submit(f)
    ex:shutdown()
    return r:result()
  end)
  T.ok(not ok and err == futures.BrokenExecutor, "bad initargs break the pool")
end)

T.case("the Thread class called bare", function()
  local ok, err = pcall(getmetatable(threading.Thread).__call)
  T.ok(not ok and tostring(err):find("table expected", 1, true), tostring(err))
end)

T.case("http options read once: an __index that changes its mind", function()
  local http = require("http")
  local calls = 0
  local opts = setmetatable({}, {__index = function(_, k)
    calls = calls + 1
    if k == "method" then return calls == 1 and "GET" or nil end
    if k == "headers" then return calls % 2 == 0 and {a = "b"} or 42 end
  end})
  local ok, err = pcall(http.get, "http://127.0.0.1:1/", opts)
  T.ok(not ok, "an error, not a crash: " .. tostring(err))
end)

T.case("a small thread stack: deep C recursion raises, never crashes", function()
  local old = threading.stack_size(32768)
  local function deep() return (("x"):gsub("x", deep)) end
  local function deepf()
    return string.format("%s", setmetatable({}, {__tostring = deepf}))
  end
  for _, f in ipairs{deep, deepf} do
    local msg
    local t = threading.Thread(function() msg = select(2, pcall(f)) end)
    t:start()
    t:join()
    T.ok(tostring(msg):find("stack overflow", 1, true), tostring(msg))
  end
  threading.stack_size(old)
end)

T.case("gil.stats() racing gil.reset_stats() under finalizers that let go of the GIL", function()
  local _, err, status = run([[
    local threading = require("threading")
    local time = require("time")
    local stop = false
    local churn = threading.Thread(function()
      while not stop do
        setmetatable({}, {__gc = function() time.sleep(0) end})
        threading.gil.reset_stats()
      end
    end)
    churn:start()
    for _ = 1, 3000 do
      local s = threading.gil.stats()
      assert(type(s.threads) == "table")
      setmetatable({}, {__gc = function() time.sleep(0) end})
    end
    stop = true
    churn:join()
  ]])
  T.ok(status == 0, "no crash (status " .. tostring(status) .. ") " .. err)
end)

T.case("a Thread finalized by hand while others join it", function()
  local t = threading.Thread(function() time.sleep(0.2) end)
  t:start()
  local joined = 0
  local joiners = {}
  for i = 1, 4 do
    joiners[i] = threading.Thread(function() pcall(t.join, t); joined = joined + 1 end)
    joiners[i]:start()
  end
  time.sleep(0.05)
  getmetatable(t).__gc(t)
  for i = 1, 4 do joiners[i]:join() end
  T.eq(joined, 4, "every joiner returned")
  T.raises(function() t:start() end, "finalized", "a finalized Thread cannot start again")
  time.sleep(0.25)
end)

T.case("near the process's memory limit: errors, no crash", function()
  if SAN then return T.skip("ulimit -v", "sanitizers reserve address space") end
  local script = [[
    local threading = require("threading")
    local futures = require("futures")
    threading.stack_size(1048576)
    local ex = futures.ThreadPoolExecutor(4)
    local junk = {}
    for _ = 1, 60 do
      pcall(function()
        local ts = {}
        for i = 1, 8 do
          ts[i] = threading.Thread(function()
            local inner = threading.Thread(function() junk[#junk + 1] = ("x"):rep(1000) end)
            pcall(inner.start, inner); pcall(inner.join, inner)
            local f = ex:submit(function(n) local t = {} for k = 1, n do t[k] = k end return #t end, 1000)
            pcall(f.result, f)
          end)
          ts[i]:start()
        end
        for i = 1, 8 do ts[i]:join() end
        junk[#junk + 1] = ("y"):rep(100000)
      end)
      if #junk > 300 then junk = {} end
    end
    ex:shutdown()
  ]]
  for _, limit in ipairs{60000, 50000, 45000} do
    local _, _, status = run(script, "", "ulimit -v " .. limit .. ";")
    T.ok(status == 0 or status == 1, "ulimit -v " .. limit .. ": status " .. tostring(status))
  end
end)

T.case("Semaphore:release(math.maxinteger)", function()
  local s = threading.Semaphore(1)
  T.raises(function() s:release(math.maxinteger) end, "overflow", "refused")
  T.ok(s:acquire(false) and not s:acquire(false), "the count is still right")
  local b = threading.BoundedSemaphore(2)
  b:acquire()
  T.raises(function() b:release(math.maxinteger) end, "released too many times",
    "a BoundedSemaphore refuses it too")
end)

-- }======================================================================

-- {======================================================================
-- 2. Lost or corrupted data
-- ========================================================================

-- Garbage whose finalizer lets go of the GIL, so that allocations inside
-- the queues run other threads mid-operation.
local function churn() setmetatable({}, {__gc = function() time.sleep(0) end}) end

T.case("a FIFO Queue grown by two producers under GIL-releasing finalizers", function()
  local lost, nils = 0, 0
  for _ = 1, 30 do
    local q = queue.Queue()
    local ps = {}
    for p = 1, 2 do
      ps[p] = threading.Thread(function()
        for i = 1, 300 do churn(); q:put(p * 1000 + i) end
      end)
      ps[p]:start()
    end
    for p = 1, 2 do ps[p]:join() end
    local seen = {}
    while not q:empty() do
      local v = q:get()
      if v == nil then nils = nils + 1 else seen[v] = true end
    end
    for p = 1, 2 do for i = 1, 300 do if not seen[p * 1000 + i] then lost = lost + 1 end end end
  end
  T.eq(lost, 0, "no item lost")
  T.eq(nils, 0, "no nil handed out")
  local ex = futures.ThreadPoolExecutor(4)
  local fs = {}
  for i = 1, 2000 do churn(); fs[i] = ex:submit(function() return i end) end
  local bad = 0
  for i = 1, 2000 do if fs[i]:result() ~= i then bad = bad + 1 end end
  ex:shutdown()
  T.eq(bad, 0, "a pool's ring keeps every future")
end)

T.case("a PriorityQueue whose __lt switches threads", function()
  local mt = {__lt = function(a, b) time.sleep(0); return a.k < b.k end}
  local pq = queue.PriorityQueue()
  local ps = {}
  for p = 1, 4 do
    ps[p] = threading.Thread(function()
      for i = 1, 150 do pq:put(setmetatable({k = (i * 7919 + p * 31) % 1000, p = p, i = i}, mt)) end
    end)
    ps[p]:start()
  end
  for p = 1, 4 do ps[p]:join() end
  T.eq(pq:qsize(), 600, "every item is in")
  local last, ordered, seen, dup = -1, true, {}, 0
  while not pq:empty() do
    local v = pq:get()
    if type(v) ~= "table" or v.k == nil then ordered = false break end
    if v.k < last then ordered = false end
    last = v.k
    local id = v.p * 1000 + v.i
    if seen[id] then dup = dup + 1 end
    seen[id] = true
  end
  T.ok(ordered, "items come out in order, none is the queue's own storage")
  T.eq(dup, 0, "none twice")
  local q = queue.PriorityQueue()
  q:put(1)
  q:put(2)
  local ok, err = pcall(q.put, q, {3})
  T.ok(not ok and tostring(err):find("'<' not supported", 1, true)
    and tostring(err):find("PriorityQueue", 1, true), tostring(err))
  T.eq(q:qsize(), 2, "and the queue is unchanged")
  T.ok(q:get() == 1 and q:get() == 2, "and still ordered")
end)

T.case("RLock:with refuses a yield (the lock would change owner)", function()
  local r = threading.RLock()
  local co = coroutine.create(function() return r:with(coroutine.yield) end)
  local ok, err = coroutine.resume(co)
  T.ok(ok == false and tostring(err):find("yield", 1, true), tostring(err))
  T.eq(r:locked(), false, "the lock is free afterwards")
end)

-- }======================================================================

-- {======================================================================
-- 3. Hangs
-- ========================================================================

T.case("a pool survives bad callbacks, bad initargs and a worker that cannot start", function()
  local ex = futures.ThreadPoolExecutor(1)
  local bad = setmetatable({}, {__tostring = function() error("tostring fails too") end})
  local f = ex:submit(function() return 1 end)
  f:add_done_callback(function() error(bad) end)
  f:result()
  T.eq(ex:submit(function() return 2 end):result(5), 2, "the worker survived the callback")
  ex:shutdown()
  local bex = futures.ThreadPoolExecutor{max_workers = 2, initializer = function() end,
    initargs = setmetatable({}, {__index = function() error("initargs fail") end, __len = function() return 1 end})}
  local ok, err = pcall(function() return bex:submit(function() end):result(5) end)
  T.ok(not ok and err == futures.BrokenThreadPool, "raising initargs break the pool")
  T.raises(function() bex:submit(print) end, "futures.BrokenExecutor", "and submit raises")
  local old = threading.stack_size(1 << 39) -- more than the address space allows
  local sex = futures.ThreadPoolExecutor(2)
  ok = pcall(sex.submit, sex, function() return 3 end)
  threading.stack_size(old)
  T.ok(not ok, "submit reports the worker that could not start")
  T.eq(sex:submit(function() return 4 end):result(5), 4, "the next submit starts a worker")
  sex:shutdown()
end)

local function os_threads()
  local p = io.popen("ls /proc/self/task 2>/dev/null | wc -l")
  local n = tonumber(p:read("a"))
  p:close()
  return n
end

T.case("pools dropped without shutdown() end their workers", function()
  local before = os_threads()
  for _ = 1, (SAN and 100 or 500) do
    local ex = futures.ThreadPoolExecutor(1)
    ex:submit(function() end):result()
  end
  collectgarbage()
  collectgarbage()
  local deadline = time.monotonic() + 5
  repeat time.sleep(0.05) until os_threads() - before < 10 or time.monotonic() > deadline
  T.ok(os_threads() - before < 10, "OS threads now " .. os_threads() .. ", before " .. before)
end)

T.case("exit-time rules", function()
  local out, _, status = run([[
    local threading = require("threading")
    threading.Thread(function() threading.main_thread():join(); print("joined") end):start()
  ]])
  T.ok(status == 0 and out:find("joined", 1, true), "joining main_thread() returns at exit")
  local t0 = time.monotonic()
  local out2, err2, status2 = run([[
    local threading = require("threading")
    local time = require("time")
    local d = threading.Thread{daemon = true, target = function() time.sleep(30) end}
    d:start()
    local lk = threading.Lock()
    threading.Thread{daemon = true, target = function() lk:acquire(); time.sleep(30) end}:start()
    time.sleep(0.05)
    setmetatable(_G, {__gc = function()
      print("start", pcall(function() threading.Thread(print):start() end))
      print("join", pcall(d.join, d))
      print("acquire", pcall(lk.acquire, lk))
    end})
  ]])
  T.ok(status2 == 0, "the program ends (" .. tostring(status2) .. ") " .. err2)
  T.ok(out2:find("start\tfalse\t[^\n]*can't create new thread at interpreter shutdown"),
    "start() in a finalizer at exit raises")
  T.ok(out2:find("join\tfalse\t[^\n]*cannot join thread at interpreter shutdown"),
    "joining a running daemon at exit raises")
  T.ok(out2:find("acquire\tfalse\t[^\n]*interpreter shutdown"),
    "acquiring a lock a daemon holds at exit raises")
  T.ok(time.monotonic() - t0 < 10, "at once")
end)

T.case("select with a NaN timeout; Ctrl-C in Condition:wait does not spin", function()
  local socket = require("socket")
  T.raises(function() socket.select({}, nil, 0 / 0) end, "NaN", "select refuses NaN")
  if SAN == "tsan" then return T.skip("CPU time", "ThreadSanitizer") end
  local path = tmpfile([[
    local threading = require("threading")
    local time = require("time")
    local c = threading.Condition()
    c:acquire()
    threading.Thread{daemon = true, target = function()
      time.sleep(0.2); c:acquire(); time.sleep(1.5); c:release()
    end}:start()
    local ok, err = pcall(c.wait, c)
    io.stderr:write(string.format("cpu %.3f %s\n", os.clock(), tostring(err)))
  ]])
  local p = io.popen(string.format("timeout --foreground -s KILL 20 %s %s 2>&1 & pid=$!; sleep 0.5; "
    .. "kill -INT $pid; wait $pid", GILUA, path))
  local out = p:read("a")
  p:close()
  os.remove(path)
  local cpu = tonumber(out:match("cpu (%S+)"))
  T.ok(out:find("interrupted!", 1, true), "the wait ends with interrupted!")
  T.ok(cpu and cpu < 0.5, "without spinning while the lock is taken back (" .. tostring(cpu) .. " s CPU)")
end)

-- }======================================================================

-- {======================================================================
-- 4. Leaks
-- ========================================================================

local function rss_kb()
  local f = io.open("/proc/self/status")
  local kb = tonumber(f:read("a"):match("VmRSS:%s*(%d+)"))
  f:close()
  return kb
end

T.case("thread starts, failed starts, pools and queues do not leak", function()
  local n = SAN and 5000 or 100000
  local function spawn_many(k)
    for _ = 1, k do
      local t = threading.Thread(function() end)
      t:start()
      t:join()
    end
  end
  spawn_many(2000) -- warm up the allocator
  collectgarbage()
  local before = rss_kb()
  spawn_many(n)
  for _ = 1, n // 100 do
    local ex = futures.ThreadPoolExecutor(2)
    ex:submit(function() end):result()
    ex:shutdown()
    local q = queue.Queue()
    for i = 1, 100 do q:put(i) end
    while not q:empty() do q:get() end
  end
  collectgarbage()
  collectgarbage()
  local grown = rss_kb() - before
  T.ok(grown < 4096, string.format("%d thread starts, pools and queues: RSS grew %d KiB", n, grown))
  local s = threading.gil.stats()
  T.ok(#s.threads < 100, "the statistics list stays bounded (" .. #s.threads .. " records)")
  local old = threading.stack_size(1 << 39)
  for _ = 1, 2000 do pcall(function() threading.Thread(print):start() end) end
  threading.stack_size(old)
  local alive = 0
  for _, r in ipairs(threading.gil.stats().threads) do alive = alive + (r.alive and 1 or 0) end
  T.ok(alive <= #threading.enumerate(), "failed starts leave no phantom alive record (" .. alive .. ")")
end)

-- }======================================================================

-- {======================================================================
-- 5. What a new user tripped on
-- ========================================================================

T.case("--gil-stats and --gil-timeline on os.exit", function()
  local svg = os.tmpname() .. ".svg"
  local _, err, status = run("require('threading'); os.exit(3)",
    "--gil-stats --gil-timeline=" .. svg)
  T.eq(status, 3, "the exit status is kept")
  T.ok(err:find("acquisitions", 1, true), "the statistics are printed")
  local f = io.open(svg)
  T.ok(f and f:read("a"):find("<svg", 1, true), "the timeline is written")
  if f then f:close() end
  os.remove(svg)
end)

T.case("http: only http and https, named errors, default timeouts", function()
  local http = require("http")
  for _, url in ipairs{"file:///etc/hostname", "ftp://127.0.0.1/", "gopher://x/"} do
    T.raises(function() http.get(url) end, "not supported", "refused: " .. url)
  end
  local ok, err = pcall(http.get, "http://127.0.0.1:1/")
  T.ok(not ok and err == http.ConnectionError and tostring(err):find("http.get", 1, true),
    "a refused connection raises http.ConnectionError: " .. tostring(err))
  T.ok(type(err) == "table" and type(err.message) == "string", "carrying curl's message")
  T.ok(http.timeout > 0 and http.connect_timeout > 0, "default timeouts exist")
  local socket = require("socket")
  local srv = socket.bind("127.0.0.1", 0)
  local ip, port = srv:getsockname()
  ok, err = pcall(http.get, "http://" .. ip .. ":" .. port .. "/", {timeout = 0.3})
  T.ok(not ok and err == http.TimeoutError, "a server that never answers: http.TimeoutError")
  srv:close()
end)

T.case("Future:result keeps the worker's traceback", function()
  local ex = futures.ThreadPoolExecutor(1)
  local f = ex:submit(function() error("boom") end)
  local ok, err = pcall(f.result, f)
  T.ok(not ok and err:find("boom", 1, true) and err:find("traceback", 1, true),
    "a string error comes with the worker's traceback")
  T.ok(tostring(f:exception()):find("boom", 1, true) and not f:exception():find("traceback"),
    "exception() gives the value unchanged")
  T.ok(type(f:traceback()) == "string", "traceback() gives the worker's traceback")
  local v = {}
  local g = ex:submit(function() error(v) end)
  ok, err = pcall(g.result, g)
  T.ok(not ok and err == v, "a non-string error is raised unchanged")
  ex:shutdown()
end)

T.case("small things", function()
  T.ok(pcall(function() threading.Thread{name = "x"}:run() end), "Thread{name=} with no target runs nothing")
  local data = threading.thread_local()
  data.a, data.b = 1, 2
  local keys = {}
  for k, v in pairs(data) do keys[#keys + 1] = k .. "=" .. v end
  table.sort(keys)
  T.eq(table.concat(keys, ","), "a=1,b=2", "pairs() over a thread_local")
  local b = threading.Barrier{parties = 1, action = function() end, timeout = 1}
  T.eq(b:wait(), 0, "Barrier{parties =, action =, timeout =}")
  local l = threading.Lock()
  T.ok(l:acquire{blocking = true, timeout = 1}, "acquire{blocking =, timeout =}")
  l:release()
  local q = queue.Queue()
  q:put(1)
  q:put(2)
  q:get()
  q:task_done()
  T.eq(q.unfinished_tasks, 1, "Queue.unfinished_tasks")
  local r = threading.RLock()
  r:acquire()
  r:acquire()
  T.ok(tostring(r):find("owner " .. threading.get_ident(), 1, true) and tostring(r):find("count 2"),
    "tostring(RLock): owner and count: " .. tostring(r))
  r:release()
  r:release()
  T.ok(tostring(threading.BoundedSemaphore(3)):find("3 of 3", 1, true), "tostring(BoundedSemaphore)")
  T.ok(tostring(threading.Condition()):find("RLock", 1, true), "tostring(Condition) shows its lock")
  local t = threading.Thread(function() end)
  t:start()
  t:join()
  T.ok(tostring(t):find("stopped " .. t.ident, 1, true), "tostring(ended Thread): " .. tostring(t))
  local ex = futures.ThreadPoolExecutor(1)
  local f = ex:submit(function() return 42 end)
  f:result()
  T.ok(tostring(f):find("returned 42", 1, true), "tostring(finished Future): " .. tostring(f))
  -- a future cancelled while queued is done, but wait() counts it only
  -- once a worker took it out (CPython's CANCELLED_AND_NOTIFIED)
  local gate = threading.Event()
  local busy = ex:submit(function() gate:wait() end)
  local queued = ex:submit(function() end)
  T.ok(queued:cancel() and queued:done(), "cancelled while queued: done")
  local done, not_done = futures.wait({queued}, 0)
  T.ok(#done == 0 and #not_done == 1, "but not yet counted by wait()")
  gate:set()
  busy:result()
  done = futures.wait({queued}, 5)
  T.eq(#done, 1, "counted once a worker took it out")
  ex:shutdown()
end)

-- }======================================================================

T.done()
