import sys, threading, time
nthreads = int(sys.argv[1]) if len(sys.argv) > 1 else 4
total = 1000000
lock = threading.Lock()
counter = 0
def work(k):
    global counter
    for _ in range(k):
        lock.acquire(); counter += 1; lock.release()
t0 = time.perf_counter()
ts = [threading.Thread(target=work, args=(total // nthreads,)) for _ in range(nthreads)]
for t in ts: t.start()
for t in ts: t.join()
secs = time.perf_counter() - t0
assert counter == total, counter
print("RESULT", secs)
