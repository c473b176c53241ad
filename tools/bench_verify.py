"""verify() cost: chain-only check vs chain + replay + state comparison, and a trusted load."""
import os, tempfile, time
import numpy as np
from thermogram import Delta, DeltaBatch, Thermogram, ConsolidationPolicy, Signal, signal_vector
t = Thermogram("v", policy=ConsolidationPolicy.manual_only(), clock=lambda: 1_700_000_000_000_000_000)
vals = signal_vector([(1, 10)] * 8)
for i in range(20_000):
    t.apply_delta(Delta.update(f"k{i % 2000}", vals, timestamp=1_700_000_000_000_000_000 + i))
    if i % 2000 == 1999:
        t.consolidate()
keys = [f"b{i}" for i in range(100_000)]
t.apply_batch(DeltaBatch.from_arrays(keys, np.full((100_000, 8), 0.5, np.float32), timestamps=5))
t.consolidate()
key = b"k" * 32
t.sign_head(key)
n = len(t.records())
def best(f, r=3):
    out = []
    for _ in range(r):
        c = time.perf_counter(); f(); out.append(time.perf_counter() - c)
    return min(out) * 1e3
print(f"{n} records, {t.total_entries()} entries")
print(f"chain.verify():             {best(t.chain.verify):8.1f} ms")
print(f"verify() (chain + replay):  {best(t.verify):8.1f} ms")
print(f"verify_trust (signed state): {best(lambda: t.verify_trust([key])):8.1f} ms")
with tempfile.TemporaryDirectory() as d:
    p = os.path.join(d, "c.thermo"); t.save(p)
    print(f"load():                     {best(lambda: Thermogram.load(p)):8.1f} ms")
    print(f"load(trusted_keys=[key]):   {best(lambda: Thermogram.load(p, trusted_keys=[key])):8.1f} ms")
    t.write("tail", vals); t.save(p)
    print(f"load(trusted) + 1 unsigned: {best(lambda: Thermogram.load(p, trusted_keys=[key])):8.1f} ms")
