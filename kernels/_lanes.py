"""Fixed-order dot products across SIMD lanes, for :mod:`thermogram.kernels.snn`.

``dot_block(T, V)`` returns a compiled helper that computes, for ``T`` inputs
(rows ``t .. t + T - 1`` of ``X``) and the ``16 * V`` neurons in columns
``r0 .. r0 + 16 V - 1`` of the transposed prototype matrix ``PT`` (``PT[j, r]`` =
component ``j`` of neuron ``r``)::

    out[ob + q, r] = sum_j X[t + q, j] * PT[j, r]      (q < T, r0 <= r < r0 + 16 V)
    ni[ob + q]     = sum_j X[t + q, j] ** 2             (when ``want_ni``)

Every sum starts at +0.0 and adds the float32 products strictly in order of ``j``
(a multiply, then an add: no fused multiply-add, no ``fastmath``), so each neuron's
result is bit for bit that of the plain loop ``s = s + x[j] * p[j]``, on every machine
and for every vector width. The lanes are neurons, never partial sums of one neuron.

Why it is written as LLVM IR and not as a numba loop: the speed of a tick is that of
this loop, and numba's loop vectoriser keeps the ``16 * V`` running sums in memory (it
cannot prove that ``out`` and ``P`` do not overlap), reloading and storing them for
every ``j``, and on AVX-512 machines it prefers 256-bit vectors. Here the sums are
``T * V`` vector registers of 16 float32 lanes for the whole loop over ``j``; LLVM splits
a 16-lane vector into narrower registers on machines without 512-bit vectors, which
changes the speed, never the result. Under ``NUMBA_DISABLE_JIT=1`` the same helper is a
numpy loop with the same order of operations.
"""
from __future__ import annotations

from typing import Callable, Dict, Tuple

import numba
import numpy as np

LANES = 16
"""float32 lanes of one accumulator vector (one 512-bit register)."""

_CACHE: Dict[Tuple[int, int], Callable] = {}


def _wide_vector_registers() -> bool:
    """Whether compiled code runs with 32 vector registers of 512 bits (AVX-512F).

    That decides how many accumulators a dot block can keep in registers: with 16
    registers of 256 bits (AVX2) a block of 7 or 8 lane vectors (14-16 registers of
    running sums) spills, and the loop runs 1.4-2x slower than blocks of up to 6. The
    results are the same bits either way. Follows numba's own target settings
    (``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES``); a named CPU other than the host
    counts as narrow.
    """
    features = numba.config.CPU_FEATURES
    if features:
        return "+avx512f" in features.split(",")
    name = numba.config.CPU_NAME
    if name and name != "host":
        return False
    try:
        from llvmlite import binding
        return bool(binding.get_host_cpu_features().get("avx512f", False))
    except Exception:  # no feature map on this platform: the narrow plan is right everywhere
        return False


WIDE_VECTORS = _wide_vector_registers()
"""True on machines with 32 512-bit vector registers (see :func:`_wide_vector_registers`):
:func:`thermogram.kernels.snn.input_dots` then takes 3 inputs and up to 7-8 lane vectors
per block, else 1 input and up to 6."""


def _py_dot_block(T: int, V: int) -> Callable:
    width = LANES * V

    def dot_block(X, t, PT, r0, out, ob, ni, want_ni):
        d = X.shape[1]
        acc = np.zeros((T, width), np.float32)
        sq = np.zeros(T, np.float32)
        for j in range(d):
            p = PT[j, r0:r0 + width]
            for q in range(T):
                x = X[t + q, j]
                acc[q] = acc[q] + x * p
                sq[q] = sq[q] + x * x
        for q in range(T):
            out[ob + q, r0:r0 + width] = acc[q]
            if want_ni:
                ni[ob + q] = sq[q]

    return dot_block


