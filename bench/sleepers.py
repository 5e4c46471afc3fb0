"""100 threads each sleeping 0.1 s: start them all, then join them all (the
CPython equivalent of sleepers.lua). Prints "RESULT <wall seconds>"."""
import threading
import time

N = 100
woke = 0
woke_lock = threading.Lock()


def sleeper():
    global woke
    time.sleep(0.1)
    with woke_lock:
        woke += 1


t0 = time.perf_counter()
ts = [threading.Thread(target=sleeper) for _ in range(N)]
for t in ts:
    t.start()
for t in ts:
    t.join()
secs = time.perf_counter() - t0
assert woke == N, "%d of %d sleepers woke" % (woke, N)
assert secs >= 0.1, "slept less than 0.1 s"
print("RESULT", secs)
