import threading, time
n = 2000
def noop(): pass
t0 = time.perf_counter()
for _ in range(n):
    t = threading.Thread(target=noop); t.start(); t.join()
print("RESULT", (time.perf_counter() - t0) / n)
