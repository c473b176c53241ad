"""asv suites for persistence: .thermo v2 and v1 encode/decode, file size, journal appends.

Mirrors the reference's codec_encode / codec_decode (n entries of 64 signals,
consolidated, no pending deltas).
"""
import os
import tempfile

import numpy as np

import thermogram as tg
from thermogram.chain import OpRecord
from thermogram.journal import JournalFile


def consolidated_capsule(n, signals=64, seed=0):
    t = tg.Thermogram("codec", policy=tg.ConsolidationPolicy.manual_only(),
                      clock=lambda: 1_767_225_600_000_000_000)
    vals = np.zeros((n, signals), tg.SIGNAL)
    rng = np.random.default_rng(seed)
    vals["polarity"] = rng.integers(-1, 2, (n, signals))
    vals["magnitude"] = rng.integers(0, 256, (n, signals))
    t.apply_batch(tg.DeltaBatch.from_arrays([f"key_{i}" for i in range(n)], vals, tg.Signal.positive(200),
                                            timestamps=1_767_225_600_000_000_000))
    t.consolidate()
    return t


class Codec:
    params = ([10, 100, 1000, 10000, 100000], ["v2", "v1"])
    param_names = ["entries", "format"]
    timeout = 300

    def setup(self, n, fmt):
        self.t = consolidated_capsule(n)
        self.data = self.t.to_bytes(fmt)
        tg.Thermogram.from_bytes(self.data)  # warm the JIT

    def time_encode(self, n, fmt):
        self.t.to_bytes(fmt)

    def time_decode(self, n, fmt):
        tg.Thermogram.from_bytes(self.data, verify=False)

    def time_decode_verified(self, n, fmt):
        tg.Thermogram.from_bytes(self.data, verify=True)

    def track_bytes_per_entry(self, n, fmt):
        return len(self.data) / n

    track_bytes_per_entry.unit = "bytes"


class JournalAppend:
    """Records appended per second under the "batch" fsync policy (frames buffered,
    written and fsynced every 1,024 records, the default), records already linked as the capsule does."""

    params = (["batch", "never"],)
    param_names = ["fsync"]
    number = 1
    repeat = 5

    def setup(self, policy):
        self.dir = tempfile.mkdtemp()
        self.records = []
        prev = None
        for i in range(20_000):
            r = OpRecord("reinforce", {"key": f"k{i % 100}", "amount": [1, 5]}, i)
            cb = r._link(prev)
            prev = r.hash
            self.records.append((r, cb))
        self.journal = JournalFile(os.path.join(self.dir, "j.thermo"), "00" * 32, policy, 1024, create=True)

    def teardown(self, policy):
        self.journal.close()

    def time_append_20k(self, policy):
        j = self.journal
        for r, cb in self.records:
            j.append(r, cb)
        j.sync()

    def track_records_per_second(self, policy):
        import time
        j = self.journal
        t0 = time.perf_counter()
        for r, cb in self.records:
            j.append(r, cb)
        j.sync()
        return len(self.records) / (time.perf_counter() - t0)

    track_records_per_second.unit = "records/s"