def _jit_dot_block(T: int, V: int) -> Callable:
    from llvmlite import ir
    from numba import types
    from numba.core.errors import TypingError
    from numba.extending import intrinsic

    @intrinsic
    def dot_block(typingctx, X, t, PT, r0, out, ob, ni, want_ni):
        f4 = types.float32
        for a, nd in ((X, 2), (PT, 2), (out, 2), (ni, 1)):
            if not (isinstance(a, types.Array) and a.dtype == f4 and a.ndim == nd and a.layout == "C"):
                raise TypingError(f"dot_block needs C-contiguous float32 arrays, got {a}")
        for a in (t, r0, ob):
            if not isinstance(a, types.Integer):
                raise TypingError(f"dot_block needs integer offsets, got {a}")
        sig = types.none(X, t, PT, r0, out, ob, ni, want_ni)

        def codegen(context, builder, signature, args):
            aX, at, aP, ar0, aout, aob, ani, awant = args
            tys = signature.args
            X_ = context.make_array(tys[0])(context, builder, aX)
            P_ = context.make_array(tys[2])(context, builder, aP)
            O_ = context.make_array(tys[4])(context, builder, aout)
            N_ = context.make_array(tys[6])(context, builder, ani)
            i64 = ir.IntType(64)
            i8p = ir.IntType(8).as_pointer()
            f32 = ir.FloatType()
            vt = ir.VectorType(f32, LANES)
            zero_v = ir.Constant(vt, [0.0] * LANES)
            zero_f = ir.Constant(f32, 0.0)
            splat = ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES)
            undef_v = ir.Constant(vt, ir.Undefined)
            lane0 = ir.Constant(ir.IntType(32), 0)

            def cast(v, ty):
                return context.cast(builder, v, ty, types.int64)

            t_, r0_, ob_ = (cast(v, ty) for v, ty in ((at, tys[1]), (ar0, tys[3]), (aob, tys[5])))
            want = context.cast(builder, awant, tys[7], types.boolean)
            d = builder.extract_value(X_.shape, 1)
            xs0 = builder.extract_value(X_.strides, 0)
            ps0 = builder.extract_value(P_.strides, 0)
            os0 = builder.extract_value(O_.strides, 0)

            def row(arr, stride, index):
                p = builder.gep(builder.bitcast(arr.data, i8p), [builder.mul(stride, index)])
                return builder.bitcast(p, f32.as_pointer())

            xrows = [row(X_, xs0, builder.add(t_, ir.Constant(i64, q))) for q in range(T)]

            entry = builder.block
            loop = builder.append_basic_block("dot_block.loop")
            done = builder.append_basic_block("dot_block.done")
            builder.cbranch(builder.icmp_signed(">", d, ir.Constant(i64, 0)), loop, done)

            builder.position_at_end(loop)
            j = builder.phi(i64)
            j.add_incoming(ir.Constant(i64, 0), entry)
            acc = [[builder.phi(vt) for _v in range(V)] for _q in range(T)]
            sq = [builder.phi(f32) for _q in range(T)]
            for q in range(T):
                sq[q].add_incoming(zero_f, entry)
                for v in range(V):
                    acc[q][v].add_incoming(zero_v, entry)
            base = builder.gep(row(P_, ps0, j), [r0_])
            pv = [builder.load(builder.bitcast(builder.gep(base, [ir.Constant(i64, LANES * v)]),
                                               vt.as_pointer()), align=4) for v in range(V)]
            new_acc = []
            new_sq = []
            for q in range(T):
                x = builder.load(builder.gep(xrows[q], [j]), align=4)
                new_sq.append(builder.fadd(sq[q], builder.fmul(x, x)))
                xv = builder.shuffle_vector(builder.insert_element(undef_v, x, lane0), undef_v, splat)
                new_acc.append([builder.fadd(acc[q][v], builder.fmul(xv, pv[v])) for v in range(V)])
            j1 = builder.add(j, ir.Constant(i64, 1))
            tail = builder.block
            j.add_incoming(j1, tail)
            for q in range(T):
                sq[q].add_incoming(new_sq[q], tail)
                for v in range(V):
                    acc[q][v].add_incoming(new_acc[q][v], tail)
            builder.cbranch(builder.icmp_signed("<", j1, d), loop, done)

            builder.position_at_end(done)
            fin_sq = []
            fin = []
            for q in range(T):
                s_ = builder.phi(f32)
                s_.add_incoming(zero_f, entry)
                s_.add_incoming(new_sq[q], tail)
                fin_sq.append(s_)
                fin.append([])
                for v in range(V):
                    a_ = builder.phi(vt)
                    a_.add_incoming(zero_v, entry)
                    a_.add_incoming(new_acc[q][v], tail)
                    fin[q].append(a_)
            for q in range(T):
                orow = builder.gep(row(O_, os0, builder.add(ob_, ir.Constant(i64, q))), [r0_])
                for v in range(V):
                    dst = builder.gep(orow, [ir.Constant(i64, LANES * v)])
                    builder.store(fin[q][v], builder.bitcast(dst, vt.as_pointer()), align=4)
                with builder.if_then(want):
                    builder.store(fin_sq[q], builder.gep(N_.data, [builder.add(ob_, ir.Constant(i64, q))]))
            return context.get_dummy_value()

        return sig, codegen

    return dot_block


def dot_block(T: int, V: int) -> Callable:
    """The helper for ``T`` inputs and ``V`` vectors of :data:`LANES` neurons (see the module).

    Call signature (inside compiled code): ``f(X, t, PT, r0, out, ob, ni, want_ni)`` with
    C-contiguous float32 arrays ``X`` (inputs as rows, ``d`` columns), ``PT`` (``d`` rows),
    ``out`` (2-D) and ``ni`` (1-D). There is no bounds check: the caller guarantees
    ``t + T <= len(X)``, ``r0 + 16 V <= PT.shape[1]``, ``ob + T <= len(out)``,
    ``r0 + 16 V <= out.shape[1]`` and ``ob + T <= len(ni)``.
    """
    key = (T, V)
    f = _CACHE.get(key)
    if f is None:
        f = _CACHE[key] = (_py_dot_block(T, V) if numba.config.DISABLE_JIT
                           else _jit_dot_block(T, V))
    return f
