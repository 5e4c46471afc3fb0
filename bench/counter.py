"""NTHREADS threads (arg, default 4) share 1,000,000 locked increments of a
global counter (the CPython equivalent of counter.lua). The count must be
exact. Prints "RESULT <seconds>" (start to last join)."""
import sys
import threading
import time

TOTAL = 1000000
counter = 0


def work(k, lock):
    global counter
    for _ in range(k):
        lock.acquire()
        counter = counter + 1
        lock.release()


def main():
    nthreads = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    assert TOTAL % nthreads == 0, "threads must divide 1,000,000"
    lock = threading.Lock()
    t0 = time.perf_counter()
    ts = [threading.Thread(target=work, args=(TOTAL // nthreads, lock))
          for _ in range(nthreads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    secs = time.perf_counter() - t0
    if counter != TOTAL:
        raise SystemExit("counter is %d, not %d" % (counter, TOTAL))
    print("RESULT", secs)


main()
