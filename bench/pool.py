import sys, time
from concurrent.futures import ThreadPoolExecutor
form = sys.argv[1] if len(sys.argv) > 1 else "map"
n = 2000 if form == "latency" else 10000
def task(x): return x + 1
ex = ThreadPoolExecutor(8)
ex.submit(task, 0).result()
t0 = time.perf_counter()
if form == "map":
    r = list(ex.map(task, range(1, n + 1))); assert len(r) == n
elif form == "submit":
    fs = [ex.submit(task, i) for i in range(1, n + 1)]
    for i, f in enumerate(fs, 1): assert f.result() == i + 1
else:
    for i in range(1, n + 1): assert ex.submit(task, i).result() == i + 1
secs = time.perf_counter() - t0
ex.shutdown()
print("RESULT", n / secs)
