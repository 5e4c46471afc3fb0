-- http over libcurl: transfers run without the GIL, so they overlap.
local T = require("tap")
local threading = require("threading")
local http = require("http")
local time = require("time")
local httpserver = require("httpserver")

local srv = httpserver.start{delay = 0.3}

local res = http.get(srv.url .. "/page")
T.eq(res.status, 200, "status")
T.eq(res.body, "hello from /page", "body")
T.eq(res.headers["x-server"], "gilua", "headers, lowercased")
res = http.get(srv.url .. "/status/404")
T.eq(res.status, 404, "a 404 is a result, not an error")
res = http.request{method = "POST", url = srv.url .. "/echo", body = "payload",
  headers = {["Content-Type"] = "text/plain"}}
T.eq(res.body, "POST payload", "request with a method, a body and headers")
res = http.get(srv.url .. "/redirect")
T.ok(res.status == 200 and res.body == "hello from /", "redirects are followed")
res = http.get(srv.url .. "/redirect", {follow_redirects = false})
T.eq(res.status, 302, "unless follow_redirects = false")

-- 5 pages by 5 threads in about the time of one
local t0 = time.perf_counter()
local ts, ok = {}, 0
for i = 1, 5 do
  ts[i] = threading.Thread(function()
    if http.get(srv.url .. "/p" .. i).body == "hello from /p" .. i then ok = ok + 1 end
  end)
  ts[i]:start()
end
for i = 1, 5 do ts[i]:join() end
local wall = time.perf_counter() - t0
T.eq(ok, 5, "5 pages fetched by 5 threads")
T.ok(wall < 0.9, string.format("in about the time of one (%.2f s for 5 x 0.3 s)", wall))

-- ticks continue while a transfer waits
local ticks, stop = 0, false
local ticker = threading.Thread(function() while not stop do time.sleep(0.01); ticks = ticks + 1 end end)
ticker:start()
http.get(srv.url .. "/slow")
stop = true
ticker:join()
T.ok(ticks >= 10, "ticks continue during a request (" .. ticks .. ")")

-- errors carry curl's message
local okc, err = pcall(http.get, "http://127.0.0.1:1/")
T.ok(not okc and tostring(err):find("http.get:", 1, true) and tostring(err):find("onnect", 1, true),
  "a refused connection raises: " .. tostring(err))
okc, err = pcall(http.get, "nosuchscheme://x")
T.ok(not okc and tostring(err):find("not supported", 1, true), "a bad URL raises")
okc, err = pcall(http.get, "http://no-such-host.invalid/")
T.ok(not okc and tostring(err):find("resolve", 1, true), "a DNS failure raises: " .. tostring(err))
t0 = time.perf_counter()
okc, err = pcall(http.get, srv.url .. "/slow", {timeout = 0.1})
T.ok(not okc and tostring(err):lower():find("timeout", 1, true) or tostring(err):find("timed out", 1, true),
  "a timeout raises")
T.ok(time.perf_counter() - t0 < 0.3, "after about the timeout")
T.raises(function() http.request{} end, "'url' must be a string", "request without url")
T.raises(function() http.get() end, "string expected", "get without url")
srv.stop()
T.done()
