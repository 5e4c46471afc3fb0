-- futures: ThreadPoolExecutor, Future, wait, as_completed (GIL-NOTES 37-46).
-- luacheck: ignore 311
local T = require("tap")
local threading = require("threading")
local futures = require("futures")
local time = require("time")
local GILUA = os.getenv("GILUA") or "build/gilua"

local ex <close> = futures.ThreadPoolExecutor(4)
T.eq(ex:submit(function(a, b) return a ^ b end, 2, 8):result(), 256.0, "submit(pow, 2, 8)")
local a, b, c = ex:submit(function() return 1, nil, 3 end):result()
T.ok(a == 1 and b == nil and c == 3, "result() returns all of f's results")
local xs, ys = {}, {}
for i = 0, 9 do xs[i + 1] = i; ys[i + 1] = i end
local r = ex:map(function(x, y) return x * y end, xs, ys)
local ok_map = #r == 10
for i = 0, 9 do if r[i + 1] ~= i * i then ok_map = false end end
T.ok(ok_map, "map over two lists, in order")
local okm, errm = pcall(ex.map, ex, function(x, y) return x // y end, {1, 1, 1, 1}, {2, 3, 0, 5})
T.ok(not okm and tostring(errm):find("divide by zero", 1, true), "map raises the failed call's error")

-- timeouts
local slow = ex:submit(time.sleep, 0.3)
local ok, err = pcall(slow.result, slow, 0.01)
T.ok(not ok and err == futures.TimeoutError, "result(timeout) raises TimeoutError")
T.eq(tostring(futures.TimeoutError), "futures.TimeoutError", "tostring")
slow:result()
local mt = futures.ThreadPoolExecutor(1)
local blocker = mt:submit(time.sleep, 0.3)
ok, err = pcall(mt.map, mt, function() return "ran" end, {1, 2, 3}, 0)
T.ok(not ok and err == futures.TimeoutError, "map(..., timeout 0) on a busy pool times out")
blocker:result()
mt:shutdown()
T.ok(true, "the timed-out items never started (shutdown returns)")

-- workers
T.raises(function() futures.ThreadPoolExecutor(0) end, "max_workers must be greater than 0",
  "max_workers 0")
T.raises(function() futures.ThreadPoolExecutor(-1) end, "max_workers must be greater than 0",
  "max_workers -1")
local nproc = tonumber(io.popen("nproc"):read("l")) or 1
T.ok(tostring(futures.ThreadPoolExecutor()):find("of " .. math.min(32, nproc + 4) .. " workers", 1, true),
  "default max_workers = min(32, CPUs + 4)")
local names, ev = {}, threading.Event()
local sat = futures.ThreadPoolExecutor{max_workers = 4, thread_name_prefix = "Sat"}
local fs = {}
for i = 1, 60 do fs[i] = sat:submit(function() names[threading.current_thread().name] = true; ev:wait() end) end
time.sleep(0.1)
ev:set()
for i = 1, 60 do fs[i]:result() end
local count, good = 0, true
for name in pairs(names) do
  count = count + 1
  if not name:match("^Sat_[0-3]$") then good = false end
end
T.eq(count, 4, "60 blocked tasks on a pool of 4 use exactly 4 threads")
T.ok(good, "workers are named PREFIX_i")
sat:shutdown()
local reuse = futures.ThreadPoolExecutor(4)
local seen = {}
for _ = 1, 3 do seen[reuse:submit(function() return threading.current_thread().name end):result()] = true end
local n = 0
for _ in pairs(seen) do n = n + 1 end
T.eq(n, 1, "sequential submit():result() reuse one idle thread")
reuse:shutdown()
T.eq(threading.ThreadPool, futures.ThreadPoolExecutor, "threading.ThreadPool is the same class")

-- shutdown
local sd = futures.ThreadPoolExecutor(2)
sd:shutdown()
T.raises(function() sd:submit(print) end, "cannot schedule new futures after shutdown", "submit after shutdown")
sd:shutdown()
T.ok(true, "shutdown is idempotent")
local cf = futures.ThreadPoolExecutor(5)
fs = {}
for i = 1, 50 do fs[i] = cf:submit(time.sleep, 0.1) end
time.sleep(0.05)
cf:shutdown(true, true)
local cancelled, done_ok = 0, 0
for i = 1, 50 do
  if fs[i]:cancelled() then cancelled = cancelled + 1
  elseif fs[i]:exception() == nil then done_ok = done_ok + 1 end
end
T.ok(cancelled > 20, "shutdown(cancel_futures) cancels the queued work (" .. cancelled .. ")")
T.eq(cancelled + done_ok, 50, "the rest finished without error")
local wex = futures.ThreadPoolExecutor(2)
local threads_before = threading.active_count()
wex:submit(time.sleep, 0.05)
wex:with(function(e) e:submit(time.sleep, 0.05) end)
T.ok(threading.active_count() <= threads_before, "with() joins the workers")
T.raises(function() wex:submit(print) end, "after shutdown", "with() shut it down")

-- Future
local cb = {}
local f = ex:submit(time.sleep, 0.1)
f:add_done_callback(function(fut) cb[#cb + 1] = "a:" .. tostring(fut == f) end)
f:add_done_callback(function() error("callback fails") end)
f:add_done_callback(function() cb[#cb + 1] = "b" end)
T.eq(f:running() or not f:done(), true, "running or pending at first")
f:result()
time.sleep(0.02)
T.eq(table.concat(cb, ","), "a:true,b", "callbacks run in order; a failing one does not stop the rest")
f:add_done_callback(function() cb[#cb + 1] = "late" end)
T.eq(cb[#cb], "late", "a callback on a done future runs at once")
local ferr = ex:submit(error, {code = 7})
local e = ferr:exception()
T.eq(e and e.code, 7, "exception() is the error value")
ok, err = pcall(ferr.result, ferr)
T.ok(not ok and err == e, "result() re-raises the very value")
T.eq(ex:submit(function() return 1 end):exception(), nil, "exception() is nil on success")
local one = futures.ThreadPoolExecutor(1)
local busy = one:submit(time.sleep, 0.2)
local pending = one:submit(print, "never")
T.eq(pending:cancel(), true, "cancel() a pending future")
T.eq(pending:cancel(), true, "cancel() again")
T.eq(pending:cancelled(), true, "cancelled()")
T.eq(pending:done(), true, "a cancelled future is done")
time.sleep(0.05)
T.eq(busy:cancel(), false, "cancel() a running future fails")
ok, err = pcall(pending.result, pending, 0)
T.ok(not ok and err == futures.CancelledError, "result() of a cancelled future")
ok, err = pcall(pending.exception, pending, 0)
T.ok(not ok and err == futures.CancelledError, "exception() of a cancelled future")
local cancel_cb = false
local p2 = one:submit(print, "never")
p2:add_done_callback(function() cancel_cb = true end)
p2:cancel()
T.eq(cancel_cb, true, "callbacks run on cancel")
busy:result()
T.eq(busy:cancel(), false, "cancel() a finished future fails")
one:shutdown()

-- wait and as_completed
local f1 = ex:submit(time.sleep, 0.05)
local f2 = ex:submit(time.sleep, 0.3)
local done, not_done = futures.wait({f1, f2, f1}, nil, futures.FIRST_COMPLETED)
T.ok(#done == 1 and done[1] == f1 and #not_done == 1, "wait FIRST_COMPLETED, duplicates once")
local fe = ex:submit(error, "x")
local f3 = ex:submit(time.sleep, 0.3)
done, not_done = futures.wait({fe, f3}, nil, futures.FIRST_EXCEPTION)
T.ok(#done == 1 and done[1] == fe, "wait FIRST_EXCEPTION returns at the error")
done, not_done = futures.wait({f2, f3}, 0.01)
T.eq(#done + #not_done, 2, "a timeout returns partial sets")
done, not_done = futures.wait({f2, f3})
T.ok(#done == 2 and #not_done == 0, "ALL_COMPLETED")
local pre = ex:submit(function() return "pre" end)
pre:result()
local order = {}
local later = ex:submit(function() time.sleep(0.1) return "later" end)
local sooner = ex:submit(function() time.sleep(0.05) return "sooner" end)
for fut in futures.as_completed({later, sooner, pre, pre}) do order[#order + 1] = fut:result() end
T.eq(table.concat(order, ","), "pre,sooner,later", "as_completed: done first, then in completion order")
local running = ex:submit(time.sleep, 0.2)
ok, err = pcall(function() for _ in futures.as_completed({running}, 0) do end end)
T.ok(not ok and err == futures.TimeoutError, "as_completed timeout raises TimeoutError")
running:result()
T.raises(function() futures.wait({1}) end, "futures.Future expected", "wait on non-futures")

-- a failing initializer breaks the pool
local broken = futures.ThreadPoolExecutor{max_workers = 2, initializer = function() error("init") end}
local bf = broken:submit(print, "x")
ok, err = pcall(bf.result, bf, 5)
T.ok(not ok and err == futures.BrokenExecutor, "pending work fails with BrokenExecutor")
ok, err = pcall(broken.submit, broken, print)
T.ok(not ok and err == futures.BrokenExecutor, "later submit raises BrokenExecutor")
local init_args = {}
local ie = futures.ThreadPoolExecutor{max_workers = 1, initializer = function(x, y) init_args = {x, y} end,
  initargs = {"p", "q"}}
ie:submit(print, "init ran"):result()
T.eq(table.concat(init_args, ","), "p,q", "initializer gets initargs")
ie:shutdown()

-- queued work completes at program exit
local path = os.tmpname()
local fh = io.open(path, "w")
fh:write([[
local futures = require("futures")
local time = require("time")
local ex = futures.ThreadPoolExecutor(2)
for i = 1, 4 do ex:submit(function() time.sleep(0.05) print("work " .. i) end) end
]])
fh:close()
local out = io.popen(GILUA .. " " .. path):read("a")
os.remove(path)
local lines = 0
for _ in out:gmatch("work %d") do lines = lines + 1 end
T.eq(lines, 4, "queued pool work completes before the process exits")
ex:shutdown() -- (its <close> would, after T.done: too late for the check)
T.done()
