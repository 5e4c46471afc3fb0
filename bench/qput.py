import queue, sys, threading, time
maxsize = int(sys.argv[1]) if len(sys.argv) > 1 else 0
n = 200000
q = queue.Queue(maxsize)
total = 0
def consume():
    global total
    for _ in range(n): total += q.get()
t0 = time.perf_counter()
c = threading.Thread(target=consume); c.start()
for i in range(1, n + 1): q.put(i)
c.join()
secs = time.perf_counter() - t0
assert total == n * (n + 1) // 2
print("RESULT", n / secs)
