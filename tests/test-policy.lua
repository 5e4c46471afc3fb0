-- The GIL's scheduling policies (issue 13): fifo (CPython's, with the
-- convoy) and fair (charged by GIL time, preemption by threads back from
-- a wait).
local T = require("tap")
local threading = require("threading")
local time = require("time")
local GILUA = os.getenv("GILUA") or "build/gilua"
local SAN = os.getenv("GILUA_SANITIZER")

local function median(t)
  table.sort(t)
  return t[(#t + 1) // 2]
end

local initial = threading.getswitchpolicy()

T.case("selecting a policy", function()
  T.ok(initial == "fair" or initial == "fifo", "a policy is set: " .. initial)
  threading.setswitchpolicy("fifo")
  T.eq(threading.getswitchpolicy(), "fifo", "fifo")
  threading.setswitchpolicy("fair")
  T.eq(threading.getswitchpolicy(), "fair", "fair")
  T.raises(function() threading.setswitchpolicy("rr") end, "setswitchpolicy", "a bad name names the function")
  T.raises(function() threading.setswitchpolicy("rr") end, "unknown policy", "and says why")
  T.raises(function() threading.setswitchpolicy() end, "string expected", "a name is needed")
  local p = io.popen(GILUA .. " --gil-policy=fifo -e 'print(require(\"threading\").getswitchpolicy())' 2>&1")
  T.eq(p:read("a"), "fifo\n", "--gil-policy=fifo")
  p:close()
  p = io.popen(GILUA .. " --gil-policy=rr -e '' 2>&1; echo status $?")
  local out = p:read("a")
  p:close()
  T.ok(out:find("fair or fifo", 1, true) and out:find("status 1", 1, true),
    "--gil-policy=rr is refused: " .. out:gsub("\n", " "))
end)

-- A thread sleeping 2 ms in a loop next to a spinner: how late it wakes up.
local function sleeper_lateness(policy)
  threading.setswitchpolicy(policy)
  local stop, late = false, {}
  local spinner = threading.Thread(function() local x = 0 while not stop do x = x + 1 end end)
  spinner:start()
  local t = threading.Thread(function()
    for i = 1, 100 do
      local t0 = time.perf_counter()
      time.sleep(0.002)
      late[i] = time.perf_counter() - t0 - 0.002
    end
  end)
  t:start()
  t:join()
  stop = true
  spinner:join()
  return median(late)
end

T.case("fair ends the convoy, fifo shows it", function()
  if SAN then return T.skip("latencies", "sanitizers change the timings") end
  local fair = sleeper_lateness("fair")
  local fifo = sleeper_lateness("fifo")
  T.ok(fair < 0.001, string.format("fair: a sleeper next to a spinner regains the GIL in %.3f ms (median)",
    fair * 1e3))
  T.ok(fifo > 0.002, string.format("fifo: it waits about an interval: %.3f ms (the convoy)", fifo * 1e3))
end)

T.case("fair: two spinners both progress, at the interval", function()
  threading.setswitchpolicy("fair")
  threading.gil.reset_stats()
  local stop, counts = false, {0, 0}
  local ts = {}
  for i = 1, 2 do
    ts[i] = threading.Thread{name = "spin" .. i, target = function()
      while not stop do counts[i] = counts[i] + 1 end
    end}
    ts[i]:start()
  end
  time.sleep(0.3)
  stop = true
  for i = 1, 2 do ts[i]:join() end
  local lo, hi = math.min(counts[1], counts[2]), math.max(counts[1], counts[2])
  T.ok(lo > 0.3 * hi, string.format("both run: %d and %d", counts[1], counts[2]))
  local s = threading.gil.stats().by_name
  T.eq(s.spin1.preemptions + s.spin2.preemptions, 0, "CPU-bound threads never preempt each other")
end)

T.case("fair: the unlocked counter still loses updates", function()
  threading.setswitchpolicy("fair")
  local lost = false
  for _ = 1, 5 do
    counter = 0 -- luacheck: ignore 111
    local ts = {}
    for i = 1, 4 do
      ts[i] = threading.Thread(function()
        for _ = 1, 1000000 do counter = counter + 1 end -- luacheck: ignore 111 113
      end)
      ts[i]:start()
    end
    for i = 1, 4 do ts[i]:join() end
    if counter < 4000000 then lost = true break end -- luacheck: ignore 113
  end
  T.ok(lost, "a switch still lands between the read and the write")
end)

T.case("fair: 10,000 tiny blocking calls take no more than their share from a spinner", function()
  threading.setswitchpolicy("fair")
  threading.gil.reset_stats()
  local stop = false
  local spinner = threading.Thread{name = "spinner", target = function()
    local x = 0
    while not stop do x = x + 1 end
  end}
  spinner:start()
  local t0 = time.monotonic()
  local t = threading.Thread{name = "tiny", target = function()
    for _ = 1, 10000 do time.sleep(1e-6) end
  end}
  t:start()
  t:join()
  local elapsed = time.monotonic() - t0
  stop = true
  spinner:join()
  local s = threading.gil.stats().by_name
  local share = s.spinner.held_seconds / elapsed
  T.ok(share > 0.4, string.format("the spinner held the GIL %.0f%% of the time (%d preemptions)",
    share * 100, s.tiny.preemptions))
  T.ok(s.tiny.preemptions > 0, "the tiny calls did preempt")
end)

T.case("fair: statistics", function()
  threading.setswitchpolicy("fair")
  local s = threading.gil.stats()
  T.eq(s.policy, "fair", "stats().policy")
  T.eq(type(s.preemptions), "number", "stats().preemptions")
  local me = s.by_name.MainThread
  T.ok(type(me.preemptions) == "number" and type(me.preempted) == "number"
    and type(me.charge_seconds) == "number", "per thread: preemptions, preempted, charge_seconds")
  T.ok(s.releases.preempt ~= nil and s.releases.yield ~= nil, "releases by preempt and yield")
  T.ok(threading.gil.report():find("policy fair", 1, true), "the report names the policy")
end)

-- Preemption requests landing in coroutines, pcall, errors and finalizers.
T.case("fair: many preemptions against coroutines, pcall, errors and finalizers", function()
  threading.setswitchpolicy("fair")
  threading.gil.reset_stats()
  local want = SAN and 5000 or 100000
  local stop, bad = false, 0
  local worker = threading.Thread(function()
    while not stop do
      local co = coroutine.wrap(function(a)
        for i = 1, 50 do a = a + coroutine.yield(i) end
        return a
      end)
      local acc = co(0)
      for i = 1, 50 do acc = co(i) or acc end
      local ok, err = pcall(function() error("x") end)
      if ok or not tostring(err):find("x") then bad = bad + 1 end
      setmetatable({}, {__gc = function() local y = 0 for k = 1, 100 do y = y + k end end})
      local ok2 = pcall(string.rep, "x", -1)
      if not ok2 then bad = bad + 1 end
    end
  end)
  worker:start()
  local t0 = time.monotonic()
  local sleeper = threading.Thread(function()
    while threading.gil.stats().preemptions < want and time.monotonic() - t0 < 60 do
      for _ = 1, 100 do time.sleep(1e-6) end
    end
  end)
  sleeper:start()
  sleeper:join()
  stop = true
  worker:join()
  local n = threading.gil.stats().preemptions
  T.ok(n >= want, string.format("%d preemption requests", n))
  T.eq(bad, 0, "every coroutine, pcall and error behaved")
end)

threading.setswitchpolicy(initial)
T.done()
