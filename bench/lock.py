"""An uncontended lock taken and given back 1,000,000 times (the CPython
equivalent of lock.lua; arg: acquire or with):
    acquire: lock.acquire(); lock.release()
    with:    with lock: pass
Prints "RESULT <seconds per acquire+release>"."""
import sys
import threading
import time

N = 1000000


def main():
    form = sys.argv[1] if len(sys.argv) > 1 else "acquire"
    lock = threading.Lock()
    if form == "acquire":
        t0 = time.perf_counter()
        for _ in range(N):
            lock.acquire()
            lock.release()
        secs = time.perf_counter() - t0
    elif form == "with":
        t0 = time.perf_counter()
        for _ in range(N):
            with lock:
                pass
        secs = time.perf_counter() - t0
    else:
        raise SystemExit("unknown form %s (acquire or with)" % form)
    assert not lock.locked(), "the lock is still held"
    assert lock.acquire(False), "the lock cannot be taken again"
    lock.release()
    print("RESULT", secs / N)


main()
