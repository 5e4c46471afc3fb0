"""fib(N) recursive in one thread (the CPython equivalent of fib.lua).
Prints "RESULT <seconds>", timed with a monotonic clock."""
import sys
import time

EXPECTED = {27: 196418, 30: 832040, 32: 2178309, 34: 5702887}


def fib(k):
    if k < 2:
        return k
    return fib(k - 1) + fib(k - 2)


n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
t0 = time.perf_counter()
r = fib(n)
secs = time.perf_counter() - t0
assert EXPECTED.get(n, r) == r, "fib(%d) gave %d" % (n, r)
print("RESULT", secs)
