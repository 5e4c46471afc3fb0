import sys, time
n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
def fib(k):
    return k if k < 2 else fib(k - 1) + fib(k - 2)
t0 = time.process_time(); assert fib(n) > 0
print("RESULT", time.process_time() - t0)
