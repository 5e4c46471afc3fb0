-- make install into a temporary prefix; a host program built against it
-- with pkg-config; the stock lua5.4 loading the installed threading.so.
local T = require("tap")

local function sh(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok, _, code = p:close()
  return ok, out, code
end

local prefix = os.tmpname()
os.remove(prefix)
local build = (os.getenv("GILUA") or "build/gilua"):match("^(.*)/gilua$") or "build"

local ok, out = sh(string.format("make -s install-files BUILD=%s PREFIX=%s", build, prefix))
T.ok(ok, "make install into a temporary prefix")
if not ok then T.diag(out) end
for _, f in ipairs{"bin/gilua", "include/gilua.h", "lib/libgilua.a", "lib/libgilua.so",
  "lib/libgilua.so.0", "lib/pkgconfig/gilua.pc", "lib/lua/5.4/threading.so",
  "share/man/man1/gilua.1"} do
  local fh = io.open(prefix .. "/" .. f)
  T.ok(fh ~= nil, "installed " .. f)
  if fh then fh:close() end
end

local _, soname = sh("objdump -p " .. prefix .. "/lib/libgilua.so | grep SONAME")
T.ok(soname:find("libgilua.so.0", 1, true), "libgilua.so has a soname")

local env = "PKG_CONFIG_PATH=" .. prefix .. "/lib/pkgconfig "
local _, flags = sh(env .. "pkg-config --cflags --libs gilua")
T.ok(flags:find("-lgilua", 1, true) and flags:find(prefix .. "/include", 1, true),
  "pkg-config gives the flags")

if os.getenv("GILUA_SANITIZER") then
  -- an uninstrumented host cannot load a sanitizer build of the library
  for _, name in ipairs{"the example builds", "the example runs", "host calls overlap",
    "host threads called into Lua", "lua5.4 runs threading.so", "lua5.4 threads overlap",
    "lua5.4 waits for threads", "make uninstall"} do
    T.skip(name, "sanitizer build")
  end
  os.execute("rm -rf " .. prefix)
  T.done()
end

local exdir = os.tmpname()
os.remove(exdir)
ok, out = sh(string.format("cp -r examples/embed %s && cd %s && %s make -s", exdir, exdir,
  env))
T.ok(ok, "the example builds with pkg-config")
if not ok then T.diag(out) end
local code
ok, out, code = sh(exdir .. "/host")
T.ok(ok, "the example runs (status " .. tostring(code) .. ")")
local secs = tonumber(out:match("took (%d+%.%d+) s"))
T.ok(secs and secs < 0.5, "its 3 blocking host calls overlap (" .. tostring(secs) .. " s)")
T.ok(out:find("greetings from host threads: 10", 1, true), "host threads called into Lua")

ok, out = sh(string.format([[LUA_CPATH='%s/lib/lua/5.4/?.so' timeout 30 lua5.4 -e '
local threading = require("threading")
local time = require("time")
local t0 = time.perf_counter()
local ts = {}
for i = 1, 4 do ts[i] = threading.Thread(time.sleep, 0.3); ts[i]:start() end
for i = 1, 4 do ts[i]:join() end
print(string.format("elapsed %%.3f", time.perf_counter() - t0))
assert(require("queue").Queue and require("futures").ThreadPoolExecutor)
threading.Thread(function() time.sleep(0.2) print("late thread done") end):start()']],
  prefix))
T.ok(ok, "lua5.4 runs threads through threading.so")
local elapsed = tonumber(out:match("elapsed (%d+%.%d+)"))
T.ok(elapsed and elapsed < 0.6, "4 threads sleeping 0.3 s in lua5.4 overlap (" ..
  tostring(elapsed) .. " s)")
T.ok(out:find("late thread done", 1, true), "lua5.4 waits for non-daemon threads at exit")

ok = sh(string.format("make -s uninstall PREFIX=%s && test ! -e %s/bin/gilua", prefix,
  prefix))
T.ok(ok, "make uninstall removes it")
os.execute("rm -rf " .. prefix .. " " .. exdir)
T.done()
