-- The io and os functions that block release the GIL, and otherwise
-- behave as stock Lua's (Lua's own testes/files.lua checks the rest).
local T = require("tap")
local threading = require("threading")
local time = require("time")

local tmpdir = os.tmpname()
os.remove(tmpdir)
assert(os.execute("mkdir -p " .. tmpdir))
local function tmp(name) return tmpdir .. "/" .. name end

local with_ticker = T.with_ticker

-- Each blocking call takes ~0.4 s: at 10 ms a tick, a free GIL gives ~40.
local MIN_TICKS = 10

do
  local seen, line = with_ticker(function()
    local p = io.popen("sleep 0.4; echo from-pipe")
    local l = p:read("l")
    p:close()
    return l
  end)
  T.eq(line, "from-pipe", "popen read returns the line")
  T.ok(seen >= MIN_TICKS, "ticks continue while reading a pipe (" .. seen .. ")")
end

do
  local seen, lines = with_ticker(function()
    local got = {}
    for l in io.popen("sleep 0.2; echo a; sleep 0.2; echo b"):lines() do
      got[#got + 1] = l
    end
    return table.concat(got, ",")
  end)
  T.eq(lines, "a,b", "lines() over a pipe")
  T.ok(seen >= MIN_TICKS, "ticks continue in lines() on a pipe (" .. seen .. ")")
end

do
  local seen, ok, how, code = with_ticker(function()
    return os.execute("sleep 0.4; exit 3")
  end)
  T.eq(ok, nil, "os.execute fails on exit 3")
  T.eq(how, "exit", "os.execute says exit")
  T.eq(code, 3, "os.execute gives the status")
  T.ok(seen >= MIN_TICKS, "ticks continue during os.execute (" .. seen .. ")")
end

do
  local seen, a, b, c = with_ticker(function()
    return io.popen("sleep 0.4"):close()
  end)
  T.ok(a == true and b == "exit" and c == 0, "popen close returns the exit status")
  T.ok(seen >= MIN_TICKS, "ticks continue while pclose waits (" .. seen .. ")")
end

do -- a FIFO: opening waits for the writer, reading waits for data
  local fifo = tmp("fifo")
  assert(os.execute("mkfifo " .. fifo))
  assert(os.execute("(sleep 0.3; echo x; sleep 0.3; echo y) > " .. fifo .. " &"))
  local seen, first, second = with_ticker(function()
    local f = assert(io.open(fifo, "r"))
    local l1 = f:read("l")
    local l2 = f:read("l")
    f:close()
    return l1, l2
  end)
  T.eq(first, "x", "FIFO first line")
  T.eq(second, "y", "FIFO second line")
  T.ok(seen >= 2 * MIN_TICKS, "ticks continue in open and read of a FIFO (" .. seen .. ")")
end

do -- writing to a slow reader blocks in write, not the other threads
  local seen, ok = with_ticker(function()
    local p = io.popen("sleep 0.4; cat > /dev/null", "w")
    local chunk = string.rep("x", 65536)
    for _ = 1, 16 do assert(p:write(chunk)) end
    return p:close()
  end)
  T.ok(ok, "writing 1 MiB into a slow pipe succeeds")
  T.ok(seen >= MIN_TICKS, "ticks continue while write blocks (" .. seen .. ")")
end

do -- stdin of a subprocess
  local gilua = os.getenv("GILUA") or "build/gilua"
  local script = tmp("stdin.lua")
  local f = assert(io.open(script, "w"))
  f:write([[
local threading = require("threading")
local time = require("time")
local ticks, stop = 0, false
local t = threading.Thread(function()
  while not stop do time.sleep(0.01); ticks = ticks + 1 end
end)
t:start()
local line = io.read("l")
stop = true
t:join()
print(line, ticks)
]])
  f:close()
  local p = io.popen("(sleep 0.4; echo typed) | " .. gilua .. " " .. script)
  local out = p:read("a")
  p:close()
  local line, ticks = out:match("^(%S+)\t(%d+)")
  T.eq(line, "typed", "io.read from stdin in a subprocess")
  T.ok(tonumber(ticks) and tonumber(ticks) >= MIN_TICKS,
    "ticks continue while io.read waits on stdin (" .. tostring(ticks) .. ")")
end

do -- io.write to a stdout that is a slow pipe, and a flush that waits
  local gilua = os.getenv("GILUA") or "build/gilua"
  local script = tmp("stdout.lua")
  local f = assert(io.open(script, "w"))
  f:write([[
local threading = require("threading")
local time = require("time")
local ticks, stop = 0, false
local t = threading.Thread(function()
  while not stop do time.sleep(0.01); ticks = ticks + 1 end
end)
t:start()
time.sleep(0.02)
local chunk = string.rep("y", 65536)
local before = ticks
for _ = 1, 16 do io.write(chunk) end
io.stdout:flush()
local during_write = ticks - before
local p = io.popen("sleep 0.4; cat > /dev/null", "w")
p:setvbuf("full", 65536)
p:write(string.rep("z", 100))
before = ticks
p:write(string.rep("z", 200000))
p:flush()
local during_flush = ticks - before
p:close()
stop = true
t:join()
io.stderr:write(during_write, " ", during_flush, "\n")
]])
  f:close()
  local p = io.popen("{ " .. gilua .. " " .. script ..
    " | (sleep 0.4; cat > /dev/null); } 2>&1")
  local out = p:read("a")
  p:close()
  local w, fl = out:match("(%d+) (%d+)")
  T.ok(tonumber(w) and tonumber(w) >= MIN_TICKS,
    "ticks continue while io.write waits on a slow stdout (" .. tostring(w) .. ")")
  T.ok(tonumber(fl) and tonumber(fl) >= MIN_TICKS,
    "ticks continue while write and flush wait on a slow pipe (" .. tostring(fl) .. ")")
end

do -- many threads writing one file: no write call is ever split
  local path = tmp("shared.txt")
  local f = assert(io.open(path, "w"))
  local ts = {}
  for i = 1, 8 do
    ts[i] = threading.Thread(function()
      for j = 1, 1000 do
        assert(f:write("thread ", i, " line ", j, " ", string.rep(tostring(i), 40), "\n"))
      end
    end)
    ts[i]:start()
  end
  for i = 1, 8 do ts[i]:join() end
  f:close()
  local n, bad, seen = 0, 0, {}
  for l in io.lines(path) do
    n = n + 1
    local i, j, fill = l:match("^thread (%d) line (%d+) (%d+)$")
    if not i or fill ~= string.rep(i, 40) then
      bad = bad + 1
    else
      seen[i .. ":" .. j] = true
    end
  end
  local distinct = 0
  for _ in pairs(seen) do distinct = distinct + 1 end
  T.eq(n, 8000, "8 threads x 1000 writes give 8000 lines")
  T.eq(bad, 0, "no line is split or mixed")
  T.eq(distinct, 8000, "every write arrived once")
end

do -- close from another thread wakes a reader that released the GIL
  local p = io.popen("sleep 0.3; echo late")
  local got, msg, code
  local t = threading.Thread(function() got, msg, code = p:read("l") end)
  t:start()
  time.sleep(0.05)
  local t0 = time.monotonic()
  p:close()
  t:join()
  T.ok(got == nil and type(msg) == "string" and type(code) == "number",
    "the woken reader gets the io error: " .. tostring(msg))
  T.ok(time.monotonic() - t0 < 1, "close does not wait for the child's output")
  T.raises(function() return p:read("l") end, "attempt to use a closed file",
    "reading a closed file raises")
end

do -- the stock behaviours
  local f, msg, code = io.open(tmp("missing/none"), "r")
  T.ok(f == nil and msg:find("No such file", 1, true) and type(code) == "number",
    "io.open failure returns nil, message, errno")
  T.raises(function() io.open(tmp("x"), "rw") end, "invalid mode", "invalid mode")
  local path = tmp("formats.txt")
  f = assert(io.open(path, "w"))
  T.eq(io.type(f), "file", "io.type of an open file")
  f:write(12, " ", 3.5, " 0x10 word\nsecond line\nthird")
  f:close()
  T.eq(io.type(f), "closed file", "io.type of a closed file")
  T.eq(tostring(f), "file (closed)", "tostring of a closed file")
  f = assert(io.open(path))
  local a, b, c = f:read("n", "n", "n")
  T.ok(a == 12 and math.type(a) == "integer" and b == 3.5 and c == 16, "read numbers")
  T.eq(f:read("l"), " word", "read the rest of the line")
  T.eq(f:read("L"), "second line\n", "read a line with its newline")
  T.eq(f:read(3), "thi", "read a count")
  T.eq(f:read("a"), "rd", "read all")
  T.eq(f:read("a"), "", "read all at the end gives an empty string")
  T.eq(f:read("l"), nil, "read a line at the end gives nil")
  T.eq(f:read(0), nil, "read(0) at the end gives nil")
  T.eq(f:seek("set", 3), 3, "seek")
  T.eq(f:read(1), "3", "read after seek")
  T.ok(f:setvbuf("no"), "setvbuf")
  f:close()
  T.raises(function() f:read() end, "attempt to use a closed file", "closed file")
  local ok, err = pcall(io.lines, tmp("missing"))
  T.ok(not ok and err:find("No such file", 1, true), "io.lines of a missing file raises")
  T.raises(function() io.read("x") end, "invalid format", "invalid format")
end

os.execute("rm -rf " .. tmpdir)
T.done()
