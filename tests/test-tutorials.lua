-- Runs every tutorial twin (scripts/tutorials) and checks its output and
-- its duration against what the tutorial's text says.  The twins run in
-- parallel, each as its own gilua process.
local T = require("tap")
local GILUA = os.getenv("GILUA") or "build/gilua"
local DIR = "scripts/tutorials"
-- sanitizer builds start slowly (seconds, with 30 processes at once):
-- their durations say nothing about the twins
local SANITIZED = os.getenv("GILUA_SANITIZER") ~= nil

local function lines_of(s)
  local t = {}
  for l in s:gmatch("([^\n]*)\n") do t[#t + 1] = l end
  return t
end

local function index_of(lines, want)
  for i, l in ipairs(lines) do if l == want then return i end end
end

local function exactly(want)
  return function(lines)
    return table.concat(lines, "\n") == table.concat(want, "\n"), table.concat(lines, " | ")
  end
end

-- lines 'first' come first in this order, 'middle' in any order, then 'last'
local function ordered(first, middle, last)
  return function(lines)
    if #lines ~= #first + #middle + #last then return false, table.concat(lines, " | ") end
    for i, l in ipairs(first) do if lines[i] ~= l then return false, table.concat(lines, " | ") end end
    local seen = {}
    for i = #first + 1, #first + #middle do seen[lines[i]] = true end
    for _, l in ipairs(middle) do if not seen[l] then return false, table.concat(lines, " | ") end end
    for i, l in ipairs(last) do
      if lines[#first + #middle + i] ~= l then return false, table.concat(lines, " | ") end
    end
    return true
  end
end

local twins = {
  ["000_downloads"] = {3, ordered({"Starting download of Report.pdf...",
    "Starting download of Image.png...", "Main program continues running!"},
    {"Download of Report.pdf complete!", "Download of Image.png complete!"},
    {"All downloads complete."})},
  ["000_locked_counter"] = {0, exactly{"Final counter: 1000"}},
  ["000_executor_map"] = {0, exactly{"{2, 4, 6, 8, 10}"}},
  ["000_daemon_monitor"] = {1.2, function(l)
    return #l >= 3 and l[1] == "monitor: all systems normal" and
      l[#l] == "Main program exits; the daemon monitor dies with it.", table.concat(l, " | ")
  end},
  ["000_stop_flag"] = {0.55, function(l)
    return l[1] == "Main sets the stop flag." and (l[2] or ""):find("^Worker saw the flag") ~= nil
      and l[3] == "Worker has finished.", table.concat(l, " | ")
  end},
  ["000_start_vs_run"] = {0, exactly{"running in MainThread", "running in Worker"}},
  ["000_without_join"] = {1, exactly{"Main program reached its end without join().",
    "Background thread finished (the process waited for it)."}},
  ["000_ui_loop"] = {1, function(l)
    return #l >= 5 and l[1]:find("^UI event loop tick 1") ~= nil and
      l[#l] == "The window never froze." and index_of(l, "Background task finished.") == #l - 1,
      table.concat(l, " | ")
  end},
  ["001_downloads"] = {2, ordered({"Starting download: data.csv", "Starting download: image.png"},
    {"Finished: data.csv", "Finished: image.png"}, {"All downloads complete"})},
  ["001_download_task"] = {2, exactly{"Downloading report.pdf", "Done: report.pdf"}},
  ["001_locked"] = {0, exactly{"4000000"}},
  ["001_barrier"] = {0, function(l) -- every start before any completion
      local starts, completes = 0, 0
      for i, line in ipairs(l) do
        if line:find("starting$") then starts = starts + 1; if i > 3 then return false end end
        if line:find("complete$") then completes = completes + 1 end
      end
      return starts == 3 and completes == 3, table.concat(l, " | ")
    end},
  ["001_producer_consumer"] = {2.5, exactly{"Produced: 0", "Consumed: 0", "Produced: 1",
    "Consumed: 1", "Produced: 2", "Consumed: 2", "Produced: 3", "Consumed: 3", "Produced: 4",
    "Consumed: 4"}},
  ["001_daemon"] = {1, function(l)
    return #l >= 3 and l[1] == "background task still running" and l[#l] == "Main done",
      table.concat(l, " | ")
  end},
  ["001_executor"] = {0, exactly{"Result from url1", "Result from url2", "Result from url3"}},
  ["002_five_threads"] = {nil, ordered({"Main flow of application"}, {"Thread 0 done!",
    "Thread 1 done!", "Thread 2 done!", "Thread 3 done!", "Thread 4 done!"},
    {"All threads are done"})},
  ["002_methods"] = {0.4, exactly{"before start, is_alive: false", "after start, is_alive: true",
    "worker sees data.owner = worker", "after join, is_alive: false", "main sees data.owner = main",
    "run-in-main sees data.owner = run-in-main", "after run() in main, data.owner = run-in-main"}},
  ["003_mythread"] = {2, ordered({"Main : before starting threads", "Thread Alpha: starting",
    "Thread Beta: starting", "Main : waiting for threads to complete"},
    {"Thread Alpha: finished", "Thread Beta: finished"}, {"Main : all threads done"})},
  ["003_worker_function"] = {2, ordered({"Main : before starting threads", "Worker-1: starting",
    "Worker-2: starting", "Main : waiting for threads to complete"},
    {"Worker-1: finished", "Worker-2: finished"}, {"Main : all threads done"})},
  ["003_lock"] = {0, exactly{"Expected counter: 2,000,000", "Actual counter: 2000000"}},
  ["003_features"] = {0.5, function(l)
    return l[1] == "current thread: MainThread" and l[2] == "main thread: MainThread" and
      l[3] == "active threads: 3" and l[4] == "alive: MainThread, Waiter-1, Waiter-2" and
      l[5] == "timer fired: setting the event" and #l == 8 and
      l[8] == "active threads at the end: 1", table.concat(l, " | ")
  end},
  ["003_scraper"] = {0.5, function(l)
    local ok = #l == 6
    for i = 1, 5 do ok = ok and l[i] == string.format("/page%d -> 200 (17 bytes)", i) end
    local secs = tonumber((l[6] or ""):match("^Scraped 5 pages in (%d+%.%d) seconds"))
    return ok and secs ~= nil and (secs < 1 or SANITIZED), table.concat(l, " | ")
  end},
  ["004_greet"] = {0, ordered({}, {"Hello, Alice!", "Hello, Bob!"}, {})},
  ["004_locked_counter"] = {0, exactly{"Final count: 500000"}},
  ["004_executor_status"] = {0.2, exactly{"{200, 200, 200}"}},
  ["004_daemon"] = {1, function(l)
    return #l >= 3 and l[1] == "heartbeat" and l[#l] == "Main program done", table.concat(l, " | ")
  end},
}
-- the races: the text says updates are likely lost; a run may be lucky
local races = {["001_race"] = 4000000, ["003_race"] = 2000000}

local tmp = os.tmpname()
os.remove(tmp)
os.execute("mkdir -p " .. tmp)
local names = {}
for name in pairs(twins) do names[#names + 1] = name end
for name in pairs(races) do names[#names + 1] = name end
table.sort(names)
local cmd = {}
for _, name in ipairs(names) do
  local runs = races[name] and 8 or 1
  for r = 1, runs do
    local out = string.format("%s/%s.%d", tmp, name, r)
    cmd[#cmd + 1] = string.format("(s=$(date +%%s%%N); %s %s/%s.lua > %s.out 2>&1; " ..
      "echo $? $((($(date +%%s%%N) - s) / 1000000)) > %s.meta) &", GILUA, DIR, name, out, out)
  end
end
cmd[#cmd + 1] = "wait"
os.execute(table.concat(cmd, "\n"))

local function read(path)
  local f = io.open(path)
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

for _, name in ipairs(names) do
  if races[name] then
    local lost = false
    for r = 1, 8 do
      local out = read(string.format("%s/%s.%d.out", tmp, name, r))
      local n = tonumber(out:match("(%d+)%s*$"))
      if n and n < races[name] then lost = true end
    end
    T.ok(lost, name .. ": the unlocked counter loses updates, as the text says")
  else
    local want_secs, check = twins[name][1], twins[name][2]
    local status, ms = read(string.format("%s/%s.1.meta", tmp, name)):match("(%d+) (%d+)")
    local lines = lines_of(read(string.format("%s/%s.1.out", tmp, name)))
    local ok, got = check(lines)
    T.ok(status == "0" and ok, name .. ": prints what the text says" ..
      (ok and "" or (" [got: " .. tostring(got) .. "]")))
    local secs = (tonumber(ms) or 0) / 1000
    if SANITIZED then
      T.skip(name .. ": duration", "sanitizer build")
    elseif name == "002_five_threads" then
      T.ok(secs >= 0.9 and secs < 12, name .. string.format(": 1 to 10 s (%.2f s)", secs))
    elseif want_secs and want_secs > 0 then
      T.ok(secs >= 0.6 * want_secs and secs < 3 * want_secs + 1.5, -- 30 processes at once
        string.format("%s: takes about %g s (%.2f s)", name, want_secs, secs))
    end
  end
end
os.execute("rm -rf " .. tmp)
T.done()
