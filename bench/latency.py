# ccbench's latency mode in CPython (the same client): prints "RESULT
# <mean delay in seconds>".  Arg: the number of CPU-bound threads.
import os, socket, subprocess, sys, threading
n = int(sys.argv[1]) if len(sys.argv) > 1 else 1
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
stop = False
def spin():
    x = 0
    while not stop:
        x += 1
cpus = [threading.Thread(target=spin) for _ in range(n)]
for t in cpus: t.start()
def serve():
    c, _ = srv.accept()
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        b = c.recv(1)
        if not b: break
        c.sendall(b)
t = threading.Thread(target=serve); t.start()
here = os.path.dirname(os.path.abspath(__file__))
out = subprocess.run(["/usr/bin/python3", os.path.join(here, "latency_client.py"),
                      str(srv.getsockname()[1]), "100", "0.02"], capture_output=True, text=True)
stop = True
for c in cpus: c.join()
t.join()
print("INFO CPython, %d CPU threads: %s" % (n, out.stderr.strip()))
print(out.stdout.strip())
