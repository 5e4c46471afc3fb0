"""Echo clients for bench/starve.lua: N connections to 127.0.0.1:PORT,
each doing 1-byte round trips for S seconds.  Prints "RESULT <total
round trips per second>".

    python3 bench/echo_clients.py PORT N S"""
import socket, sys, threading, time

port, n, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
counts = [0] * n
def client(i):
    c = socket.create_connection(("127.0.0.1", port))
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        c.sendall(b"x")
        if c.recv(1) != b"x":
            raise RuntimeError("bad echo")
        counts[i] += 1
    c.close()
ts = [threading.Thread(target=client, args=(i,)) for i in range(n)]
for t in ts: t.start()
for t in ts: t.join()
print("RESULT", sum(counts) / seconds)
