import sys, threading, time
n = int(sys.argv[1]) if len(sys.argv) > 1 else 27
def fib(k): return k if k < 2 else fib(k - 1) + fib(k - 2)
t0 = time.perf_counter(); fib(n); fib(n); seq = time.perf_counter() - t0
t0 = time.perf_counter()
a = threading.Thread(target=fib, args=(n,)); b = threading.Thread(target=fib, args=(n,))
a.start(); b.start(); a.join(); b.join()
print("RESULT", (time.perf_counter() - t0) / seq)
