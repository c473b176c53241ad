"""thermogram: plastic memory capsules with hash-chained, replayable history.

Keys map to vectors of 2-byte signals living in four thermal layers (hot,
warm, cool, cold); every change is a rule-governed delta recorded in a
SHA-256 chain that can be verified and replayed.

``import thermogram`` is cheap: only the error classes load eagerly. Every
other public name (``thermogram.Thermogram``, ``from thermogram import
Signal``, ...) and every submodule (``thermogram.snn``) loads its module,
and with it numpy and numba, on first access (PEP 562).
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Dict, List

from .errors import *  # noqa: F401,F403  (light: no numpy, no numba)
from .errors import __all__ as _errors_all

__version__ = "0.1.0"

# Public name -> the submodule (relative to this package) that defines it.
_LAZY: Dict[str, str] = {
    # signals
    "SIGNAL": "signal",
    "Signal": "signal",
    "as_signal_vector": "signal",
    "signal_vector": "signal",
    "signals_from_floats": "signal",
    "signals_to_floats": "signal",
    # rules and policies
    "PlasticityRule": "plasticity",
    "UpdatePolicy": "plasticity",
    "ThermalConfig": "thermal",
    "ThermalState": "thermal",
    "ConsolidationPolicy": "consolidation",
    "ConsolidationResult": "results",
    "ConsolidationTrigger": "consolidation",
    # deltas and history
    "Delta": "delta",
    "DeltaBatch": "delta",
    "DeltaType": "delta",
    "HashChain": "chain",
    "OpRecord": "chain",
    "Limits": "limits",
    # the capsule
    "CrystallizationResult": "results",
    "Thermogram": "core",
    "ThermogramStats": "results",
    "TransitionResult": "results",
    # archives (needs pyarrow)
    "ArchiveReport": "arrow",
    "verify_archive": "arrow",
    # ternary weights
    "PackedTernary": "ternary",
    "TernaryLayer": "ternary",
    "TernaryWeight": "ternary",
    # spiking network and neuromodulation
    "NeuromodState": "neuromod",
    "NeuromodSyncConfig": "neuromod",
    "EmbeddedSNN": "snn",
    "EmbeddedSNNConfig": "snn",
    # colonies
    "ColonyConfig": "colony",
    "ColonyConsolidationResult": "colony",
    "ColonyMetadata": "colony",
    "ColonyStats": "colony",
    "ThermogramColony": "colony",
    "consolidate_member": "colony",
    # distillation
    "DeltaSource": "distillation",
    "DistillationConfig": "distillation",
    "SemanticBatch": "distillation",
    "SemanticDelta": "distillation",
    "ThermogramSnapshot": "distillation",
    "apply_delta_to_embedding": "distillation",
    "cosine_similarity": "distillation",
    "distill_learning": "distillation",
}

__all__: List[str] = [*_errors_all, *_LAZY]


def __getattr__(name: str) -> Any:
    """Load a public name or a submodule on first access (PEP 562)."""
    module_name = _LAZY.get(name)
    if module_name is not None:
        value = getattr(importlib.import_module(f".{module_name}", __name__), name)
        globals()[name] = value  # later lookups skip this function
        return value
    if not name.startswith("_"):
        full_name = f"{__name__}.{name}"
        try:
            return importlib.import_module(full_name)
        except ModuleNotFoundError as exc:
            if exc.name != full_name:  # the submodule exists but one of its imports failed
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover - static type checkers see the eager imports
    from .arrow import ArchiveReport, verify_archive
    from .chain import HashChain, OpRecord
    from .colony import (ColonyConfig, ColonyConsolidationResult, ColonyMetadata, ColonyStats,
                         ThermogramColony, consolidate_member)
    from .consolidation import ConsolidationPolicy, ConsolidationTrigger
    from .core import Thermogram
    from .results import ConsolidationResult, CrystallizationResult, ThermogramStats, TransitionResult
    from .delta import Delta, DeltaBatch, DeltaType
    from .distillation import (DeltaSource, DistillationConfig, SemanticBatch, SemanticDelta,
                               ThermogramSnapshot, apply_delta_to_embedding, cosine_similarity,
                               distill_learning)
    from .limits import Limits
    from .neuromod import NeuromodState, NeuromodSyncConfig
    from .plasticity import PlasticityRule, UpdatePolicy
    from .signal import (SIGNAL, Signal, as_signal_vector, signal_vector, signals_from_floats,
                         signals_to_floats)
    from .snn import EmbeddedSNN, EmbeddedSNNConfig
    from .ternary import PackedTernary, TernaryLayer, TernaryWeight
    from .thermal import ThermalConfig, ThermalState
