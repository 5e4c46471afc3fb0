-- Many threads, many iterations: nothing lost, nothing duplicated, nobody
-- left hanging.
local T = require("tap")
local threading = require("threading")
local queue = require("queue")
local futures = require("futures")
local time = require("time")

local function start(f, ...)
  local t = threading.Thread(f, ...)
  t:start()
  return t
end
local function joinall(ts, timeout)
  local all = true
  for _, t in ipairs(ts) do if not t:join(timeout) then all = false end end
  return all
end

do -- 4 writers, 6 readers, 2 joiners, 65,536 items, shutdown mid-stream
  local q = queue.Queue(1024)
  local N = 65536
  local ended = {}
  local writers, readers, joiners = {}, {}, {}
  for i = 1, 4 do
    writers[i] = start(function()
      for k = 1, N // 4 do
        local ok, err = pcall(q.put, q, k)
        if not ok then ended["w" .. i] = err; return end
      end
      ended["w" .. i] = "all"
    end)
  end
  for i = 1, 6 do
    readers[i] = start(function()
      while true do
        local ok, err = pcall(q.get, q)
        if not ok then ended["r" .. i] = err; return end
        q:task_done()
      end
    end)
  end
  for i = 1, 2 do joiners[i] = start(function() q:join(); ended["j" .. i] = true end) end
  time.sleep(0.01)
  q:shutdown(true)
  T.ok(joinall(writers, 10) and joinall(readers, 10) and joinall(joiners, 10), "nobody hangs")
  local shut = 0
  for i = 1, 6 do if ended["r" .. i] == queue.ShutDown then shut = shut + 1 end end
  T.eq(shut, 6, "every reader ends with queue.ShutDown")
  T.eq(q:qsize(), 0, "the queue is empty after the immediate shutdown")
  T.ok(ended.j1 and ended.j2, "both joiners returned")
end

do -- 100 futures released at once with a tiny switch interval
  threading.setswitchinterval(1e-6)
  local ex = futures.ThreadPoolExecutor(10)
  local go = threading.Event()
  local fs = {}
  for i = 1, 100 do fs[i] = ex:submit(function() go:wait(); return i end) end
  go:set()
  local done = futures.wait(fs, 30)
  local sum = 0
  for i = 1, 100 do if fs[i]:done() then sum = sum + fs[i]:result() end end
  threading.setswitchinterval(0.005)
  T.eq(#done, 100, "all 100 futures complete (no lost wake-up)")
  T.eq(sum, 5050, "with their results")
  ex:shutdown()
end

do -- bounded queue, 8 producers and 8 consumers: no loss, no duplicate
  local q = queue.Queue(16)
  local per = 5000
  local got, dups = {}, 0
  local producers, consumers = {}, {}
  for p = 1, 8 do
    producers[p] = start(function()
      for k = 1, per do q:put(p * 1000000 + k) end
    end)
  end
  for c = 1, 8 do
    consumers[c] = start(function()
      while true do
        local item = q:get()
        if item == nil then return end
        if got[item] then dups = dups + 1 end
        got[item] = true
      end
    end)
  end
  joinall(producers)
  for _ = 1, 8 do q:put(nil) end
  T.ok(joinall(consumers, 30), "consumers finish")
  local count, missing = 0, 0
  for p = 1, 8 do
    for k = 1, per do
      if got[p * 1000000 + k] then count = count + 1 else missing = missing + 1 end
    end
  end
  T.eq(count, 8 * per, "every item arrived")
  T.eq(missing, 0, "none lost")
  T.eq(dups, 0, "none duplicated")
end

do -- condition variable ping-pong rounds across 8 threads
  local cond = threading.Condition()
  local turn, rounds = 0, 2000
  local ts = {}
  for i = 0, 7 do
    ts[#ts + 1] = start(function()
      for _ = 1, rounds do
        cond:acquire()
        while turn % 8 ~= i do cond:wait() end
        turn = turn + 1
        cond:notify_all()
        cond:release()
      end
    end)
  end
  T.ok(joinall(ts, 60), "8 threads x 2000 condition rounds finish")
  T.eq(turn, 8 * rounds, "in strict turn order")
end

do -- a semaphore never admits more than its value
  local sem = threading.BoundedSemaphore(3)
  local inside, most, violations = 0, 0, 0
  local ts = {}
  for i = 1, 12 do
    ts[i] = start(function()
      for _ = 1, 500 do
        sem:acquire()
        inside = inside + 1
        if inside > 3 then violations = violations + 1 end
        most = math.max(most, inside)
        if math.random() < 0.05 then time.sleep(0) end
        inside = inside - 1
        sem:release()
      end
    end)
  end
  joinall(ts)
  T.eq(violations, 0, "at most 3 inside a BoundedSemaphore(3)")
  T.ok(most >= 1, "and someone got in")
end
T.done()
