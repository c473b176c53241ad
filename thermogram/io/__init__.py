"""Reading and writing capsules: bytes, files and formats.

Modules, lowest first:

- :mod:`~thermogram.io.reader` — the bounds-checked byte :class:`Reader` and field readers;
- :mod:`~thermogram.io.timetext` — RFC 3339 text and nanosecond timestamps;
- :mod:`~thermogram.io.packing` — packed integer columns, compressed arguments, row budget;
- :mod:`~thermogram.io.records` — each chain record kind's encoders and decoders, side by side
  (the canonical bytes its hash covers, and its ``.thermo`` v2 layout);
- :mod:`~thermogram.io.thermo_v2` — ``.thermo`` v2, ours;
- :mod:`~thermogram.io.thermo_v1` — the reference crate's ``.thermo`` v1 and its delta hash;
- :mod:`~thermogram.io.legacy_json` — the reference's legacy JSON (read only);
- :mod:`~thermogram.io.files` — format detection, :func:`encode`/:func:`decode`,
  :func:`save`/:func:`load`, atomic writes.

docs/format.md is the specification of every layout.
"""
from __future__ import annotations

from .files import DEFAULT_MAX_BYTES, atomic_write, decode, detect_format, encode, fsync_dir, load, save
from .legacy_json import decode_legacy_json
from .packing import pack_ints, unpack_ints
from .reader import Reader
from .records import decode_record, encode_record
from .thermo_v1 import decode_v1, encode_v1, reference_delta_hash
from .thermo_v2 import decode_v2, encode_v2, encode_v2_parts
from .timetext import parse_rfc3339, rfc3339

__all__ = ["save", "load", "encode", "decode", "encode_v1", "decode_v1", "encode_v2", "decode_v2",
           "encode_v2_parts", "decode_legacy_json", "detect_format", "rfc3339", "parse_rfc3339",
           "reference_delta_hash", "atomic_write", "fsync_dir", "encode_record", "decode_record",
           "pack_ints", "unpack_ints", "Reader", "DEFAULT_MAX_BYTES"]
