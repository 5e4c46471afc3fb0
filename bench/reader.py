# The same as reader.lua in CPython: one thread reads a 300,000-line file
# while three threads compute.  Prints "RESULT <seconds the reader took>".
import sys, threading, time
path = sys.argv[1] if len(sys.argv) > 1 else "/tmp/gilua-lines.txt"
def read_all():
    n = 0
    with open(path) as f:
        for _ in f:
            n += 1
    assert n == 300000
t0 = time.perf_counter(); read_all(); alone = time.perf_counter() - t0
stop = False
def spin():
    x = 0
    while not stop:
        x += 1
cpus = [threading.Thread(target=spin) for _ in range(3)]
for t in cpus: t.start()
t0 = time.perf_counter(); read_all(); took = time.perf_counter() - t0
stop = True
for t in cpus: t.join()
print("INFO reader alone %.3f s, next to 3 compute threads %.3f s (%.1f x its fair share)" % (
    alone, took, took / (4 * alone)))
print("RESULT", took)
