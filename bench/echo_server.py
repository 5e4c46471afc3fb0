import socket, sys, threading
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
stop = False
def spin():
    n = 0
    while not stop: n += 1
if len(sys.argv) > 1 and sys.argv[1] == "spin":
    for _ in range(int(sys.argv[2]) if len(sys.argv) > 2 else 1):
        threading.Thread(target=spin, daemon=True).start()
print(srv.getsockname()[1], flush=True)
c, _ = srv.accept()
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
while True:
    d = c.recv(1)
    if not d: break
    c.sendall(d)
stop = True
