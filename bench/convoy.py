"""The convoy effect (GIL-NOTES section 2): 1-byte echo round trips per
second against a server, alone and with one CPU-bound thread spinning in
the server's process.

    python3 bench/convoy.py gilua|python [--pin] [--gilua PATH] [--seconds S]
                            [--policy fair|fifo] [--spinners N]

Prints "RESULT <spin/alone ratio>" and the two rates.  The client is this
Python process (the same for both servers); --pin runs the server on one
CPU (taskset -c 0)."""
import argparse, os, socket, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))

def rate(cmd, seconds):
    srv = subprocess.Popen(cmd, cwd=HERE, stdout=subprocess.PIPE, text=True)
    try:
        port = int(srv.stdout.readline())
        c = socket.create_connection(("127.0.0.1", port))
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            c.sendall(b"x")
            if c.recv(1) != b"x":
                raise RuntimeError("bad echo")
            n += 1
        elapsed = time.perf_counter() - t0
        c.close()
        srv.wait(timeout=10)
        return n / elapsed
    finally:
        if srv.poll() is None:
            srv.kill()

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("impl")
    ap.add_argument("--pin", action="store_true")
    ap.add_argument("--gilua", default=os.path.join(HERE, "..", "build", "gilua"))
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--policy", default=None)
    ap.add_argument("--spinners", type=int, default=1)
    ap.add_argument("--absolute", action="store_true",
                    help="RESULT is the rate next to the spinners, not the ratio")
    a = ap.parse_args()
    policy = ["--gil-policy=" + a.policy] if a.policy else []
    base = [os.path.abspath(a.gilua)] + policy + ["echo_server.lua"] if a.impl == "gilua" \
        else [sys.executable, "echo_server.py"]
    pin = ["taskset", "-c", "0"] if a.pin else []
    alone = rate(pin + base, a.seconds)
    spin = rate(pin + base + ["spin", str(a.spinners)], a.seconds)
    print("INFO %s%s, %d spinner(s)%s: alone %.0f/s, next to the spinners %.0f/s" % (
        a.impl, " " + a.policy if a.policy else "", a.spinners, ", pinned" if a.pin else "",
        alone, spin))
    print("RESULT", spin if a.absolute else spin / alone)

main()
