"""The error hierarchy: every error thermogram raises is a ``ThermogramError``.

A call that raises leaves the capsule exactly as it was.
"""
from __future__ import annotations

from typing import Any, Optional

__all__ = [
    "ThermogramError", "ValidationError", "ChainError", "ForkError", "ReplayError", "FormatError", "DurabilityError",
    "KeyMissingError", "LockedError", "LimitError", "ReadOnlyError", "SignatureError",
    "WeightIndexError", "parse_int_enum",
]


class ThermogramError(Exception):
    """Base class of every error raised by thermogram."""


class ValidationError(ThermogramError, ValueError):
    """An argument is malformed: wrong type, out of domain, NaN, bad key..."""


class KeyMissingError(ThermogramError, KeyError):
    """An operation needs a key that the capsule does not hold."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable
        return str(self.args[0]) if self.args else ""


class ChainError(ThermogramError):
    """The hash chain is broken, or a record does not link to the head.

    Attributes
    ----------
    index : int or None
        Position of the first bad record, when known.
    """

    def __init__(self, message: str, index: Optional[int] = None):
        super().__init__(message)
        self.index = index


class ForkError(ChainError):
    """A record names a ``prev_hash`` that is not the current head (a fork)."""


class ReplayError(ChainError):
    """A delta (or batch) whose id is already in the capsule's chain was applied again.

    Each delta applies once: a retried send of one that arrived is refused (and changes
    nothing) instead of being counted twice. ``index`` is the record that holds the id.
    """


class FormatError(ThermogramError):
    """A file or byte stream is corrupt, truncated, hostile or of unknown format."""


class DurabilityError(ThermogramError, OSError):
    """A file operation (write, fsync, rename, truncate) of a file-backed capsule, a
    checkpoint or a save failed, so bytes may not be on disk.

    The call that failed was not acknowledged. The capsule's writer is then *poisoned*:
    every later mutation raises this error too, reads keep working, until the capsule is
    closed and opened again (which rolls back to the acknowledged records). Also an
    ``OSError``, so code that caught the underlying error keeps working.
    """


class LockedError(ThermogramError):
    """Another writer holds the capsule's lock."""


class LimitError(ValidationError):
    """A configured limit (key bytes, value length, pending records...) was exceeded."""


class ReadOnlyError(ThermogramError):
    """A mutation was attempted on a capsule opened (or closed back to) read-only."""


class SignatureError(ThermogramError):
    """A delta batch's signature is missing, malformed, or does not match its content and key."""


class WeightIndexError(ThermogramError, IndexError):
    """A weight index (or row/column) is outside the vector or layer."""


def parse_int_enum(cls, value: Any, what: str, expected: str):
    """Member of the IntEnum ``cls`` from a member, its int value, or its name
    (case-insensitive); anything else is a :class:`ValidationError` saying what was expected."""
    if isinstance(value, cls):
        return value
    if isinstance(value, str):
        try:
            return cls[value.strip().upper()]
        except KeyError:
            pass
    elif isinstance(value, int) or (hasattr(value, "__index__") and not isinstance(value, bool)):
        if not isinstance(value, bool):
            try:
                return cls(int(value))
            except ValueError:
                pass
    raise ValidationError(f"unknown {what} {value!r}; expected {expected}")
