"""thermogram: plastic memory capsules with hash-chained, replayable history.

Keys map to vectors of 2-byte signals living in four thermal layers (hot,
warm, cool, cold); every change is a rule-governed delta recorded in a
SHA-256 chain that can be verified and replayed.
"""
from .errors import *  # noqa: F401,F403
from .signal import (SIGNAL, Signal, as_signal_vector, signal_vector, signals_from_floats,  # noqa: F401
                     signals_to_floats)
from .plasticity import PlasticityRule, UpdatePolicy  # noqa: F401
from .thermal import ThermalConfig, ThermalState  # noqa: F401
from .consolidation import ConsolidationPolicy, ConsolidationResult, ConsolidationTrigger  # noqa: F401
from .delta import Delta, DeltaBatch, DeltaType  # noqa: F401
from .chain import HashChain, OpRecord  # noqa: F401
from .limits import Limits  # noqa: F401
from .core import (CrystallizationResult, Thermogram, ThermogramStats,  # noqa: F401
                   TransitionResult)

from .arrow import ArchiveReport, verify_archive  # noqa: F401,E402
from .ternary import PackedTernary, TernaryLayer, TernaryWeight  # noqa: F401,E402
from .neuromod import NeuromodState, NeuromodSyncConfig  # noqa: F401,E402
from .snn import EmbeddedSNN, EmbeddedSNNConfig  # noqa: F401,E402
from .colony import (ColonyConfig, ColonyConsolidationResult, ColonyMetadata, ColonyStats,  # noqa: F401,E402
                     ThermogramColony, consolidate_member)
from .distillation import (DeltaSource, DistillationConfig, SemanticDelta, SignatureError,  # noqa: F401,E402
                           ThermogramSnapshot, apply_delta_to_embedding, cosine_similarity, distill_learning)

__version__ = "0.1.0"
