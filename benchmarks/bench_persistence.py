"""asv suites for persistence: .thermo v2 and v1 encode/decode, file size, journal appends.

Mirrors the reference's codec_encode / codec_decode (n entries of 64 signals,
consolidated, no pending deltas).
"""
import os
import tempfile

import thermogram as tg
from thermogram.chain import OpRecord
from thermogram.journal import JournalFile

from .common import codec_capsule as consolidated_capsule


class Codec:
    """``.thermo`` v2 and v1 encode/decode of ``entries`` consolidated entries of 64 signals."""

    params = ([10, 100, 1000, 10000, 100000], ["v2", "v1"])
    param_names = ["entries", "format"]
    timeout = 300

    def setup(self, n, fmt):
        self.t = consolidated_capsule(n)
        self.data = self.t.to_bytes(fmt)
        tg.Thermogram.from_bytes(self.data)  # warm the JIT

    def time_encode(self, n, fmt):
        self.t.to_bytes(fmt)

    # Docstrings of timed methods are set after them: asv versions a benchmark by the hash
    # of its method's source, so results stay comparable with those of earlier commits.
    time_encode.__doc__ = "Encode the capsule in the format."

    def time_decode(self, n, fmt):
        tg.Thermogram.from_bytes(self.data, verify=False)

    time_decode.__doc__ = "Decode without verifying the chain."

    def time_decode_verified(self, n, fmt):
        tg.Thermogram.from_bytes(self.data, verify=True)

    time_decode_verified.__doc__ = "Decode and verify the chain."

    def track_bytes_per_entry(self, n, fmt):
        return len(self.data) / n

    track_bytes_per_entry.unit = "bytes"
    track_bytes_per_entry.__doc__ = "Encoded size per entry."


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

    time_append_20k.__doc__ = "Append 20,000 linked records, then sync."

    def track_records_per_second(self, policy):
        import time
        j = self.journal
        t0 = time.perf_counter()
        for r, cb in self.records:
            j.append(r, cb)
        j.sync()
        return len(self.records) / (time.perf_counter() - t0)

    track_records_per_second.unit = "records/s"
    track_records_per_second.__doc__ = "Records appended per second (20,000 records, then sync)."
