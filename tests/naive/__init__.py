"""Naive reference twins of the kernels (the oracle for ``tests/kernels``).

One module per kernel module of ``thermogram.kernels``, written straight from
the rules with plain Python and numpy float32 scalars, dicts instead of columns
and loops instead of vectorised code:

=================  =====================================================
``signal``         signal arithmetic (``kernels/signal.py``)
``plasticity``     plasticity update rules (``kernels/plasticity.py``)
``thermal``        layer decay, promotion, demotion, pruning, warming
``consolidation``  folding pending deltas into the hot layer
``capsule``        a whole capsule as dicts (the model of ``test_model``)
``codec``          v1 entry scanning/writing, column planning, slots
``keys``           CRC-32 key table, key ordering and framing
``snn``            the embedded spiking network, stage by stage
``ternary``        2-bit ternary packing, products and transitions
``colony``         XXH3 routing and float32 embedding math
=================  =====================================================

Import the module you need, e.g. ``from naive import signal as ns``.
"""
