import threading, time
n = 20000
ping, pong = threading.Event(), threading.Event()
def other():
    for _ in range(n):
        ping.wait(); ping.clear(); pong.set()
t = threading.Thread(target=other); t.start()
t0 = time.perf_counter()
for _ in range(n):
    ping.set(); pong.wait(); pong.clear()
secs = time.perf_counter() - t0
t.join()
print("RESULT", n / secs)
