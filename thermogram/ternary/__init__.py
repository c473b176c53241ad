"""Ternary weights: BitNet-style {-1, 0, +1} values, 2-bit packed storage,
add/subtract-only layers and learning by discrete state transitions.

* :class:`TernaryWeight` (``weight``) -- one weight (an ``IntEnum``: ``NEG``,
  ``ZERO``, ``POS``).
* :class:`PackedTernary` (``packed``) -- a vector of weights, four per byte
  (16x smaller than float32), with the reference crate's bit layout: weight
  ``i`` sits in bits ``2*(i % 4)`` and ``2*(i % 4) + 1`` of byte ``i // 4``;
  ``00`` is 0, ``01`` is +1, ``10`` is -1 (``11`` is reserved and reads as 0).
* :class:`TernaryLayer` (``layer``) -- a ``rows x cols`` matrix of packed rows
  with one float32 scale per row; ``forward`` and ``forward_batch`` use
  additions and subtractions of the inputs only.
* Ternary plasticity (``plasticity``) -- :func:`apply_ternary_update` (per
  update policy), :func:`apply_ternary_stdp`, :func:`ternary_majority_vote`,
  :func:`decay_toward_zero`, :func:`should_prune_ternary`, and ``*_array``
  versions that run one kernel over whole arrays of weights.

Quantization, thresholds and transitions follow the reference crate
(thermogram-rs 1.0) exactly, in float32. Arrays of weights are int8 arrays
holding -1, 0 and +1. Every name is importable from ``thermogram.ternary``;
the submodules depend on each other in one direction only
(``weight`` <- ``packed`` <- ``layer``; ``plasticity`` uses ``weight`` and
``packed``).
"""
from __future__ import annotations

from ..errors import WeightIndexError
from .layer import ARROW_KIND, ARROW_VERSION, TernaryLayer
from .packed import PackedTernary
from .plasticity import (
    UPDATE_POLICY_CODES, apply_ternary_stdp, apply_ternary_stdp_array, apply_ternary_update,
    apply_ternary_update_array, decay_toward_zero, decay_toward_zero_array, flip_array,
    should_prune_ternary, should_prune_ternary_array, strengthen_array, ternary_majority_vote,
    ternary_majority_vote_array, weaken_array,
)
from .weight import TernaryWeight

__all__ = [
    "TernaryWeight", "PackedTernary", "TernaryLayer", "WeightIndexError",
    "UPDATE_POLICY_CODES",
    "apply_ternary_update", "apply_ternary_stdp", "ternary_majority_vote",
    "decay_toward_zero", "should_prune_ternary",
    "apply_ternary_update_array", "apply_ternary_stdp_array", "ternary_majority_vote_array",
    "decay_toward_zero_array", "should_prune_ternary_array",
    "strengthen_array", "weaken_array", "flip_array",
]
