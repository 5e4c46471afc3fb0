-- Seed 003, "Complete Example: A Web Scraper", finished: the URLs are
-- served by a local server this script starts (there is no network here);
-- each page takes 0.5 s to arrive, as a slow site would.
package.path = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/../lib/?.lua;" .. package.path
local threading = require("threading")
local http = require("http")
local time = require("time")
local httpserver = require("httpserver")

local server = httpserver.start{delay = 0.5}
-- List of URLs to scrape
local URLS = {}
for i = 1, 5 do URLS[i] = string.format("%s/page%d", server.url, i) end

local results = {}
local lock = threading.Lock()

local function scrape(url)
  local res = http.get(url, {timeout = 10})
  lock:with(function()
    results[#results + 1] = string.format("%s -> %d (%d bytes)", url:match("/page%d+$"),
      res.status, #res.body)
  end)
end

local start = time.perf_counter()
local threads = {}
for i, url in ipairs(URLS) do
  threads[i] = threading.Thread{target = scrape, args = {url}}
  threads[i]:start()
end
for _, t in ipairs(threads) do t:join() end
table.sort(results)
for _, r in ipairs(results) do print(r) end
print(string.format("Scraped %d pages in %.1f seconds (one page takes 0.5 s)", #results,
  time.perf_counter() - start))
server.stop()
