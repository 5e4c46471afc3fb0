-- Lock and RLock: one behaviour suite run against both (CPython's
-- lock_tests.py), then what differs.
-- luacheck: globals counter
local T = require("tap")
local threading = require("threading")
local time = require("time")

local function start(f, ...)
  local t = threading.Thread(f, ...)
  t:start()
  return t
end

local function suite(name, new)
  local lock = new()
  T.eq(lock:locked(), false, name .. ": new lock is unlocked")
  T.eq(lock:acquire(), true, name .. ": acquire")
  T.eq(lock:locked(), true, name .. ": locked after acquire")
  lock:release()
  T.eq(lock:locked(), false, name .. ": unlocked after release")
  T.eq(lock:acquire(false), true, name .. ": non-blocking acquire of a free lock")
  lock:release()

  -- held by another thread: non-blocking fails, a timeout expires
  local held, go = threading.Event(), threading.Event()
  local owner = start(function() lock:acquire(); held:set(); go:wait(); lock:release() end)
  held:wait()
  T.eq(lock:acquire(false), false, name .. ": non-blocking acquire of a held lock")
  local t0 = time.perf_counter()
  T.eq(lock:acquire(true, 0.1), false, name .. ": acquire with timeout fails")
  T.near(time.perf_counter() - t0, 0.1, name .. ": after about the timeout")
  T.eq(lock:acquire{timeout = 0.05}, false, name .. ": acquire{timeout=} form")
  go:set()
  owner:join()
  T.eq(lock:acquire(true, 0), true, name .. ": re-acquirable after a timeout")
  lock:release()

  -- 5 threads block until release, then all get it
  lock:acquire()
  local done = 0
  local ts = {}
  for i = 1, 5 do ts[i] = start(function() lock:acquire(); done = done + 1; lock:release() end) end
  time.sleep(0.05)
  T.eq(done, 0, name .. ": contenders wait while the lock is held")
  lock:release()
  for i = 1, 5 do ts[i]:join() end
  T.eq(done, 5, name .. ": all contenders got the lock")

  -- with and guard
  local a, b = lock:with(function(x, y) return x + y, "two" end, 1, 2)
  T.ok(a == 3 and b == "two", name .. ": with returns f's results")
  T.eq(lock:locked(), false, name .. ": with released")
  local ok, err = pcall(lock.with, lock, function() error({tag = 1}) end)
  T.ok(not ok and type(err) == "table" and err.tag == 1, name .. ": with passes f's error on")
  T.eq(lock:locked(), false, name .. ": with released after an error")
  do
    local _ <close> = lock:guard()
    T.eq(lock:locked(), true, name .. ": guard holds the lock in its block")
  end
  T.eq(lock:locked(), false, name .. ": guard released at block exit")
  ok = pcall(function()
    local _ <close> = lock:guard()
    error("inside")
  end)
  T.ok(not ok and not lock:locked(), name .. ": guard released on error")

  -- exact counts under contention
  for _, form in ipairs{"acquire", "with", "guard"} do
    counter = 0
    local body = ({
      acquire = function() for _ = 1, 200000 do lock:acquire(); counter = counter + 1; lock:release() end end,
      with = function()
        local function inc() counter = counter + 1 end
        for _ = 1, 200000 do lock:with(inc) end
      end,
      guard = function()
        for _ = 1, 200000 do local _ <close> = lock:guard(); counter = counter + 1 end
      end,
    })[form]
    ts = {}
    for i = 1, 4 do ts[i] = start(body) end
    for i = 1, 4 do ts[i]:join() end
    T.eq(counter, 800000, name .. ": 4 threads x 200,000 increments with " .. form)
  end
  counter = 0
  ts = {}
  for i = 1, 8 do
    ts[i] = start(function()
      for _ = 1, 20000 do
        lock:acquire()
        local c = counter
        if math.random() < 0.001 then time.sleep(0) end -- let go of the GIL inside
        counter = c + 1
        lock:release()
      end
    end)
  end
  for i = 1, 8 do ts[i]:join() end
  T.eq(counter, 160000, name .. ": 8 contending threads, exact")

  -- misuse
  T.raises(function() lock:acquire(false, 1) end,
    "can't specify a timeout for a non-blocking call", name .. ": timeout with blocking=false")
  T.raises(function() lock:acquire(true, -2) end,
    "timeout value must be a non-negative number", name .. ": negative timeout")
  T.raises(function() lock:acquire(true, threading.TIMEOUT_MAX * 2) end,
    "timeout value is too large", name .. ": timeout above TIMEOUT_MAX")
  T.raises(function() lock:acquire("yes") end, "boolean expected", name .. ": blocking type")
  T.raises(function() lock.acquire(42) end, "expected", name .. ": acquire on a number")
  T.ok(tostring(lock):find(name, 1, true), name .. ": tostring names the type")
end

suite("threading.Lock", threading.Lock)
suite("threading.RLock", threading.RLock)

-- Lock: released by another thread is fine; release of an unlocked lock errors
local lock = threading.Lock()
lock:acquire()
local t = start(function() lock:release() end)
t:join()
T.eq(lock:locked(), false, "a Lock may be released by another thread")
T.raises(function() lock:release() end, "release unlocked lock", "release of an unlocked Lock")
T.raises(function() lock.release(threading.RLock()) end, "threading.Lock expected",
  "Lock method on an RLock")
T.eq(lock:acquire(), true, "Lock is not reentrant: first acquire")
T.eq(lock:acquire(false), false, "Lock is not reentrant: second acquire fails")
lock:release()

-- RLock: reentrant, owner-only release
local r = threading.RLock()
T.raises(function() r:release() end, "cannot release un-acquired lock", "release unowned RLock")
r:acquire(); r:acquire(); r:acquire()
T.ok(tostring(r):find("count 3", 1, true), "RLock depth 3")
t = start(function()
  local ok, err = pcall(r.release, r)
  T.ok(not ok and tostring(err):find("cannot release un-acquired lock", 1, true),
    "RLock release by a non-owner raises")
  T.eq(r:acquire(false), false, "RLock held by another thread")
end)
t:join()
r:release(); r:release(); r:release()
T.eq(r:locked(), false, "RLock released after 3 releases")
T.raises(function() r:release() end, "cannot release un-acquired lock",
  "release after full release")
T.done()
