-- Seed 003, "Other Useful threading Features": current_thread,
-- main_thread, active_count, enumerate, Event, Timer.
local threading = require("threading")
local time = require("time")

print("current thread: " .. threading.current_thread().name)
print("main thread: " .. threading.main_thread().name)

local ready = threading.Event() -- one thread signals, others wait
local function waiter(n)
  ready:wait()
  print(string.format("waiter %d: event received in %s", n, threading.current_thread().name))
end
local ws = {}
for i = 1, 2 do
  ws[i] = threading.Thread{target = waiter, args = {i}, name = "Waiter-" .. i}
  ws[i]:start()
end
print(string.format("active threads: %d", threading.active_count()))
local names = {}
for _, t in ipairs(threading.enumerate()) do names[#names + 1] = t.name end
print("alive: " .. table.concat(names, ", "))

local timer = threading.Timer(0.5, function() -- runs once, after 0.5 s
  print("timer fired: setting the event")
  ready:set()
end)
timer:start()
for _, w in ipairs(ws) do w:join() end
timer:join()
print(string.format("active threads at the end: %d", threading.active_count()))
time.sleep(0)
