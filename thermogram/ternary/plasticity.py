"""Ternary plasticity: learning by discrete state transitions.

:func:`apply_ternary_update` (per update policy), :func:`apply_ternary_stdp`,
:func:`ternary_majority_vote`, :func:`decay_toward_zero`,
:func:`should_prune_ternary`, and ``*_array`` versions that run one kernel
over whole arrays of weights (int8 arrays of -1, 0, +1).
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, Union

import numpy as np

from ..errors import ValidationError
from ..kernels import ternary as _k
from ..signal import Signal
from ._validate import _f32, _float_array
from .packed import PackedTernary, _weights_array
from .weight import TernaryWeight, _weight

__all__ = [
    "UPDATE_POLICY_CODES",
    "apply_ternary_update", "apply_ternary_stdp", "ternary_majority_vote",
    "decay_toward_zero", "should_prune_ternary",
    "apply_ternary_update_array", "apply_ternary_stdp_array", "ternary_majority_vote_array",
    "decay_toward_zero_array", "should_prune_ternary_array",
    "strengthen_array", "weaken_array", "flip_array",
]

UPDATE_POLICY_CODES: Dict[str, int] = {
    "STDP": _k.POLICY_STDP,
    "Replace": _k.POLICY_REPLACE,
    "EMA": _k.POLICY_EMA,
    "Bayesian": _k.POLICY_BAYESIAN,
    "WTA": _k.POLICY_WTA,
}
"""Integer codes of the update policies accepted as ``policy``."""


def _policy(policy: Any) -> int:
    if isinstance(policy, (bool, np.bool_)) or not isinstance(policy, (int, np.integer)):
        raise ValidationError(
            f"policy must be an integer code 0-4 (0 STDP, 1 Replace, 2 EMA, 3 Bayesian, 4 WTA), got {policy!r}"
        )
    p = int(policy)
    if not 0 <= p <= 4:
        raise ValidationError(
            f"policy must be 0 STDP, 1 Replace, 2 EMA, 3 Bayesian or 4 WTA, got {p}"
        )
    return p


def _lr_mag(value: Any) -> np.uint8:
    if isinstance(value, Signal):
        return np.uint8(value.magnitude)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or not 0 <= int(value) <= 255:
        raise ValidationError(f"learning_rate_magnitude must be an integer 0-255 (or a Signal), got {value!r}")
    return np.uint8(int(value))


def _flag(value: Any, what: str) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and int(value) in (0, 1):
        return bool(value)
    raise ValidationError(f"{what} must be a bool, got {value!r}")


def _i64(value: Any, what: str) -> np.int64:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValidationError(f"{what} must be an integer number of milliseconds, got {value!r}")
    v = int(value)
    if not -(1 << 63) <= v < (1 << 63):
        raise ValidationError(f"{what} must fit in a signed 64-bit integer, got {v}")
    return np.int64(v)


def apply_ternary_update(policy: int, learning_rate_magnitude: int, current: Union[TernaryWeight, int],
                         observed: Union[TernaryWeight, int], confidence: float) -> TernaryWeight:
    """New weight after an observation, by the reference's transition table.

    Parameters
    ----------
    policy : int
        0 STDP, 1 Replace, 2 EMA, 3 Bayesian, 4 WTA (an ``IntEnum`` works).
    learning_rate_magnitude : int
        0-255 (or a :class:`~thermogram.signal.Signal`, whose magnitude is used);
        only EMA reads it, comparing ``confidence > magnitude / 255``.
    current, observed : TernaryWeight or int
    confidence : float
        Compared in float32 with 0.7, 0.5, 0.3 (as the reference's ``f32``).

    Returns
    -------
    TernaryWeight
        STDP: agreeing observation strengthens above 0.7; disagreeing moves
        one step toward it above 0.5, else decays to zero. Replace, WTA:
        ``observed`` above 0.5. EMA: ``observed`` above the learning rate.
        Bayesian: ``observed`` above 0.7, zero above 0.3, else unchanged.

    Raises
    ------
    ValidationError
        Bad policy, learning rate or weight, or NaN confidence.
    """
    p = _policy(policy)
    lr = _lr_mag(learning_rate_magnitude)
    cur = _weight(current, "current")
    obs = _weight(observed, "observed")
    conf = _f32(confidence, "confidence")
    return TernaryWeight(int(_k.ternary_update(np.int64(p), lr, np.int8(cur), np.int8(obs), conf)))


def apply_ternary_stdp(weight: Union[TernaryWeight, int], pre_fired: bool, post_fired: bool,
                       dt_ms: int) -> TernaryWeight:
    """Spike-timing transition of one weight.

    When both neurons fired: ``dt_ms > 0`` (pre before post) strengthens,
    ``dt_ms < 0`` weakens, ``dt_ms == 0`` lifts ``NEG`` to ``ZERO``.
    Otherwise the weight is unchanged.
    """
    w = _weight(weight, "weight")
    pre = _flag(pre_fired, "pre_fired")
    post = _flag(post_fired, "post_fired")
    dt = _i64(dt_ms, "dt_ms")
    return TernaryWeight(int(_k.ternary_stdp(np.int8(w), pre, post, dt)))


def ternary_majority_vote(weights: Iterable[Union[TernaryWeight, int]]) -> TernaryWeight:
    """``POS`` if +1 outnumbers -1, ``NEG`` if -1 outnumbers +1, else ``ZERO`` (also when empty)."""
    if not isinstance(weights, (np.ndarray, PackedTernary)):
        weights = list(weights)
    w = _weights_array(weights, "weights").ravel()
    return TernaryWeight(int(_k.majority_vote(w)))


def decay_toward_zero(weight: Union[TernaryWeight, int]) -> TernaryWeight:
    """The reference's decay of a ternary weight: always ``ZERO``."""
    _weight(weight, "weight")
    return TernaryWeight.ZERO


def should_prune_ternary(weight: Union[TernaryWeight, int]) -> bool:
    """Only ``ZERO`` weights (inactive connections) are prunable."""
    return _weight(weight, "weight") is TernaryWeight.ZERO


# vectorised ------------------------------------------------------------------------


def _elementwise(fn, weights: Any) -> np.ndarray:
    w = _weights_array(weights, "weights")
    flat = w.reshape(-1)
    out = np.empty_like(flat)
    fn(flat, out)
    return out.reshape(w.shape)


def strengthen_array(weights: Any) -> np.ndarray:
    """Element-wise :meth:`TernaryWeight.strengthen` of an int array (any shape)."""
    return _elementwise(_k.strengthen_vec, weights)


def weaken_array(weights: Any) -> np.ndarray:
    """Element-wise :meth:`TernaryWeight.weaken` of an int array (any shape)."""
    return _elementwise(_k.weaken_vec, weights)


def flip_array(weights: Any) -> np.ndarray:
    """Element-wise :meth:`TernaryWeight.flip` of an int array (any shape)."""
    return _elementwise(_k.flip_vec, weights)


def decay_toward_zero_array(weights: Any) -> np.ndarray:
    """Element-wise :func:`decay_toward_zero` (an int8 array of zeros, validated input)."""
    return _elementwise(_k.decay_toward_zero_vec, weights)


def should_prune_ternary_array(weights: Any) -> np.ndarray:
    """Boolean mask of the prunable (zero) weights."""
    w = _weights_array(weights, "weights")
    flat = w.reshape(-1)
    out = np.empty(flat.shape[0], np.bool_)
    _k.prune_mask_vec(flat, out)
    return out.reshape(w.shape)


def apply_ternary_update_array(policy: int, lr_mag: int, current: Any, observed: Any,
                               confidence: Any) -> np.ndarray:
    """:func:`apply_ternary_update` over arrays in one kernel call.

    ``lr_mag`` is the learning-rate magnitude 0-255; ``current`` and
    ``observed`` are int arrays of -1, 0, +1 and ``confidence`` a float
    array (converted to float32); the three are broadcast together.
    Returns an int8 array of the broadcast shape.

    Raises
    ------
    ValidationError
        Bad policy or learning rate, values outside {-1, 0, 1}, NaN
        confidence, or shapes that do not broadcast.
    """
    p = _policy(policy)
    lr = _lr_mag(lr_mag)
    cur = _weights_array(current, "current")
    obs = _weights_array(observed, "observed")
    conf = _float_array(confidence, "confidence", np.ndim(confidence), finite=False)
    try:
        cur, obs, conf = np.broadcast_arrays(cur, obs, conf)
    except ValueError:
        raise ValidationError(
            f"current {cur.shape}, observed {obs.shape} and confidence {conf.shape} do not broadcast"
        ) from None
    shape = cur.shape
    cur = np.ascontiguousarray(cur).reshape(-1)
    obs = np.ascontiguousarray(obs).reshape(-1)
    conf = np.ascontiguousarray(conf).reshape(-1)
    out = np.empty(cur.shape[0], np.int8)
    _k.ternary_update_vec(np.int64(p), lr, cur, obs, conf, out)
    return out.reshape(shape)


def apply_ternary_stdp_array(weights: Any, pre_fired: Any, post_fired: Any, dt_ms: Any) -> np.ndarray:
    """:func:`apply_ternary_stdp` over arrays in one kernel call.

    ``pre_fired``/``post_fired`` are bool arrays (or scalars) and ``dt_ms``
    an integer array (or scalar), broadcast against ``weights``.
    """
    w = _weights_array(weights, "weights")
    pre = np.asarray(pre_fired)
    post = np.asarray(post_fired)
    dt = np.asarray(dt_ms)
    for name, a in (("pre_fired", pre), ("post_fired", post)):
        if a.dtype.kind != "b":
            raise ValidationError(f"{name} must be boolean, got dtype {a.dtype}")
    if dt.dtype.kind not in "iu" or (dt.dtype == np.uint64 and dt.size and int(dt.max()) >= 1 << 63):
        raise ValidationError(f"dt_ms must be integer milliseconds (int64 range), got dtype {dt.dtype}")
    try:
        w, pre, post, dt = np.broadcast_arrays(w, pre, post, dt)
    except ValueError:
        raise ValidationError(
            f"weights {w.shape}, pre_fired {pre.shape}, post_fired {post.shape} and dt_ms {dt.shape} "
            "do not broadcast"
        ) from None
    shape = w.shape
    out = np.empty(int(np.prod(shape)), np.int8)
    _k.ternary_stdp_vec(np.ascontiguousarray(w).reshape(-1), np.ascontiguousarray(pre).reshape(-1),
                        np.ascontiguousarray(post).reshape(-1),
                        np.ascontiguousarray(dt, dtype=np.int64).reshape(-1), out)
    return out.reshape(shape)


def ternary_majority_vote_array(weights: Any, axis: int = 0) -> np.ndarray:
    """:func:`ternary_majority_vote` along ``axis`` of an int array of -1, 0, +1.

    For a ``(voters, n)`` matrix and ``axis=0`` this is the vote of each
    column. Returns an int8 array with ``axis`` removed.
    """
    w = _weights_array(weights, "weights")
    if w.ndim == 0:
        raise ValidationError("weights must have at least one dimension")
    try:
        w = np.moveaxis(w, axis, 0)
    except (np.exceptions.AxisError, TypeError):
        raise ValidationError(f"axis {axis!r} is invalid for weights of shape {w.shape}") from None
    rest = w.shape[1:]
    mat = np.ascontiguousarray(w.reshape(w.shape[0], -1))
    out = np.empty(mat.shape[1], np.int8)
    _k.majority_vote_columns(mat, out)
    return out.reshape(rest)
