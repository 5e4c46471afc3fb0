-- Seed 000, "ThreadPoolExecutor: the cleaner approach".
local futures = require("futures")

local function process_item(item)
  -- Simulate work
  return item * 2
end

local items = {1, 2, 3, 4, 5}
local results
do
  local executor <close> = futures.ThreadPoolExecutor{max_workers = 3}
  results = executor:map(process_item, items)
end
print("{" .. table.concat(results, ", ") .. "}") -- {2, 4, 6, 8, 10}
