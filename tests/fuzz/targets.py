"""Fuzz targets shared by the CI fuzz test and the atheris harness.

Each target takes arbitrary bytes and must either succeed or raise
:class:`thermogram.FormatError` — any other exception is a finding.
"""
import os
import pathlib
import tempfile

import numpy as np

import thermogram as tg
from thermogram import FormatError, Thermogram
from thermogram.journal import read_journal

HERE = pathlib.Path(__file__).resolve().parent


def conformance_thermo_dir() -> pathlib.Path:
    """The reference's ``.thermo`` files: $THERMOGRAM_CONFORMANCE_DIR/thermo, default
    tests/data/conformance/thermo."""
    env = os.environ.get("THERMOGRAM_CONFORMANCE_DIR")
    base = pathlib.Path(env) if env else HERE.parent / "data" / "conformance"
    return base / "thermo"


def seeds():
    """Valid inputs to mutate: the reference's v1 files and v2 files and journals of our own."""
    out = {"v1": [], "v2": [], "journal": []}
    d = conformance_thermo_dir()
    if d.exists():
        out["v1"] = [p.read_bytes() for p in sorted(d.glob("*.thermo"))]
        out["v2"] = [Thermogram.from_bytes(b).to_bytes("v2") for b in out["v1"]]
    t = Thermogram("seed", policy=tg.ConsolidationPolicy.manual_only(), clock=lambda: 1_700_000_000 * 10**9)
    t.write("a", tg.signal_vector([(1, 5), (-1, 9)]))
    t.apply_batch(tg.DeltaBatch.from_arrays(["b", "c"], np.zeros((2, 3), tg.SIGNAL)))
    t.consolidate()
    t.write("d", tg.signal_vector([(0, 1)]))
    out["v2"].append(t.to_bytes("v2"))
    with tempfile.TemporaryDirectory() as tmp:
        p = os.path.join(tmp, "j.thermo")
        with Thermogram.open(p, create=True) as j:
            for i in range(4):
                j.write(f"k{i}", tg.signal_vector([(1, i)]))
        out["journal"].append(open(p + ".journal", "rb").read())
        out["journal_snapshot"] = open(p, "rb").read()
    return out


def decode_any(data: bytes) -> None:
    """The file decoders (v2, v1, legacy JSON, auto-detected)."""
    try:
        Thermogram.from_bytes(data)
    except FormatError:
        pass


def journal(data: bytes, snapshot: bytes) -> None:
    """Open a capsule whose journal segment is ``data``."""
    with tempfile.TemporaryDirectory() as tmp:
        p = os.path.join(tmp, "f.thermo")
        with open(p, "wb") as f:
            f.write(snapshot)
        with open(p + ".journal", "wb") as f:
            f.write(data)
        try:
            read_journal(p + ".journal")
            Thermogram.open(p).close()
        except FormatError:
            pass


def mutate(rng: np.random.Generator, data: bytes) -> bytes:
    """One random structural mutation: flip, set, insert, delete, truncate, splice or widen a length."""
    b = bytearray(data)
    kind = rng.integers(0, 8)
    if not b:
        return bytes(rng.integers(0, 256, rng.integers(0, 64), dtype=np.uint8))
    i = int(rng.integers(0, len(b)))
    if kind == 0:
        b[i] ^= 1 << int(rng.integers(0, 8))
    elif kind == 1:
        b[i] = int(rng.integers(0, 256))
    elif kind == 2:
        b[i:i] = bytes(rng.integers(0, 256, int(rng.integers(1, 16)), dtype=np.uint8))
    elif kind == 3:
        del b[i:i + int(rng.integers(1, 16))]
    elif kind == 4:
        del b[i:]
    elif kind == 5:
        j = int(rng.integers(0, len(b)))
        b[i:i + 8] = b[j:j + 8]
    elif kind == 6:
        b[i:i + 4] = b"\xff\xff\xff\x7f"
    else:
        b[i:i + 8] = (2**40).to_bytes(8, "little")
    return bytes(b)
