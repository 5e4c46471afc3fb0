-- The gilua program: lua5.4's options and behaviour, plus the thread rules
-- luacheck: ignore 311
-- (waiting for non-daemon threads, abandoning daemons, Ctrl-C, print).
local T = require("tap")
local GILUA = os.getenv("GILUA") or "build/gilua"

local function tmpfile(code)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(code)
  f:close()
  return path
end

-- Runs a shell command; returns stdout, stderr and the exit status.
local function sh(cmd)
  local err = os.tmpname()
  local p = io.popen("{ " .. cmd .. "; } 2>" .. err)
  local out = p:read("a")
  local _, _, status = p:close()
  local f = io.open(err)
  local errout = f:read("a")
  f:close()
  os.remove(err)
  return out, errout, status
end

local out, err, status = sh(GILUA .. " -e 'print(1 + 1)'")
T.eq(out, "2\n", "-e runs a statement")
T.eq(status, 0, "exit status 0")
out = sh(GILUA .. " -v")
T.ok(out:find("Lua 5.4", 1, true), "-v shows the version")
out = sh("echo 'print(\"from stdin\", ...)' | " .. GILUA .. " - a b")
T.eq(out, "from stdin\ta\tb\n", "- runs stdin with arguments")
local script = tmpfile("print(#arg, arg[0] ~= nil, arg[1], arg[2], arg[-1] ~= nil)")
out = sh(GILUA .. " -- " .. script .. " x y")
T.eq(out, "2\ttrue\tx\ty\ttrue\n", "-- and the arg table")
out = sh(GILUA .. " -l string -e 'print(string == require(\"string\"))'")
T.eq(out, "true\n", "-l requires a module")
out = sh(GILUA .. " -l s=string -e 'print(s.upper(\"x\"))'")
T.eq(out, "X\n", "-l g=mod")
local failing = tmpfile("local x = 1\nerror('boom')\n")
out, err, status = sh(GILUA .. " " .. failing)
T.eq(status, 1, "an error exits with status 1")
T.ok(err:find("^" .. GILUA:gsub("%p", "%%%0") .. ": .*:2: boom"), "PROGNAME: file:line: message")
T.ok(err:find("stack traceback", 1, true), "with a traceback")
out, err, status = sh(GILUA .. " -e 'os.exit(3)'")
T.eq(status, 3, "os.exit(3)")
out = sh("LUA_INIT='print(\"init\")' " .. GILUA .. " -e 'print(\"main\")'")
T.eq(out, "init\nmain\n", "LUA_INIT runs first")
out = sh("LUA_INIT_5_4='print(\"init54\")' LUA_INIT='print(\"init\")' " .. GILUA .. " -e ''")
T.eq(out, "init54\n", "LUA_INIT_5_4 wins")
out = sh("LUA_INIT='print(\"init\")' " .. GILUA .. " -E -e 'print(\"main\")'")
T.eq(out, "main\n", "-E ignores LUA_INIT")
out, err, status = sh(GILUA .. " -x")
T.ok(status == 1 and err:find("unrecognized option '-x'", 1, true), "bad option")
out = sh(GILUA .. " --switch-interval=0.001 -e 'print(require(\"threading\").getswitchinterval())'")
T.eq(out, "0.001\n", "--switch-interval sets the interval")
out, err, status = sh(GILUA .. " --switch-interval=0 -e ''")
T.ok(status == 1 and err:find("switch-interval", 1, true), "--switch-interval=0 is refused")
out, err, status = sh(GILUA .. " --switch-interval=abc -e ''")
T.ok(status == 1 and err:find("switch-interval", 1, true), "--switch-interval=abc is refused")
out, err = sh(GILUA .. " -W -e 'warn(\"hello\")'")
T.ok(err:find("Lua warning: hello", 1, true), "-W turns warnings on")

-- the end of the program
out, err, status = sh(GILUA .. " " .. tmpfile([[
local threading = require("threading")
local time = require("time")
threading.Thread(function() time.sleep(0.5) print("late print") end):start()
]]))
T.ok(out == "late print\n" and err == "" and status == 0, "the program waits for a non-daemon thread")
out, err, status = sh(GILUA .. " " .. tmpfile([[
local threading = require("threading")
local time = require("time")
threading.Thread(function() time.sleep(0.3) print("still printed") end):start()
error("main fails")
]]))
T.ok(out == "still printed\n" and status == 1, "and also when the main chunk fails")
out = sh(GILUA .. " " .. tmpfile([[
local threading = require("threading")
local time = require("time")
threading.Thread(function()
  threading.Thread(function() time.sleep(0.3) print("grandchild") end):start()
end):start()
]]))
T.eq(out, "grandchild\n", "a thread started from a thread is waited for")
local started = io.popen("date +%s.%N"):read("n")
out, err, status = sh(GILUA .. " " .. tmpfile([[
local threading = require("threading")
local time = require("time")
local held = threading.Lock(); held:acquire()
threading.Thread{daemon = true, target = function() time.sleep(1000) end}:start()
threading.Thread{daemon = true, target = function() held:acquire() end}:start()
threading.Thread{daemon = true, target = function() while true do end end}:start()
threading.Thread{daemon = true, target = function()
  local co = coroutine.wrap(function() while true do end end) co() end}:start()
time.sleep(0.1)
print("main done")
]]))
local ended = io.popen("date +%s.%N"):read("n")
T.ok(out == "main done\n" and status == 0 and err == "", "daemon threads are abandoned")
T.ok(ended - started < 2, string.format("the process exits promptly (%.2f s)", ended - started))

-- Ctrl-C in the main thread while it waits
for _, case in ipairs{
  {"time.sleep", "time.sleep(30)"},
  {"join", "local t = threading.Thread{daemon = true, target = function() time.sleep(30) end}; t:start(); t:join()"},
  {"lock acquire", "local l = threading.Lock(); l:acquire(); l:acquire()"},
  {"a busy loop", "while true do end"},
} do
  -- ThreadSanitizer delivers signals only at calls it intercepts, which a
  -- pure Lua loop in the uninstrumented liblua never makes
  if case[1] == "a busy loop" and os.getenv("GILUA_SANITIZER") == "tsan" then
    T.skip("Ctrl-C interrupts the main thread in a busy loop", "ThreadSanitizer")
    goto continue
  end
  local path = tmpfile("local threading = require('threading'); local time = require('time'); "
    .. case[2])
  local o, e = sh(string.format(
    "timeout --foreground -s KILL 20 %s %s & p=$!; sleep 0.5; kill -INT $p; wait $p; echo $?", GILUA, path))
  T.ok(o:match("(%d+)%s*$") == "1" and e:find("interrupted!", 1, true),
    "Ctrl-C interrupts the main thread in " .. case[1])
  ::continue::
end

-- print is line-atomic across threads
out = sh(GILUA .. " " .. tmpfile([[
local threading = require("threading")
local ts = {}
for i = 1, 8 do
  local line = string.rep(string.char(64 + i), 200)
  ts[i] = threading.Thread(function() for _ = 1, 2000 do print(line) end end)
  ts[i]:start()
end
for i = 1, 8 do ts[i]:join() end
]]))
local lines, bad = 0, 0
for l in out:gmatch("[^\n]*\n") do
  lines = lines + 1
  if l ~= string.rep(l:sub(1, 1), 200) .. "\n" then bad = bad + 1 end
end
T.eq(lines, 16000, "8 threads x 2000 prints")
T.eq(bad, 0, "no printed line is mixed")
T.done()
