import time
t0 = time.process_time(); x = 0
for i in range(1, 10000001): x += i % 7
print("RESULT", time.process_time() - t0)
