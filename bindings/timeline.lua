-- timeline.lua: the GIL lab's renderers, compiled into gilua.
--
-- render(trace_file, svg_file [, title]) draws a GIL trace (the Chrome
-- trace-event JSON that threading.gil.trace_start writes) as a
-- self-contained SVG: one lane per thread, time along the x axis, and in
-- each pixel column the share of that column's time the thread held the
-- GIL, waited for it, or was blocked in a call without it.  Columns add
-- up every span, however short, so a 60 s run and a 10 ms run both draw
-- every span's time; adjacent identical columns merge into one rectangle.
--
-- report(stats) formats threading.gil.stats() as text (--gil-stats).

local M = {}

-- {====================================================================
-- A small JSON reader (objects, arrays, strings, numbers, literals)
-- =====================================================================

local function json_decode(text)
  local pos = 1
  local value

  local function fail(what)
    error(string.format("timeline: bad JSON at byte %d: %s", pos, what), 0)
  end

  local function skip()
    pos = text:find("[^ \t\r\n]", pos) or #text + 1
  end

  local escapes = {['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b",
    f = "\f", n = "\n", r = "\r", t = "\t"}

  local function str()
    local parts = {}
    pos = pos + 1
    while true do
      local s, e = text:find('["\\]', pos)
      if not s then fail("unterminated string") end
      parts[#parts + 1] = text:sub(pos, s - 1)
      if text:sub(s, s) == '"' then
        pos = e + 1
        return table.concat(parts)
      end
      local c = text:sub(s + 1, s + 1)
      if c == "u" then
        local code = tonumber(text:sub(s + 2, s + 5), 16)
        if not code then fail("bad \\u escape") end
        parts[#parts + 1] = utf8.char(code)
        pos = s + 6
      else
        parts[#parts + 1] = escapes[c] or fail("bad escape")
        pos = s + 2
      end
    end
  end

  function value()
    skip()
    local c = text:sub(pos, pos)
    if c == "{" then
      local obj = {}
      pos = pos + 1
      skip()
      if text:sub(pos, pos) == "}" then
        pos = pos + 1
        return obj
      end
      while true do
        skip()
        if text:sub(pos, pos) ~= '"' then fail("key expected") end
        local k = str()
        skip()
        if text:sub(pos, pos) ~= ":" then fail("':' expected") end
        pos = pos + 1
        obj[k] = value()
        skip()
        local d = text:sub(pos, pos)
        pos = pos + 1
        if d == "}" then return obj end
        if d ~= "," then fail("',' or '}' expected") end
      end
    elseif c == "[" then
      local arr = {}
      pos = pos + 1
      skip()
      if text:sub(pos, pos) == "]" then
        pos = pos + 1
        return arr
      end
      while true do
        arr[#arr + 1] = value()
        skip()
        local d = text:sub(pos, pos)
        pos = pos + 1
        if d == "]" then return arr end
        if d ~= "," then fail("',' or ']' expected") end
      end
    elseif c == '"' then
      return str()
    else
      local num = text:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
      if num and #num > 0 then
        pos = pos + #num
        return tonumber(num)
      end
      for lit, v in pairs({["true"] = true, ["false"] = false}) do
        if text:sub(pos, pos + #lit - 1) == lit then
          pos = pos + #lit
          return v
        end
      end
      if text:sub(pos, pos + 3) == "null" then
        pos = pos + 4
        return nil
      end
      fail("value expected")
    end
  end

  local v = value()
  skip()
  if pos <= #text then fail("trailing text") end
  return v
end

-- }====================================================================

-- {====================================================================
-- Drawing
-- =====================================================================

local KINDS = {"hold", "wait", "blocked"}
local COLORS = {hold = "#2e7d32", wait = "#f9a825", blocked = "#90a4ae"}
local LABELS = {hold = "holds the GIL", wait = "waits for the GIL",
  blocked = "blocked in a call (GIL released)"}
local LEVELS = 8 -- a column's share is drawn in eighths of the lane
local PREEMPT_COLOR = "#c62828"

local function esc(s)
  return (tostring(s):gsub("[&<>\"]", {["&"] = "&amp;", ["<"] = "&lt;",
    [">"] = "&gt;", ['"'] = "&quot;"}))
end

-- A round step for about 'n' ticks over 'span' (any unit).
local function nice_step(span, n)
  local raw = span / n
  local mag = 10 ^ math.floor(math.log(raw, 10))
  for _, m in ipairs({1, 2, 5, 10}) do
    if m * mag >= raw then return m * mag end
  end
  return 10 * mag
end

local function fmt_time(us, step)
  if step >= 1e6 then return string.format("%.4g s", us / 1e6) end
  if step >= 1e3 then return string.format("%.4g ms", us / 1e3) end
  return string.format("%.4g µs", us)
end

-- Reads a trace: lanes (sorted by track) with their spans.
local function load(path)
  local f, err = io.open(path, "rb")
  if not f then error("timeline: " .. err, 0) end
  local text = f:read("a")
  f:close()
  local doc = json_decode(text)
  local events = type(doc) == "table" and (doc.traceEvents or doc) or {}
  local lanes, bytid = {}, {}
  local function lane(tid)
    local l = bytid[tid]
    if not l then
      l = {tid = tid, name = "thread " .. tostring(tid), spans = {},
        total = {hold = 0, wait = 0, blocked = 0}, releases = {}, preempts = {}}
      bytid[tid] = l
      lanes[#lanes + 1] = l
    end
    return l
  end
  local tmax = 0
  for _, e in ipairs(events) do
    if e.ph == "M" and e.name == "thread_name" then
      lane(e.tid).name = e.args and e.args.name or lane(e.tid).name
    elseif e.ph == "X" and COLORS[e.cat] then
      local l = lane(e.tid)
      l.spans[#l.spans + 1] = {kind = e.cat, t0 = e.ts, t1 = e.ts + e.dur}
      l.total[e.cat] = l.total[e.cat] + e.dur
      if e.cat == "hold" and e.args and e.args.released then
        local r = e.args.released
        l.releases[r] = (l.releases[r] or 0) + 1
        if r == "preempt" then l.preempts[#l.preempts + 1] = e.ts + e.dur end
      end
      if e.ts + e.dur > tmax then tmax = e.ts + e.dur end
    end
  end
  table.sort(lanes, function(a, b) return a.tid < b.tid end)
  return lanes, tmax
end

-- For each column of a lane: the time spent in each kind.
local function columns(l, ncols, us_per_col)
  local cols = {}
  for i = 1, ncols do cols[i] = {hold = 0, wait = 0, blocked = 0} end
  for _, s in ipairs(l.spans) do
    local c0 = math.floor(s.t0 / us_per_col) + 1
    local c1 = math.min(math.floor(s.t1 / us_per_col) + 1, ncols)
    for c = math.max(c0, 1), c1 do
      local lo = math.max(s.t0, (c - 1) * us_per_col)
      local hi = math.min(s.t1, c * us_per_col)
      if hi > lo then cols[c][s.kind] = cols[c][s.kind] + (hi - lo) end
    end
  end
  return cols
end

-- Quantized shares of a column, as a key for merging equal columns.
local function shares(col, us_per_col)
  local q, key = {}, {}
  local left = LEVELS
  for _, k in ipairs(KINDS) do
    local n = math.floor(col[k] / us_per_col * LEVELS + 0.5)
    if col[k] > 0 and n == 0 then n = 1 end -- never drop a span silently
    n = math.min(n, left)
    left = left - n
    q[k] = n
    key[#key + 1] = n
  end
  return q, table.concat(key, ",")
end

function M.render(trace, svg, title)
  local lanes, tmax = load(trace)
  local W, left, right, top = 1200, 190, 30, 78
  local laneh, gap = 26, 10
  local plotw = W - left - right
  local ncols = plotw
  local span = tmax > 0 and tmax or 1
  local us_per_col = span / ncols
  local H = top + #lanes * (laneh + gap) + 130
  local out = {}
  local function add(fmt, ...) out[#out + 1] = string.format(fmt, ...) end
  add('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" ' ..
    'viewBox="0 0 %d %d" font-family="DejaVu Sans, Helvetica, Arial, ' ..
    'sans-serif" font-size="12">', W, H, W, H)
  add('<rect width="%d" height="%d" fill="#ffffff"/>', W, H)
  add('<text x="%d" y="26" font-size="18" font-weight="bold">%s</text>', 20,
    esc(title or ("GIL timeline: " .. trace)))
  add('<text x="%d" y="48" fill="#555">%s</text>', 20, esc(string.format(
    "%d threads over %s; each pixel column is %s and shows the share of its " ..
    "time in each state (any state present shows at least 1/8)", #lanes, fmt_time(span, span),
    fmt_time(us_per_col, us_per_col))))
  -- axis and grid
  local step = nice_step(span, 10)
  local axis_y = top + #lanes * (laneh + gap)
  for t = 0, span, step do
    local x = left + t / us_per_col
    add('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e0e0e0"/>', x,
      top - 6, x, axis_y)
    add('<text x="%.1f" y="%d" text-anchor="middle" fill="#333">%s</text>',
      x, axis_y + 16, esc(fmt_time(t, step)))
  end
  add('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>', left, axis_y,
    left + plotw, axis_y)
  -- lanes
  for i, l in ipairs(lanes) do
    local y = top + (i - 1) * (laneh + gap)
    local held = l.total.hold / span * 100
    add('<text x="%d" y="%d" text-anchor="end">%s</text>', left - 10,
      y + laneh / 2, esc(l.name))
    add('<text x="%d" y="%d" text-anchor="end" fill="#666" font-size="10">' ..
      'held %.1f%%</text>', left - 10, y + laneh / 2 + 12, held)
    add('<rect x="%d" y="%d" width="%d" height="%d" fill="#f7f7f7"/>', left,
      y, plotw, laneh)
    local cols = columns(l, ncols, us_per_col)
    local c = 1
    while c <= ncols do
      local q, key = shares(cols[c], us_per_col)
      local c2 = c
      while c2 < ncols and select(2, shares(cols[c2 + 1], us_per_col)) == key do
        c2 = c2 + 1
      end
      local base = y + laneh
      for _, k in ipairs(KINDS) do
        if q[k] > 0 then
          local h = laneh * q[k] / LEVELS
          base = base - h
          add('<rect x="%d" y="%.1f" width="%d" height="%.1f" fill="%s"/>',
            left + c - 1, base, c2 - c + 1, h, COLORS[k])
        end
      end
      c = c2 + 1
    end
    -- a preemption (fair policy): a red tick where the holder was asked
    -- to step aside, one per pixel column
    local marked = {}
    for _, t in ipairs(l.preempts) do
      local x = math.min(math.floor(t / us_per_col), ncols - 1)
      if not marked[x] then
        marked[x] = true
        add('<rect x="%d" y="%d" width="1" height="5" fill="%s"/>', left + x, y - 5,
          PREEMPT_COLOR)
      end
    end
  end
  -- legend
  local ly = axis_y + 40
  local lx = left
  for _, k in ipairs(KINDS) do
    add('<rect x="%d" y="%d" width="14" height="14" fill="%s"/>', lx, ly,
      COLORS[k])
    add('<text x="%d" y="%d">%s</text>', lx + 20, ly + 12, esc(LABELS[k]))
    lx = lx + 260
  end
  add('<rect x="%d" y="%d" width="3" height="14" fill="%s"/>', left, ly + 22, PREEMPT_COLOR)
  add('<text x="%d" y="%d">%s</text>', left + 20, ly + 34,
    esc("the holder was asked to step aside by a thread back from a wait (fair policy)"))
  add('<text x="%d" y="%d" fill="#555">%s</text>', left, ly + 58,
    esc("empty: the thread did not exist or ran nothing; time axis from " ..
      "the start of the trace"))
  add("</svg>")
  local f, err = io.open(svg, "w")
  if not f then error("timeline: " .. err, 0) end
  f:write(table.concat(out, "\n"), "\n")
  f:close()
  return #lanes, span / 1e6
end

-- }====================================================================

local REASONS = {"switch", "preempt", "sleep", "yield", "wait", "join", "io", "host", "exit"}

function M.report(st)
  local lines = {}
  local function add(fmt, ...) lines[#lines + 1] = string.format(fmt, ...) end
  add("GIL statistics over %.3f s (policy %s, switch interval %g s)",
    st.elapsed_seconds, st.policy or "fifo", st.interval)
  add("  acquisitions %d, switches %d, forced switches %d, preemptions %d",
    st.acquisitions, st.switches, st.forced_switches, st.preemptions or 0)
  local r = {}
  for _, k in ipairs(REASONS) do
    r[#r + 1] = string.format("%s %d", k, st.releases[k] or 0)
  end
  add("  releases by reason: %s", table.concat(r, ", "))
  add("  waited %.3f s in all, longest wait %.3f ms; held %.3f s",
    st.wait_seconds, st.longest_wait_seconds * 1e3, st.held_seconds)
  add("  %-24s %10s %8s %8s %10s %11s %9s", "thread", "acquired", "forced",
    "preempts", "waited s", "longest ms", "held s")
  for _, t in ipairs(st.threads) do
    add("  %-24s %10d %8d %8d %10.3f %11.3f %9.3f", t.name:sub(1, 24),
      t.acquisitions, t.forced_switches, t.preemptions or 0, t.wait_seconds,
      t.longest_wait_seconds * 1e3, t.held_seconds)
  end
  return table.concat(lines, "\n") .. "\n"
end

M.json_decode = json_decode

return M
