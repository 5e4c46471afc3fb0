import sys, threading, time
form = sys.argv[1] if len(sys.argv) > 1 else "acquire"
n = 1000000
lock = threading.Lock()
t0 = time.perf_counter()
if form == "acquire":
    for _ in range(n): lock.acquire(); lock.release()
else:
    for _ in range(n):
        with lock: pass
print("RESULT", (time.perf_counter() - t0) / n)
