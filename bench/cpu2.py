"""Two CPU-bound calls, fib(N) (arg, default 32: about 0.3 s each here), in
two threads against the same two calls one after the other (each twice:
sequential, threaded, threaded, sequential; the CPython equivalent of
cpu2.lua). Prints "RESULT <threaded / sequential>" and an INFO line with
both times."""
import sys
import threading
import time


def fib(k):
    if k < 2:
        return k
    return fib(k - 1) + fib(k - 2)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 32
    results = {}

    def call(i):
        results[i] = fib(n)

    def sequential(i):
        t0 = time.perf_counter()
        call(i)
        call(i + 1)
        return time.perf_counter() - t0

    def threaded(i):
        t0 = time.perf_counter()
        a = threading.Thread(target=call, args=(i,))
        b = threading.Thread(target=call, args=(i + 1,))
        a.start()
        b.start()
        a.join()
        b.join()
        return time.perf_counter() - t0

    # In the order sequential, threaded, threaded, sequential, so that a
    # drift in the machine's pace weighs on both alike.
    seq = sequential(1)
    thr = threaded(3) + threaded(5)
    seq += sequential(7)

    for i in range(1, 9):
        assert results.get(i) == results[1], \
            "call %d of fib(%d) gave %r" % (i, n, results.get(i))
    print("INFO fib(%d): sequential %.3f s, threaded %.3f s (2 runs each)" % (n, seq, thr))
    print("RESULT", thr / seq)


main()
