-- The GIL lab: statistics, traces, timelines, and the program's options.
local T = require("tap")
local threading = require("threading")
local time = require("time")
local gil = threading.gil
local GILUA = os.getenv("GILUA") or "build/gilua"

local function spin(n) local x = 0 for i = 1, n do x = x + i end return x end

gil.reset_stats()
local a = threading.Thread{target = spin, args = {3e6}, name = "spin-a"}
local b = threading.Thread{target = spin, args = {3e6}, name = "spin-b"}
local s = threading.Thread{target = function() for _ = 1, 3 do time.sleep(0.01) end end,
  name = "sleeper"}
a:start(); b:start(); s:start()
a:join(); b:join(); s:join()
local st = gil.stats()
T.ok(st.acquisitions > 0 and st.switches > 0, "acquisitions and switches are counted")
T.ok(st.forced_switches >= 1, "two spinning threads force switches (" .. st.forced_switches .. ")")
T.eq(st.forced_switches, st.releases.switch, "forced switches are releases for 'switch'")
T.ok(st.releases.sleep >= 3, "sleeps are releases for 'sleep'")
T.ok(st.releases.join >= 1, "joins are releases for 'join'")
T.eq(st.releases.exit, 3, "three threads exited")
for _, k in ipairs{"wait", "io", "host"} do T.ok(st.releases[k] ~= nil, "releases." .. k) end
T.ok(st.wait_seconds > 0 and st.longest_wait_seconds > 0, "waits are timed")
T.ok(st.longest_wait_seconds <= st.wait_seconds, "the longest wait is one of them")
T.ok(st.held_seconds > 0 and st.held_seconds <= st.elapsed_seconds * 1.05,
  "held time is within the elapsed time")
local per = st.by_name["spin-a"]
T.ok(per and per.acquisitions >= 1 and per.held_seconds > 0 and per.alive == false,
  "per-thread statistics, by name")
T.ok(st.by_name.sleeper.releases.sleep == 3, "the sleeper released the GIL three times to sleep")
T.eq(st.threads[1].name, "MainThread", "threads in creation order")
local report = gil.report(st)
T.ok(report:find("forced switches", 1, true) and report:find("spin-a", 1, true),
  "report() formats them")
gil.reset_stats()
local st2 = gil.stats()
T.ok(st2.acquisitions < st.acquisitions and st2.by_name["spin-a"] == nil,
  "reset_stats zeroes and forgets ended threads")

-- traces
local trace = os.tmpname()
gil.trace_start(trace)
local t = threading.Thread{target = function() time.sleep(0.01) spin(1e6) end, name = "traced"}
t:start(); t:join()
T.eq(gil.trace_stop(), true, "trace_stop stops a running trace")
T.eq(gil.trace_stop(), false, "and says when none runs")
local f = assert(io.open(trace))
local text = f:read("a")
f:close()
T.ok(text:find('"traceEvents"', 1, true) and text:find('"thread_name"', 1, true) and
  text:find('"name":"traced"', 1, true), "Chrome trace-event JSON with named tracks")
T.ok(text:find('"cat":"hold"', 1, true) and text:find('"released":"exit"', 1, true) and
  text:find('"cat":"blocked"', 1, true), "holds, their release reasons, blocked calls")
local svg = trace .. ".svg"
local lanes = gil.timeline(trace, svg, "test")
T.ok(lanes >= 2, "timeline() reads the trace back (valid JSON) and draws it")
f = assert(io.open(svg))
local pic = f:read("a")
f:close()
T.ok(pic:find("^<svg") and pic:find("traced", 1, true) and pic:find("holds the GIL", 1, true),
  "a self-contained SVG with lanes and a legend")
os.remove(svg)
T.raises(function() gil.trace_start("/nonexistent/dir/x.json") end, "cannot open",
  "trace_start to a bad path")
T.raises(function() gil.timeline("/nonexistent.json", svg) end, "timeline:",
  "timeline of a missing trace")

-- the program's options, and a trace that survives errors and Ctrl-C
local function run(cmd)
  local p = io.popen("{ " .. cmd .. "; } 2>&1")
  local out = p:read("a")
  p:close()
  return out
end
local script = os.tmpname()
f = io.open(script, "w")
f:write([[
local threading = require("threading")
local t = threading.Thread(function() local x = 0 for i = 1, 2e6 do x = x + i end end)
t:start(); t:join()
if arg[1] == "fail" then error("dies") end
if arg[1] == "hang" then require("time").sleep(30) end
]])
f:close()
local function valid_json(path)
  local ok = pcall(gil.timeline, path, path .. ".svg")
  os.remove(path .. ".svg")
  return ok
end
local out = run(GILUA .. " --gil-stats " .. script)
T.ok(out:find("GIL statistics", 1, true) and out:find("MainThread", 1, true),
  "--gil-stats prints the statistics at exit")
local tr = os.tmpname()
run(GILUA .. " --gil-trace=" .. tr .. " " .. script .. " fail")
T.ok(valid_json(tr), "--gil-trace: valid JSON when the script dies from an error")
run(string.format("%s --gil-trace=%s %s hang & p=$!; sleep 0.5; kill -INT $p; wait $p", GILUA,
  tr, script))
T.ok(valid_json(tr), "--gil-trace: valid JSON after Ctrl-C")
run(GILUA .. " --gil-trace=" .. tr .. " -e 'require(\"threading\"); os.exit(0)'")
T.ok(valid_json(tr), "--gil-trace: valid JSON after os.exit")
local pic2 = tr .. ".svg"
out = run(GILUA .. " --gil-timeline=" .. pic2 .. " " .. script)
f = io.open(pic2)
T.ok(f and f:read("a"):find("GIL timeline: ", 1, true) and out:find("timeline written", 1, true),
  "--gil-timeline draws the run")
if f then f:close() end
os.remove(pic2); os.remove(tr); os.remove(script); os.remove(trace)
T.done()
