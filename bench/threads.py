"""Start and join 2,000 no-op threads, one after another (the CPython
equivalent of threads.lua). Prints "RESULT <seconds per thread>"."""
import threading
import time

N = 2000
ran = 0


def noop():
    global ran
    ran += 1


t0 = time.perf_counter()
for _ in range(N):
    t = threading.Thread(target=noop)
    t.start()
    t.join()
secs = time.perf_counter() - t0
assert ran == N, "%d of %d threads ran" % (ran, N)
assert threading.active_count() == 1, "threads still alive after join"
print("RESULT", secs / N)
