"""apply_delta CPU cost: µs per call (process CPU time, min over 15 trials of 5,000 deltas on 1,000 keys)."""
import time
from thermogram import Delta, Thermogram, ConsolidationPolicy, signal_vector
N = 5000
vals = signal_vector([(1, 10)] * 8)
res = []
for rep in range(15):
    t = Thermogram("b", policy=ConsolidationPolicy.manual_only(), clock=lambda: 1_700_000_000_000_000_000)
    ds = [Delta.update(f"k{i % 1000}", vals, timestamp=1_700_000_000_000_000_000 + i) for i in range(N)]
    c0 = time.process_time()
    for d in ds:
        t.apply_delta(d)
    res.append((time.process_time() - c0) / N * 1e6)
res.sort()
print(f"apply_delta: min {res[0]:.2f} us/call, median {res[len(res)//2]:.2f} us/call (CPU time)")
