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


class ApplyDeltaStreamFile:
    """``apply_delta`` of 10,000 pre-built Update deltas (one signal, strength 128, 10,000
    distinct keys), one call each, onto a fresh manual-policy capsule: in memory, or
    file-backed (``Thermogram.open(..., fsync="never")``: every record framed into the
    journal's buffer, written every 1,024 records). The two differ only by the journal, so
    their ratio is its cost per delta. Per delta = time / 10,000."""

    N = 10_000
    params = ["memory", "never"]
    param_names = ["capsule"]
    number = 1
    repeat = 7
    timeout = 300

    def _open(self, where):
        from thermogram import ConsolidationPolicy
        if where == "memory":
            return tg.Thermogram("bench", policy=ConsolidationPolicy.manual_only())
        return tg.Thermogram.open(os.path.join(self.dir, f"s{len(os.listdir(self.dir))}.thermo"), create=True,
                                  fsync=where, policy=ConsolidationPolicy.manual_only())

    def setup(self, where):
        from .bench_reference_workloads import one_signal
        self.dir = tempfile.mkdtemp()
        v, s = one_signal(100), tg.Signal.positive(128)
        self.deltas = [tg.Delta.update(f"key_{i}", v, "source", s) for i in range(self.N)]
        warm = self._open(where)  # load every kernel the stream meets (key table growth included)
        for d in self.deltas:
            warm.apply_delta(d)
        warm.close()
        self.t = self._open(where)

    def teardown(self, where):
        import shutil
        self.t.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def time_apply_delta_stream(self, where):
        apply = self.t.apply_delta
        for d in self.deltas:
            apply(d)

    time_apply_delta_stream.__doc__ = "10,000 pre-built updates, each applied at once (per delta: time / 10,000)."
