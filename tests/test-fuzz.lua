-- A fuzzer of gilua's exported functions and methods: hostile arguments
-- from several threads at once, for a bounded time.  Any crash, sanitizer
-- report or hang fails the file (tests/run.sh runs it under a timeout).
--
--   GILUA_FUZZ_SEED=n     the seed (printed; the same seed makes the same
--                         calls in each worker, scheduling aside)
--   GILUA_FUZZ_SECONDS=s  how long (default 8)
--
-- Each worker is a daemon thread that calls random targets with random
-- arguments under pcall.  A call may block for good (a lock never
-- released, a queue never filled): that worker is then lost, and the main
-- thread starts fresh ones as time goes; at the end the workers are told
-- to stop and those still blocked are abandoned, as daemons are.
local T = require("tap")
local threading = require("threading")
local queue = require("queue")
local futures = require("futures")
local time = require("time")
local socket = require("socket")

local seed = tonumber(os.getenv("GILUA_FUZZ_SEED")) or (os.time() % 100000)
local seconds = tonumber(os.getenv("GILUA_FUZZ_SECONDS")) or 8
T.diag("fuzz seed " .. seed .. " (GILUA_FUZZ_SEED=" .. seed .. " to repeat), "
  .. seconds .. " s")

-- {======================================================================
-- Hostile values
-- ========================================================================

local tmp = os.tmpname()
local hostile = {
  0, -1, 1, 2, 0.5, -0.0, 1e300, -1e300, math.huge, -math.huge, 0 / 0,
  math.maxinteger, math.mininteger, 2 ^ 53, 1e-9, 1e9,
  "", "x", ("A"):rep(10000), "\0\1\2\255", "*l", "*a", "l", "a", "n", "r", "w",
  "ALL_COMPLETED", "FIRST_COMPLETED", "127.0.0.1", "http://127.0.0.1:1/",
  true, false,
  {}, {1, 2, 3}, {n = -1}, {n = math.maxinteger}, {n = 1.5}, {timeout = 0.001},
  {blocking = false}, {block = false, timeout = 0}, {parties = 2},
  setmetatable({}, {__index = function() error("index fails") end}),
  setmetatable({}, {__len = function() return -5 end}),
  setmetatable({}, {__len = function() return 0.5 end}),
  setmetatable({}, {__len = function() error("len fails") end}),
  setmetatable({}, {__tostring = function() error("tostring fails") end}),
  setmetatable({}, {__call = function() return 1 end}),
  setmetatable({}, {__lt = function() error("lt fails") end}),
  setmetatable({}, {__eq = function() return true end}),
  setmetatable({}, {__gc = function() time.sleep(0) end}),
  function() end,
  function() error("f fails") end,
  function() error(setmetatable({}, {__tostring = function() error("x") end})) end,
  function() coroutine.yield() end,
  function() time.sleep(0.001) end,
  function(...) return ... end,
  coroutine.create(function() end),
  io.stdout, io.stderr, print, error, coroutine.yield,
}
-- (nil is drawn separately: it cannot live in an array)

-- }======================================================================

