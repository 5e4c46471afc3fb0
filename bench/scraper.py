import os, queue, threading, time, urllib.request
url = os.environ["BENCH_HTTP_URL"]
pages = queue.Queue()
for i in range(1, 101): pages.put(url + "/page%d" % i)
got = 0
lock = threading.Lock()
def work():
    global got
    while True:
        try: page = pages.get_nowait()
        except queue.Empty: return
        with urllib.request.urlopen(page) as r:
            body = r.read(); assert r.status == 200 and len(body) == 10240
        with lock: got += 1
t0 = time.perf_counter()
ts = [threading.Thread(target=work) for _ in range(20)]
for t in ts: t.start()
for t in ts: t.join()
assert got == 100
print("RESULT", 100 / (time.perf_counter() - t0))
