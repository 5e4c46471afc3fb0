-- The contract stays honest: every module name and every method SPEC.md
-- shows exists in gilua, and appears in the README and in a test.  SPEC.md
-- is read from ../shared/ (beside the repository, as in CI); without it
-- the file has nothing to check.
local T = require("tap")
local threading = require("threading")
local futures = require("futures")
local socket = require("socket")

local f = io.open("../shared/SPEC.md")
if not f then
  T.skip("SPEC.md coverage", "../shared/SPEC.md not found")
  T.done()
end
local spec = f:read("a")
f:close()

local function slurp(paths)
  local all = {}
  for _, p in ipairs(paths) do
    local h = io.open(p)
    if h then all[#all + 1] = h:read("a"); h:close() end
  end
  return table.concat(all, "\n")
end
local readme = slurp{"README.md"}
local tests = {}
local ls = io.popen("ls tests/*.lua tests/c/*.c")
for p in ls:lines() do tests[#tests + 1] = p end
ls:close()
local testtext = slurp(tests)

-- names that are not API: a file name, prose
local SKIP = {["threading.so"] = "the module file, not a name"}

-- module.name[.name]
local missing, untested, unlisted = {}, {}, {}
local seen = {}
for path in spec:gmatch("%f[%w](%l+%.[%a_][%w_.]*)") do
  local mod = path:match("^(%l+)%.")
  if not seen[path] and not SKIP[path] and ({threading = 1, queue = 1, futures = 1, time = 1,
      http = 1, socket = 1})[mod] then
    seen[path] = true
    local v = require(mod)
    for part in path:gmatch("%.([%a_][%w_]*)") do v = type(v) == "table" and v[part] or nil end
    if v == nil then missing[#missing + 1] = path end
    local leaf = path:match("([%a_][%w_]*)$")
    if not testtext:find(leaf, 1, true) then untested[#untested + 1] = path end
    if not readme:find(leaf, 1, true) then unlisted[#unlisted + 1] = path end
  end
end
T.ok(next(seen) ~= nil, "SPEC.md names were found")
T.eq(table.concat(missing, ", "), "", "every module name in SPEC.md exists")
T.eq(table.concat(untested, ", "), "", "every module name in SPEC.md is in a test")
T.eq(table.concat(unlisted, ", "), "", "every module name in SPEC.md is in the README")

-- obj:method(...) with the objects SPEC.md's examples use
local server = assert(socket.bind("127.0.0.1", 0))
local _, port = server:getsockname()
local client = assert(socket.connect("127.0.0.1", port))
local ex = futures.ThreadPoolExecutor(1)
local objects = {
  t = threading.Thread(print), w = threading.Thread(print), lock = threading.Lock(),
  rlock = threading.RLock(), cond = threading.Condition(), sem = threading.Semaphore(),
  bsem = threading.BoundedSemaphore(), ev = threading.Event(), b = threading.Barrier(1),
  tm = threading.Timer(1, print), q = require("queue").Queue(), ex = ex,
  fut = ex:submit(math.max, 1, 2), server = server, c = client, client = client,
}
local nomethod, methods = {}, {}
for obj, name in spec:gmatch("%f[%w](%l+):([%a_]+)%(") do
  local o = objects[obj]
  if o ~= nil and not methods[obj .. ":" .. name] then
    methods[obj .. ":" .. name] = true
    if o[name] == nil then nomethod[#nomethod + 1] = obj .. ":" .. name end
  end
end
T.ok(next(methods) ~= nil, "SPEC.md methods were found")
T.eq(table.concat(nomethod, ", "), "", "every method SPEC.md shows exists")
ex:shutdown()
client:close()
server:close()
T.done()
