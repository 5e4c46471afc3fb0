-- Seed 001, "Thread-Safe Queues": a producer, a consumer, and nil as the
-- poison pill.
local threading = require("threading")
local queue = require("queue")
local time = require("time")

local function producer(q)
  for i = 0, 4 do
    time.sleep(0.5)
    q:put(i)
    print(string.format("Produced: %d", i))
  end
end

local function consumer(q)
  while true do
    local item = q:get()
    if item == nil then -- Poison pill
      break
    end
    print(string.format("Consumed: %d", item))
    q:task_done()
  end
end

local q = queue.Queue()
local producer_thread = threading.Thread{target = producer, args = {q}}
local consumer_thread = threading.Thread{target = consumer, args = {q}}
producer_thread:start()
consumer_thread:start()
producer_thread:join()
q:put(nil) -- Poison pill to stop consumer
consumer_thread:join()
