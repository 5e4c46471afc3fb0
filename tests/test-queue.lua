-- queue: Queue, LifoQueue, PriorityQueue, SimpleQueue (GIL-NOTES 33-36).
local T = require("tap")
local threading = require("threading")
local queue = require("queue")
local time = require("time")

local function start(f, ...)
  local t = threading.Thread(f, ...)
  t:start()
  return t
end

-- order
for cls, want in pairs{Queue = "111,333,222", LifoQueue = "222,333,111",
  PriorityQueue = "111,222,333"} do
  local q = queue[cls]()
  for _, v in ipairs{111, 333, 222} do q:put(v) end
  T.eq(table.concat({q:get(), q:get(), q:get()}, ","), want, cls .. " order")
end

-- bounded: Full and Empty, blocking and timeouts
local q = queue.Queue(5)
for i = 1, 5 do q:put(i) end
T.eq(q:full(), true, "full() at maxsize")
T.eq(q:qsize(), 5, "qsize")
local ok, err = pcall(q.put_nowait, q, 6)
T.ok(not ok and err == queue.Full, "put_nowait on a full queue raises queue.Full")
ok, err = pcall(q.put, q, 6, false)
T.ok(not ok and err == queue.Full, "put(item, false) raises queue.Full")
local t0 = time.perf_counter()
ok, err = pcall(q.put, q, 6, true, 0.05)
T.ok(not ok and err == queue.Full, "put with a timeout raises queue.Full")
T.near(time.perf_counter() - t0, 0.05, "after about the timeout")
local getter = start(function() time.sleep(0.05); q:get() end)
t0 = time.perf_counter()
q:put(6)
T.ok(time.perf_counter() - t0 >= 0.03, "a blocking put returns only after a get")
getter:join()
for _ = 1, 5 do q:get() end
T.eq(q:empty(), true, "empty()")
ok, err = pcall(q.get_nowait, q)
T.ok(not ok and err == queue.Empty, "get_nowait on an empty queue raises queue.Empty")

ok, err = pcall(q.get, q, true, 0.05)
T.ok(not ok and err == queue.Empty, "get with a timeout raises queue.Empty")
local putter = start(function() time.sleep(0.05); q:put("late") end)
T.eq(q:get(), "late", "a blocking get returns the item put later")
putter:join()
T.eq(tostring(queue.Empty), "queue.Empty", "tostring(queue.Empty)")
T.ok(queue.Empty ~= queue.Full and queue.Full ~= queue.ShutDown, "error values are distinct")
T.raises(function() q:get(true, -2) end, "timeout value must be a non-negative number", "negative get timeout")
T.raises(function() q:put(1, true, -0.5) end, "timeout value must be a non-negative number", "negative put timeout")
T.raises(function() q:put() end, "bad argument #1", "put needs an item")
T.raises(function() queue.Queue("x") end, "number expected", "maxsize type")

-- shrinking maxsize takes effect
local sq = queue.Queue(10)
for i = 1, 3 do sq:put(i) end
sq.maxsize = 2
T.eq(sq:full(), true, "shrinking maxsize makes it full")
ok, err = pcall(sq.put_nowait, sq, 4)
T.ok(not ok and err == queue.Full, "and put_nowait raises Full")

-- nil and any value pass by reference
local anyq = queue.Queue()
local tbl, fn, co = {}, function() end, coroutine.create(function() end)
for _, v in ipairs{tbl, fn, co, io.stdout, false} do anyq:put(v) end
anyq:put(nil)
local same = anyq:get() == tbl and anyq:get() == fn and anyq:get() == co and anyq:get() == io.stdout
T.ok(same, "tables, functions, coroutines and userdata pass by reference")
T.eq(anyq:get(), false, "false is an item")
T.eq(select("#", anyq:get()), 1, "nil is an item")
T.eq(anyq:qsize(), 0, "and it was counted")

-- task_done and join: 2 workers summing 0..99
local work = queue.Queue()
local sum, lock = 0, threading.Lock()
local workers = {}
for i = 1, 2 do
  workers[i] = start(function()
    while true do
      local item = work:get()
      if item == nil then work:task_done(); return end
      lock:with(function() sum = sum + item end)
      work:task_done()
    end
  end)
end
for i = 0, 99 do work:put(i) end
work:join()
T.eq(sum, 4950, "join returns once every item is task_done")
work:join()
T.ok(true, "join twice")
work:put(nil); work:put(nil)
for i = 1, 2 do workers[i]:join() end
T.raises(function() work:task_done() end, "task_done() called too many times", "extra task_done")

-- priority: arrays element by element, __lt, strings
local pq = queue.PriorityQueue()
pq:put({2, "b"}); pq:put({1, "z"}); pq:put({1, "a"}); pq:put({3})
T.eq(table.concat({pq:get()[2], pq:get()[2], pq:get()[2]}, ","), "a,z,b", "{priority, data} arrays")
pq:get()
local mt = {__lt = function(a, b) return a.k < b.k end}
for _, k in ipairs{5, 1, 3} do pq:put(setmetatable({k = k}, mt)) end
T.eq(pq:get().k * 100 + pq:get().k * 10 + pq:get().k, 135, "tables with __lt")
for _, s in ipairs{"pear", "apple", "fig"} do pq:put(s) end
T.eq(table.concat({pq:get(), pq:get(), pq:get()}, ","), "apple,fig,pear", "strings")
pq:put({1, 2}); pq:put({1})
T.eq(#pq:get(), 1, "a prefix sorts first")
pq:get()
pq:put(1)
T.raises(function() pq:put("x") end, "not supported between", "mixed types raise")

-- shutdown
local shq = queue.Queue()
shq:put(1)
shq:shutdown()
T.eq(shq.is_shutdown, true, "is_shutdown")
ok, err = pcall(shq.put, shq, 2)
T.ok(not ok and err == queue.ShutDown, "put after shutdown raises ShutDown")
T.eq(shq:get(), 1, "get drains after shutdown")
ok, err = pcall(shq.get, shq)
T.ok(not ok and err == queue.ShutDown, "then get raises ShutDown")
local imq = queue.Queue()
imq:put(1); imq:put(2)
local blocked_getter_err
local bq = queue.Queue()
local bg = start(function() local _, e = pcall(bq.get, bq); blocked_getter_err = e end)
time.sleep(0.02)
bq:shutdown()
bg:join()
T.eq(blocked_getter_err, queue.ShutDown, "a blocked getter wakes with ShutDown")
imq:shutdown(true)
T.eq(imq:qsize(), 0, "shutdown(true) empties the queue")
ok, err = pcall(imq.get, imq)
T.ok(not ok and err == queue.ShutDown, "and get raises at once")
T.raises(function() imq:task_done() end, "task_done() called too many times", "task_done after")
imq:join()
T.ok(true, "join returns after an immediate shutdown")

-- SimpleQueue
local simple = queue.SimpleQueue()
simple:put(1); simple:put(nil); simple:put(3)
T.eq(simple:qsize(), 3, "SimpleQueue qsize")
T.ok(simple:get() == 1 and simple:get() == nil and simple:get() == 3, "SimpleQueue FIFO with nil")
T.eq(simple.task_done, nil, "SimpleQueue has no task_done")
ok, err = pcall(simple.get, simple, false)
T.ok(not ok and err == queue.Empty, "SimpleQueue get_nowait raises Empty")
T.done()
