"""The client side of ccbench's latency mode (Tools/ccbench in CPython
2.7/3.2), over TCP: a ping every INTERVAL seconds, COUNT times, to a
server on 127.0.0.1:PORT that answers each at once; prints "RESULT <mean
delay in seconds>" and the spread.

    python3 bench/latency_client.py PORT COUNT INTERVAL"""
import socket, statistics, sys, time

port, count, interval = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
c = socket.create_connection(("127.0.0.1", port))
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
delays = []
for _ in range(count):
    time.sleep(interval)
    t0 = time.perf_counter()
    c.sendall(b"x")
    if c.recv(1) != b"x":
        raise RuntimeError("bad echo")
    delays.append(time.perf_counter() - t0)
c.close()
sys.stderr.write("delay mean %.3f ms, median %.3f ms, max %.3f ms\n" % (
    statistics.mean(delays) * 1e3, statistics.median(delays) * 1e3, max(delays) * 1e3))
print("RESULT", statistics.mean(delays))
