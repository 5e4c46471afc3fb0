-- A scraper: 20 threads fetch 100 pages from a local HTTP server
-- (BENCH_HTTP_URL): pages per second.
local threading = require("threading")
local queue = require("queue")
local http = require("http")
local time = require("time")
local url = assert(os.getenv("BENCH_HTTP_URL"), "BENCH_HTTP_URL not set")
local pages = queue.Queue()
for i = 1, 100 do pages:put(url .. "/page" .. i) end
local got = 0
local t0 = time.perf_counter()
local ts = {}
for i = 1, 20 do
  ts[i] = threading.Thread(function()
    while true do
      local ok, page = pcall(pages.get_nowait, pages)
      if not ok then return end
      local res = http.get(page)
      assert(res.status == 200 and #res.body == 10240)
      got = got + 1
    end
  end)
  ts[i]:start()
end
for i = 1, 20 do ts[i]:join() end
assert(got == 100)
print("RESULT", 100 / (time.perf_counter() - t0))
