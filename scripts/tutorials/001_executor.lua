-- Seed 001, best practice 6: ThreadPoolExecutor.
local futures = require("futures")

local function fetch_url(url)
  -- Simulate work
  return string.format("Result from %s", url)
end

local results = futures.ThreadPoolExecutor{max_workers = 4}:with(function(executor)
  return executor:map(fetch_url, {"url1", "url2", "url3"})
end)
for _, result in ipairs(results) do
  print(result)
end
