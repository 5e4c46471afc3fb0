"""A 10M-iteration loop in one thread (the CPython equivalent of loop.lua).
Prints "RESULT <seconds>", timed with a monotonic clock."""
import time


def main():
    t0 = time.perf_counter()
    x = 0
    for i in range(1, 10000001):
        x = x + i % 7
    secs = time.perf_counter() - t0
    assert x == 29999997, "the loop gave %d" % x
    print("RESULT", secs)


main()
