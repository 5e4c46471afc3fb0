-- The benchmarks' clock, a monotonic one: gilua's time.perf_counter; under
-- the stock lua5.4 (no such clock in its library) the same clock from
-- monoclock.so, which bench/run.py builds (see README.md).
local ok, time = pcall(require, "time")
if ok then
  return time.perf_counter
end
local found, monoclock = pcall(require, "monoclock")
if not found then
  error("no monotonic clock: run under gilua, or build bench/monoclock.c "
    .. "and put it on LUA_CPATH (bench/run.py does both)", 0)
end
return monoclock.perf_counter
