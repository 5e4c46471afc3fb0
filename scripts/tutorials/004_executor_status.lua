-- Seed 004, "Using ThreadPoolExecutor (The Modern Way)": status codes of
-- three URLs, from a local server this script starts (no network here).
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/../lib/?.lua;" .. package.path
local futures = require("futures")
local http = require("http")
local httpserver = require("httpserver")

local server = httpserver.start{delay = 0.2}
local urls = {
  server.url .. "/data/1",
  server.url .. "/data/2",
  server.url .. "/data/3",
}

local function fetch(url)
  return http.get(url).status
end

local results
do
  local executor <close> = futures.ThreadPoolExecutor{max_workers = 3}
  results = executor:map(fetch, urls)
end
print("{" .. table.concat(results, ", ") .. "}")
server.stop()