-- {======================================================================
-- Targets: module functions, and methods of objects of every type
-- ========================================================================

local skip = { -- would change the process, not test it
  ["threading.stack_size"] = true, ["threading.setswitchinterval"] = true,
  ["threading.gil.trace_start"] = true, ["threading.gil.timeline"] = true,
  ["threading.excepthook"] = true, ["threading.__excepthook__"] = true,
  ["socket.connect"] = true, ["socket.bind"] = true, ["http.request"] = true,
  ["http.get"] = true,
}

local targets = {}
local function add_module(name, m)
  for k, f in pairs(m) do
    local full = name .. "." .. k
    if type(f) == "function" and not skip[full] then targets[#targets + 1] = {full, f} end
  end
end
add_module("threading", threading)
add_module("threading.gil", threading.gil)
add_module("queue", queue)
add_module("futures", futures)
add_module("time", time)
add_module("socket", socket)
-- http only against a port nobody listens on
local http = require("http")
targets[#targets + 1] = {"http.get", function(_, o) return http.get("http://127.0.0.1:1/", o) end}

local function new_objects()
  local srv = socket.bind("127.0.0.1", 0)
  srv:settimeout(0.01)
  local f = io.open(tmp, "w+")
  local ex = futures.ThreadPoolExecutor(2)
  return {
    threading.Lock(), threading.RLock(), threading.Condition(), threading.Semaphore(2),
    threading.BoundedSemaphore(2), threading.Event(), threading.Barrier(2, nil, 0.01),
    threading.Thread(function() end), threading.Timer(0.001, function() end),
    threading.thread_local(), queue.Queue(3), queue.LifoQueue(), queue.PriorityQueue(),
    queue.SimpleQueue(), ex, ex:submit(function() return 1 end),
    ex:submit(function() error("x") end), srv, socket.tcp(), f,
  }
end

local function methods_of(obj)
  local mt = getmetatable(obj)
  local list = {}
  local idx = type(mt) == "table" and (type(mt.__index) == "table" and mt.__index or mt.methods)
  if type(obj) == "userdata" and getmetatable(obj) == getmetatable(threading.Thread(print)) then
    idx = threading.Thread
  end
  for k, f in pairs(type(idx) == "table" and idx or {}) do
    if type(f) == "function" then list[#list + 1] = {k, f} end
  end
  for _, mm in ipairs{"__tostring", "__close", "__gc", "__index", "__newindex", "__pairs", "__len"} do
    if type(mt) == "table" and type(mt[mm]) == "function" and mm ~= "__gc" then
      list[#list + 1] = {mm, mt[mm]}
    end
  end
  return list
end

-- }======================================================================

-- {======================================================================
-- Workers
-- ========================================================================

local stop = false
local calls, started = 0, 0
local MAXTHREADS = 150

local function worker(wseed)
  local x = wseed * 2654435761 % 4294967296 + 1
  local function rand(n) -- xorshift32: the same sequence for the same seed
    x = x ~ (x << 13) & 0xffffffff
    x = x ~ (x >> 17)
    x = x ~ (x << 5) & 0xffffffff
    return x % n + 1
  end
  local objects = new_objects()
  local function value()
    local r = rand(10)
    if r == 1 then return nil end
    if r <= 3 then return objects[rand(#objects)] end
    return hostile[rand(#hostile)]
  end
  local spawning = {["Thread.start"] = true, ["Timer.start"] = true, submit = true, map = true,
    ["threading.Thread"] = true, ["threading.Timer"] = true}
  while not stop do
    local nargs = rand(5) - 1
    local args = {n = nargs}
    for i = 1, nargs do args[i] = value() end
    local name, f
    if rand(2) == 1 then
      name, f = table.unpack(targets[rand(#targets)])
    else
      local obj = objects[rand(#objects)]
      local ms = methods_of(obj)
      if #ms > 0 then
        name, f = table.unpack(ms[rand(#ms)])
        if rand(10) > 1 then table.insert(args, 1, obj); args.n = args.n + 1 end
      end
    end
    if f and not (spawning[name] and threading.active_count() > MAXTHREADS) then
      pcall(f, table.unpack(args, 1, args.n))
      calls = calls + 1
    end
    if rand(500) == 1 then objects = new_objects() end
  end
end

-- }======================================================================

local old_hook = threading.excepthook
threading.excepthook = function() end -- threads the fuzzer starts fail a lot
local t0 = time.monotonic()
local workers = {}
while time.monotonic() - t0 < seconds do
  if #workers < 40 then
    local t = threading.Thread{daemon = true, target = worker, args = {seed + started}}
    started = started + 1
    if pcall(t.start, t) then
      workers[#workers + 1] = t
      T.leave(t)
    end
  end
  time.sleep(0.2)
end
stop = true
time.sleep(0.5)
threading.excepthook = old_hook
for _, t in ipairs(threading.enumerate()) do
  if t ~= threading.main_thread() then T.leave(t) end
end
os.remove(tmp)
T.ok(calls > 1000, string.format("%d calls by %d workers, and the process is alive", calls, started))
local s = threading.gil.stats()
T.ok(s.acquisitions > 0, "the GIL is still sound")
T.done()
