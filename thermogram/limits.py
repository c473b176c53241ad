"""Caps on what a capsule accepts, so hostile or runaway input fails clearly and early."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Optional

from .errors import LimitError, ValidationError

__all__ = ["Limits"]


@dataclass(frozen=True)
class Limits:
    """Input caps, checked before anything changes (a refused call changes nothing).

    Parameters
    ----------
    max_key_bytes : int
        Longest key in UTF-8 bytes (default 4096).
    max_value_len : int
        Most signals in one value (default 16,777,216 = 32 MiB).
    max_pending : int
        Most pending deltas; beyond it ``apply_*`` asks for a consolidation
        (default 10,000,000).
    max_file_bytes : int
        Largest file :meth:`Thermogram.load` reads (default 16 GiB).
    max_clock_skew_ns : int or None
        If set, a delta timestamped more than this far ahead of the capsule's
        clock is refused (default None: timestamps are the caller's business).
    """

    max_key_bytes: int = 4096
    max_value_len: int = 16_777_216
    max_pending: int = 10_000_000
    max_file_bytes: int = 16 * 2 ** 30
    max_clock_skew_ns: Optional[int] = None

    def __post_init__(self):
        for f in ("max_key_bytes", "max_value_len", "max_pending", "max_file_bytes"):
            v = getattr(self, f)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ValidationError(f"{f} must be a positive integer, got {v!r}")
        s = self.max_clock_skew_ns
        if s is not None and (not isinstance(s, int) or isinstance(s, bool) or s < 0):
            raise ValidationError(f"max_clock_skew_ns must be None or a non-negative integer, got {s!r}")

    def replace(self, **changes: Any) -> "Limits":
        """A copy with the given fields changed (validated like the constructor)."""
        return replace(self, **changes)

    def check_key(self, key: str) -> None:
        """Raise :class:`LimitError` if ``key`` is longer than ``max_key_bytes`` in UTF-8."""
        if len(key) * 4 > self.max_key_bytes and len(key.encode("utf-8")) > self.max_key_bytes:
            raise LimitError(f"key is {len(key.encode('utf-8'))} bytes; the limit is {self.max_key_bytes} "
                             "(Limits.max_key_bytes)")

    def check_value(self, n: int, what: str = "value") -> None:
        """Raise :class:`LimitError` if ``n`` signals exceed ``max_value_len`` (``what`` names it in
        the message)."""
        if n > self.max_value_len:
            raise LimitError(f"{what} has {n} signals; the limit is {self.max_value_len} (Limits.max_value_len)")

    def check_pending(self, pending: int, adding: int) -> None:
        """Raise :class:`LimitError` if ``pending`` deltas plus ``adding`` more exceed ``max_pending``."""
        if pending + adding > self.max_pending:
            raise LimitError(f"{pending} deltas are pending and {adding} more would pass the limit of "
                             f"{self.max_pending} (Limits.max_pending): consolidate first")

    def check_timestamp(self, ts: int, now: int) -> None:
        """Raise :class:`LimitError` if ``ts`` is more than ``max_clock_skew_ns`` after ``now``
        (both int ns); never raises when ``max_clock_skew_ns`` is None."""
        if self.max_clock_skew_ns is not None and ts > now + self.max_clock_skew_ns:
            raise LimitError(f"timestamp {ts} is {ts - now} ns ahead of the clock; at most "
                             f"{self.max_clock_skew_ns} allowed (Limits.max_clock_skew_ns)")
