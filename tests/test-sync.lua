-- Condition, Semaphore, BoundedSemaphore, Event, Barrier, Timer and
-- thread-local data (CPython's lock_tests.py behaviours, GIL-NOTES 21-32).
local T = require("tap")
local threading = require("threading")
local time = require("time")

local function start(f, ...)
  local t = threading.Thread(f, ...)
  t:start()
  return t
end
local function joinall(ts) for _, t in ipairs(ts) do t:join() end end

-- {==== Condition ====}
local function check_notify(cond)
  local woken, ts = 0, {}
  for i = 1, 5 do
    ts[i] = start(function()
      cond:acquire()
      if cond:wait() then woken = woken + 1 end
      cond:release()
    end)
  end
  time.sleep(0.05)
  T.eq(woken, 0, "nobody wakes before a notify")
  cond:acquire(); cond:notify(3); cond:release()
  time.sleep(0.05)
  T.eq(woken, 3, "notify(3) wakes exactly 3")
  cond:with(function() cond:notify(5) end)
  time.sleep(0.05)
  T.eq(woken, 5, "notify(5) wakes the other 2")
  cond:acquire(); cond:notify_all(); cond:release()
  joinall(ts)
end
local cond = threading.Condition()
check_notify(cond)
check_notify(cond) -- state is reset after a round
check_notify(threading.Condition(threading.Lock()))

cond:acquire()
local t0 = time.perf_counter()
T.eq(cond:wait(0.2), false, "wait(timeout) without a notify returns false")
T.near(time.perf_counter() - t0, 0.2, "after about the timeout")
cond:release()
T.raises(function() cond:wait() end, "cannot wait on un-acquired lock", "wait without the lock")
T.raises(function() cond:notify() end, "cannot notify on un-acquired lock", "notify without the lock")
T.raises(function() cond:notify_all() end, "cannot notify on un-acquired lock", "notify_all without the lock")
T.raises(function() threading.Condition(42) end, "threading.Lock or threading.RLock",
  "Condition of a non-lock")

local state = 0
local w = start(function()
  for _ = 1, 4 do
    time.sleep(0.01)
    cond:with(function() state = state + 1; cond:notify() end)
  end
end)
cond:acquire()
T.eq(cond:wait_for(function() return state == 4 end), true, "wait_for returns true when satisfied")
T.eq(state, 4, "wait_for saw every increment")
t0 = time.perf_counter()
T.eq(cond:wait_for(function() return false end, 0.1), false, "wait_for with a timeout returns false")
T.near(time.perf_counter() - t0, 0.1, "wait_for timeout not reset by wake-ups")
cond:release()
w:join()

local rc = threading.Condition(threading.RLock())
rc:acquire(); rc:acquire(); rc:acquire()
local other_got
local o = start(function() other_got = rc:acquire(false); if other_got then rc:release() end end)
o:join()
T.eq(other_got, false, "the RLock is held three deep")
local helper = start(function() rc:acquire(); rc:notify(); rc:release() end)
T.eq(rc:wait(2), true, "wait releases a recursive RLock fully")
helper:join()
rc:release(); rc:release(); rc:release()
T.raises(function() rc:release() end, "cannot release un-acquired lock", "and restores its depth")

-- {==== Semaphore ====}
local sem = threading.Semaphore(7)
sem:acquire()
local acquired, ts = 0, {}
for i = 1, 10 do
  ts[i] = start(function()
    sem:acquire(); acquired = acquired + 1
    sem:acquire(); acquired = acquired + 1
  end)
end
time.sleep(0.1)
T.eq(acquired, 6, "Semaphore(7): 6 acquisitions after one")
sem:release(7)
time.sleep(0.1)
T.eq(acquired, 13, "7 more after release(7)")
for _ = 1, 6 do sem:release() end
time.sleep(0.1)
T.eq(acquired, 19, "6 more after six releases")
sem:release()
joinall(ts)
T.eq(acquired, 20, "every thread got both")
local s2 = threading.Semaphore(2)
T.eq(s2:acquire(true, 0.005), true, "acquire(timeout) 1")
T.eq(s2:acquire(true, 0.005), true, "acquire(timeout) 2")
T.eq(s2:acquire(true, 0.005), false, "acquire(timeout) 3 times out")
T.eq(s2:acquire(false), false, "non-blocking acquire fails at 0")
T.raises(function() s2:acquire(false, 1) end, "can't specify a timeout", "non-blocking with timeout")
T.raises(function() threading.Semaphore(-1) end, "initial value must be >= 0", "negative value")
T.raises(function() s2:release(0) end, "n must be one or more", "release(0)")
local r1, r2 = threading.Semaphore(1):with(function(a) return a, "b" end, "a")
T.ok(r1 == "a" and r2 == "b", "Semaphore:with returns f's results")
do local _ <close> = threading.Semaphore(1):guard() end
T.ok(true, "Semaphore guard")
local b = threading.BoundedSemaphore(1)
T.raises(function() b:release() end, "Semaphore released too many times", "bounded over-release")
for limit = 1, 9 do
  local bs = threading.BoundedSemaphore(limit)
  local holders = {}
  for i = 1, limit do holders[i] = start(function() bs:acquire() end) end
  joinall(holders)
  local releasers = {}
  for i = 1, limit do releasers[i] = start(function() bs:release() end) end
  joinall(releasers)
  local ok = pcall(bs.release, bs)
  if ok then T.ok(false, "bounded limit " .. limit) end
end
T.ok(true, "BoundedSemaphore limits 1..9 raise on the extra release")

-- {==== Event ====}
local ev = threading.Event()
T.eq(ev:is_set(), false, "a new Event is clear")
T.eq(ev:wait(0), false, "wait(0) on a clear Event")
local got = 0
ts = {}
for i = 1, 5 do ts[i] = start(function() if ev:wait() then got = got + 1 end end) end
time.sleep(0.05)
ev:set()
joinall(ts)
T.eq(got, 5, "set() wakes all 5 waiters, each wait() true")
ev:clear()
got = 0
for i = 1, 5 do ts[i] = start(function() if ev:wait(5) then got = got + 1 end end) end
time.sleep(0.05)
ev:set(); ev:clear()
joinall(ts)
T.eq(got, 5, "waiters woken by set() then clear() still return true")
t0 = time.perf_counter()
T.eq(ev:wait(0.1), false, "wait(timeout) on a clear Event returns false")
T.near(time.perf_counter() - t0, 0.1, "after about the timeout")

-- {==== Barrier ====}
local trips = 0
local bar = threading.Barrier(5, function() trips = trips + 1 end)
local sums, ok_all = {}, true
ts = {}
for i = 1, 5 do
  ts[i] = start(function()
    for r = 1, 10 do
      local idx = bar:wait()
      sums[r] = (sums[r] or 0) + idx
      if trips < r then ok_all = false end -- the action ran before anyone left
    end
  end)
end
joinall(ts)
local good = true
for r = 1, 10 do if sums[r] ~= 10 then good = false end end
T.ok(good, "10 rounds: indices are 0..4 in each round")
T.eq(trips, 10, "the action ran once per trip")
T.ok(ok_all, "before anyone left")
local ab = threading.Barrier(5)
local broken = 0
ts = {}
for i = 1, 4 do
  ts[i] = start(function()
    local ok, e = pcall(ab.wait, ab)
    if not ok and e == threading.BrokenBarrierError then broken = broken + 1 end
  end)
end
time.sleep(0.05)
T.eq(ab.n_waiting, 4, "n_waiting counts the waiters")
ab:abort()
joinall(ts)
T.eq(broken, 4, "abort: the waiters get BrokenBarrierError")
T.eq(ab.broken, true, "broken after abort")
T.raises(function() ab:wait() end, "threading.BrokenBarrierError", "waiting on a broken barrier")
ab:reset()
T.eq(ab.broken, false, "reset repairs it")
ts = {}
local passed = 0
for i = 1, 5 do ts[i] = start(function() ab:wait(); passed = passed + 1 end) end
joinall(ts)
T.eq(passed, 5, "and it works again")
local rb = threading.Barrier(3)
broken = 0
ts = {}
for i = 1, 2 do
  ts[i] = start(function()
    local ok, e = pcall(rb.wait, rb)
    if not ok and e == threading.BrokenBarrierError then broken = broken + 1 end
  end)
end
time.sleep(0.05)
rb:reset()
joinall(ts)
T.eq(broken, 2, "reset frees waiters with BrokenBarrierError")
local tb = threading.Barrier(2, nil, 0.1)
t0 = time.perf_counter()
T.raises(function() tb:wait() end, "threading.BrokenBarrierError", "the default timeout breaks it")
T.near(time.perf_counter() - t0, 0.1, "after about the timeout")
local eb = threading.Barrier(2, function() error("action fails") end)
local other_err
local ot = start(function() local _, e = pcall(eb.wait, eb); other_err = e end)
local _, mine = pcall(eb.wait, eb)
ot:join()
T.ok((tostring(mine):find("action fails", 1, true) and other_err == threading.BrokenBarrierError)
  or (tostring(other_err):find("action fails", 1, true) and mine == threading.BrokenBarrierError),
  "a failing action: its thread gets the error, the other BrokenBarrierError")
local one = threading.Barrier(1)
T.ok(one:wait() == 0 and one:wait() == 0, "Barrier(1) never blocks")
T.eq(tostring(threading.BrokenBarrierError), "threading.BrokenBarrierError", "tostring of the error")
T.raises(function() threading.Barrier(0) end, "parties must be at least 1", "Barrier(0)")

-- {==== Timer ====}
local calls = {}
local tm = threading.Timer(0.05, function(...) calls[#calls + 1] = select("#", ...) end)
t0 = time.perf_counter()
tm:start(); tm:join()
T.eq(#calls, 1, "Timer calls f once")
T.eq(calls[1], 0, "with no arguments")
T.near(time.perf_counter() - t0, 0.05, "after the interval")
local t1 = threading.Timer(0.01, function() end, 1)
local t2 = threading.Timer(0.01, function() end)
t1.args[2] = "changed"
T.eq(t2.args.n, 0, "timers do not share their args")
local fired = false
local tc = threading.Timer(0.2, function() fired = true end)
tc:start()
tc:cancel()
tc:join()
T.eq(fired, false, "cancel() stops a waiting timer")
T.ok(tc.finished:is_set(), "finished is set")

-- {==== thread-local data ====}
local inits = 0
local data = threading.thread_local(function(self) inits = inits + 1; self.ready = true end)
data.x = "main"
local seen = {}
ts = {}
for i = 1, 3 do
  ts[i] = start(function()
    seen[i] = {x = data.x, ready = data.ready}
    data.x = "worker" .. i
    time.sleep(0.01)
    seen[i].mine = data.x
  end)
end
joinall(ts)
T.eq(data.x, "main", "main's value is untouched by workers")
local fine = true
for i = 1, 3 do
  if seen[i].x ~= nil or seen[i].ready ~= true or seen[i].mine ~= "worker" .. i then fine = false end
end
T.ok(fine, "each worker sees only its own fields, init ran in each")
T.eq(inits, 4, "init ran once per thread (main + 3)")
T.eq(threading["local"], threading.thread_local, "threading['local'] is thread_local")
T.done()
