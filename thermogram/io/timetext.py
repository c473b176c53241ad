"""Timestamps as text and as the reference's (seconds, nanoseconds) pairs.

The reference stores times as chrono ``DateTime<Utc>``: RFC 3339 text in JSON and in
the SHA-256 of its deltas, ``i64 seconds | u32 nanoseconds`` in ``.thermo`` v1.
Here every time is integer nanoseconds since the Unix epoch (UTC).
"""
from __future__ import annotations

import datetime as _dt

from ..errors import FormatError

__all__ = ["rfc3339", "parse_rfc3339", "NS"]

NS = 1_000_000_000
"""Nanoseconds per second."""


def rfc3339(ns: int) -> str:
    """The text chrono's ``DateTime<Utc>::to_rfc3339()`` prints for ``ns`` since the epoch.

    Fraction digits as chrono's AutoSi: none, 3, 6 or 9, whichever is exact.
    """
    secs, nanos = divmod(int(ns), NS)
    d = _dt.datetime(1970, 1, 1) + _dt.timedelta(seconds=secs)
    base = f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}"
    if nanos == 0:
        frac = ""
    elif nanos % 1_000_000 == 0:
        frac = f".{nanos // 1_000_000:03d}"
    elif nanos % 1_000 == 0:
        frac = f".{nanos // 1_000:06d}"
    else:
        frac = f".{nanos:09d}"
    return f"{base}{frac}+00:00"


def parse_rfc3339(text: str) -> int:
    """Integer ns since the epoch from an RFC 3339 string (any offset, up to 9 fraction digits)."""
    if not isinstance(text, str):
        raise FormatError(f"timestamp must be an RFC 3339 string, got {text!r}")
    t = text.strip()
    try:
        if t.endswith(("Z", "z")):
            t, off = t[:-1], "+00:00"
        else:
            t, off = t[:-6], t[-6:]
        frac_ns = 0
        if "." in t:
            t, frac = t.split(".", 1)
            if not frac.isdigit() or len(frac) > 9:
                raise ValueError
            frac_ns = int(frac.ljust(9, "0"))
        d = _dt.datetime.fromisoformat(t + off)
    except ValueError:
        raise FormatError(f"not an RFC 3339 timestamp: {text!r}") from None
    epoch = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
    delta = d - epoch
    return (delta.days * 86400 + delta.seconds) * NS + frac_ns


def _ns(secs: int, nanos: int) -> int:
    """Integer ns from a (seconds, nanoseconds) pair, range-checked to int64."""
    if nanos >= NS:
        raise FormatError(f"invalid timestamp: {nanos} nanoseconds")
    ns = secs * NS + nanos
    if not -(2 ** 63) <= ns < 2 ** 63:
        raise FormatError(f"timestamp {secs}s is outside the supported range (years 1677-2262)")
    return ns
