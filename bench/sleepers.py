import threading, time
t0 = time.perf_counter()
ts = [threading.Thread(target=time.sleep, args=(0.1,)) for _ in range(100)]
for t in ts: t.start()
for t in ts: t.join()
print("RESULT", time.perf_counter() - t0)
