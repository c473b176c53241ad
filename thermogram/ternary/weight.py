"""One ternary weight: :class:`TernaryWeight` (``NEG``, ``ZERO``, ``POS``),
the scalar check ``_weight`` and the weight's notebook view."""
from __future__ import annotations

import enum
from typing import Any

import numpy as np

from ..errors import ValidationError
from ..signal import Signal
from ._validate import _f32

__all__ = ["TernaryWeight"]


class TernaryWeight(enum.IntEnum):
    """One ternary weight: ``NEG`` (-1), ``ZERO`` (0) or ``POS`` (+1).

    An ``IntEnum``, so it compares and computes like the integers -1, 0, 1.
    ``TernaryWeight(2)`` raises :class:`~thermogram.errors.ValidationError`.

    Examples
    --------
    >>> TernaryWeight.ZERO.strengthen()
    <TernaryWeight.POS: 1>
    >>> TernaryWeight.from_f32(-0.8, 0.5)
    <TernaryWeight.NEG: -1>
    """

    NEG = -1
    ZERO = 0
    POS = 1

    @classmethod
    def _missing_(cls, value):
        raise ValidationError(f"a ternary weight must be -1, 0 or +1, got {value!r}")

    def strengthen(self) -> "TernaryWeight":
        """One step up: ``NEG -> ZERO -> POS``; ``POS`` stays."""
        return TernaryWeight(min(int(self) + 1, 1))

    def weaken(self) -> "TernaryWeight":
        """One step down: ``POS -> ZERO -> NEG``; ``NEG`` stays."""
        return TernaryWeight(max(int(self) - 1, -1))

    def flip(self) -> "TernaryWeight":
        """Sign swap: ``POS <-> NEG``; ``ZERO`` stays."""
        return TernaryWeight(-int(self))

    def is_active(self) -> bool:
        """True for ``POS`` and ``NEG`` (a non-zero connection)."""
        return self is not TernaryWeight.ZERO

    def to_f32(self) -> float:
        """-1.0, 0.0 or 1.0."""
        return float(int(self))

    @classmethod
    def from_f32(cls, value: float, threshold: float) -> "TernaryWeight":
        """Quantize a float with a threshold, compared in float32 as the reference.

        ``value >= threshold`` gives ``POS``, ``value <= -threshold`` gives
        ``NEG``, anything between gives ``ZERO``.

        Raises
        ------
        ValidationError
            If ``value`` or ``threshold`` is NaN or not a number.
        """
        v = _f32(value, "value")
        t = _f32(threshold, "threshold")
        if v >= t:
            return cls.POS
        if v <= -t:
            return cls.NEG
        return cls.ZERO

    def to_signal(self) -> Signal:
        """As a :class:`~thermogram.signal.Signal`: ``POS`` -> (+1, 255), ``NEG`` -> (-1, 255), ``ZERO`` -> (0, 0)."""
        if self is TernaryWeight.POS:
            return Signal.MAX_POSITIVE
        if self is TernaryWeight.NEG:
            return Signal.MAX_NEGATIVE
        return Signal.ZERO

    @classmethod
    def from_signal(cls, signal: Signal) -> "TernaryWeight":
        """The polarity of an active signal; ``ZERO`` for an inactive one."""
        s = Signal.coerce(signal)
        return cls(s.polarity) if s.is_active() else cls.ZERO


def _weight_repr_html(self: TernaryWeight) -> str:
    return f"<code>TernaryWeight.{self.name} ({int(self):+d})</code>"


# Enum reserves _sunder_ names inside the class body; attach the notebook repr afterwards.
TernaryWeight._repr_html_ = _weight_repr_html


def _weight(value: Any, what: str = "weight") -> "TernaryWeight":
    """A :class:`TernaryWeight` from a TernaryWeight or an integer -1, 0, +1."""
    if isinstance(value, TernaryWeight):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        v = int(value)
        if -1 <= v <= 1:
            return TernaryWeight(v)
    raise ValidationError(f"{what} must be -1, 0, +1 or a TernaryWeight, got {value!r}")
