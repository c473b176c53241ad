"""Embedded SNN and neuromodulation: the whole network against the naive
re-implementation in tests/naive/snn.py, and the API's behaviour. The kernels'
own tests are in tests/kernels/test_snn.py."""
import collections

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from naive import snn as nv
from conftest import StepClock
from thermogram import DeltaType, SIGNAL, Signal, Thermogram, ValidationError
from thermogram.canonical import decode_value, encode_value
from thermogram.neuromod import NeuromodState, NeuromodSyncConfig
from thermogram.signal import signals_to_floats
from thermogram.snn import EmbeddedSNN, EmbeddedSNNConfig

F = np.float32
small = st.floats(-4, 4, width=32)
unit = st.floats(0, 1, width=32)


def f32(xs):
    return np.array(xs, dtype=F)


def small_snn(**kw):
    base = dict(num_neurons=6, input_dim=12, top_k=3, seed=5)
    base.update(kw)
    return EmbeddedSNN(clock=StepClock(), **base)


def columns(batch):
    """Comparable content of a batch (everything but ids and hashes)."""
    return (list(batch.keys), batch.types.tolist(), batch.values.tobytes(),
            batch.offsets.tolist(), batch.strengths.tobytes(), batch.timestamps.tolist())


def batch_map(batch):
    return {k: (batch.value(i).tobytes(), batch.strengths[i].tobytes())
            for i, k in enumerate(batch.keys)}


def state_equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        va, vb = a[k], b[k]
        if k in ("config", "neuromod"):  # floats: 0-d arrays (1-element after encode_value)
            assert {n: np.ravel(v).tolist() for n, v in va.items()} == \
                {n: np.ravel(v).tolist() for n, v in vb.items()}, k
        elif isinstance(va, np.ndarray):
            assert va.dtype == vb.dtype and va.shape == vb.shape and va.tobytes() == vb.tobytes(), k
        elif isinstance(va, dict):
            assert encode_value(va) == encode_value(vb), k
        else:
            assert va == vb, k


def syn_dict(idx, arr, cast=F):
    n, k = idx.shape
    return {(i, int(idx[i, s])): cast(arr[i, s]) for i in range(n) for s in range(k)}


# ----------------------------------------------------------------------------- whole network

configs = st.fixed_dictionaries({
    "num_neurons": st.integers(1, 7),
    "input_dim": st.integers(1, 9),
    "top_k": st.integers(0, 9),
    "spike_threshold": st.sampled_from([0.05, 0.2, 0.5]),
    "stdp_lr": st.sampled_from([0.01, 0.2]),
    "use_ternary": st.booleans(),
    "prototype_lr": st.sampled_from([0.0, 0.0, 0.3]),
    "decay_rate": st.sampled_from([0.001, 0.9]),
    "seed": st.integers(0, 3),
})
levels = st.tuples(unit, unit, unit, unit)


@settings(max_examples=40)
@given(configs, st.data())
def test_network_matches_naive(cfg, data):
    """Tick by tick, the kernels reach the naive network's exact state and deltas."""
    snn = EmbeddedSNN(clock=StepClock(), **cfg)
    d = cfg["input_dim"]
    base = snn.process(np.ones(d, F))  # start from a state that has seen an input
    naive = nv.NaiveSNN(snn.state())
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    centre = rng.standard_normal(d).astype(F)
    for t in range(data.draw(st.integers(1, 25))):
        kind = data.draw(st.sampled_from(["near", "near", "random", "zero"]))
        x = {"near": centre + F(0.1) * rng.standard_normal(d).astype(F),
             "random": rng.standard_normal(d).astype(F), "zero": np.zeros(d, F)}[kind].astype(F)
        nm = data.draw(levels)
        batch = snn.process(x, NeuromodState(*nm))
        wch, pch = naive.step(x, snn.neuromod.as_array())
        expect = {f"weight_{i}_{j}": c for (i, j), c in wch.items()}
        expect.update({f"proto_{r}": c for r, c in pch.items()})
        got = {k: batch.strengths[i] for i, k in enumerate(batch.keys)}
        assert set(got) == set(expect)
        for key, c in expect.items():
            s = Signal.from_signed(c)
            assert (int(got[key]["polarity"]), int(got[key]["magnitude"])) == s.to_tuple(), key
        st_ = snn.state()
        assert st_["prototypes"].tobytes() == naive.protos.tobytes()
        assert st_["traces"].tobytes() == naive.traces.tobytes()
        assert st_["firing_rates"].tobytes() == naive.rates.tobytes()
        assert st_["last_activations"].tobytes() == naive.last_act.tobytes()
        assert st_["last_spike_ms"].tolist() == naive.last_spike
        assert syn_dict(st_["indices"], st_["weights"]) == naive.syn
        assert syn_dict(st_["indices"], st_["ternary_weights"], int) == naive.tern
    assert base.source == "snn"


@pytest.mark.parametrize("ternary", [False, True])
def test_long_run_matches_naive(ternary):
    """150 ticks (homeostasis at 100, decay every 10) with spikes and learning."""
    snn = EmbeddedSNN(num_neurons=7, input_dim=10, top_k=4, spike_threshold=0.15, stdp_lr=0.05,
                      prototype_lr=0.05, use_ternary=ternary, seed=11)
    naive = nv.NaiveSNN(snn.state())
    rng = np.random.default_rng(8)
    centres = rng.standard_normal((3, 10)).astype(F)
    X = (centres[rng.integers(0, 3, 150)] + F(0.3) * rng.standard_normal((150, 10))).astype(F)
    nm = NeuromodState(0.9, 0.4, 0.6, 0.8)
    seen = 0
    for x in X:
        b = snn.process(x, nm)
        wch, pch = naive.step(x, nm.as_array())
        assert sorted(b.keys) == sorted([f"weight_{i}_{j}" for i, j in wch] + [f"proto_{r}" for r in pch])
        seen += len(wch)
    st_ = snn.state()
    assert seen > 0 and st_["tick"] == naive.tick == 150
    assert syn_dict(st_["indices"], st_["weights"]) == naive.syn
    assert st_["prototypes"].tobytes() == naive.protos.tobytes()
    assert st_["firing_rates"].tobytes() == naive.rates.tobytes()


def test_process_batch_equals_repeated_process():
    rng = np.random.default_rng(3)
    for cfg in (dict(prototype_lr=0.0), dict(prototype_lr=0.2), dict(use_ternary=True)):
        a = small_snn(spike_threshold=0.2, **cfg)
        b = small_snn(spike_threshold=0.2, **cfg)
        centre = rng.standard_normal(12).astype(F)
        X = (centre + F(0.3) * rng.standard_normal((137, 12))).astype(F)  # > one block, not a multiple of 4
        X[5] = 0
        merged = {}
        for x in X:
            merged.update(batch_map(a.process(x)))
        batch = b.process_batch(X)
        assert batch_map(batch) == merged and len(batch) == len(merged) > 0
        state_equal(a.state(), b.state())


def test_process_batch_empty_and_dtype():
    s = small_snn()
    before = s.state()
    b = s.process_batch(np.zeros((0, 12)))
    assert len(b) == 0 and s.tick == 0
    state_equal(before, s.state())
    s.process_batch(np.ones((3, 12), dtype=np.int64))
    assert s.tick == 3


# ----------------------------------------------------------------------------- API

def test_config_defaults_match_reference():
    c = EmbeddedSNNConfig()
    assert (c.num_neurons, c.input_dim, c.top_k, c.stdp_lr, c.homeostasis_target,
            c.competition_strength, c.decay_rate, c.trace_decay, c.spike_threshold,
            c.use_ternary, c.ternary_threshold) == (100, 2048, 10, 0.01, 0.1, 0.5, 0.001, 0.1,
                                                     0.5, False, 0.3)
    assert c.prototype_lr == 0.0 and c.seed == 0
    assert EmbeddedSNNConfig.ternary().use_ternary
    assert EmbeddedSNNConfig.ternary(num_neurons=5).num_neurons == 5
    assert EmbeddedSNNConfig.from_dict(c.to_dict()) == c
    assert EmbeddedSNNConfig.from_dict(decode_value(encode_value(c.to_state()))) == c


@pytest.mark.parametrize("bad", [dict(num_neurons=0), dict(input_dim=0), dict(top_k=-1),
                                 dict(stdp_lr=float("nan")), dict(competition_strength=2.0),
                                 dict(trace_decay=-0.1), dict(seed=-1), dict(num_neurons=2.5),
                                 dict(use_ternary=1), dict(decay_rate=float("inf")),
                                 dict(spike_threshold="0.5"), dict(num_neurons=True)])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValidationError):
        EmbeddedSNNConfig(**bad)


def test_initial_state_follows_reference():
    s = EmbeddedSNN(num_neurons=5, input_dim=7, top_k=2, seed=9)
    assert s.prototypes.shape == (5, 7) and s.prototypes.dtype == F
    assert (np.abs(s.prototypes) <= 0.05).all()
    assert s.indices.tolist() == [[1, 2], [2, 3], [3, 4], [4, 0], [0, 1]]
    assert (s.weights == F(0.1)).all() and (s.ternary_weights == 0).all()
    assert (s.last_spike_ms == -1).all() and s.tick == 0
    assert s.neuromod == NeuromodState.baseline()
    with pytest.raises(ValueError):
        s.weights[0, 0] = 1  # read-only views
    assert s.weight(0, 1) == pytest.approx(0.1) and s.weight(0, 4) is None
    with pytest.raises(ValidationError):
        s.weight(0, 5)
    assert (s.quantized_weights() == 0).all() and (s.quantized_weights(0.1) == 1).all()
    s.neuromod = NeuromodState(dopamine=0.2)
    assert s.neuromod.dopamine == pytest.approx(0.2)
    with pytest.raises(ValidationError):
        s.neuromod = 0.3
    with pytest.raises(ValidationError):
        EmbeddedSNN(bogus=1)
    with pytest.raises(ValidationError):
        EmbeddedSNN(config={"num_neurons": 3})


def test_same_seed_same_deltas_other_seed_other_network():
    rng = np.random.default_rng(0)
    X = (rng.standard_normal(12) + F(0.2) * rng.standard_normal((40, 12))).astype(F)
    runs = []
    for seed in (5, 5, 6):
        s = small_snn(seed=seed, spike_threshold=0.1, prototype_lr=0.1)
        runs.append([columns(s.process(x)) for x in X])
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    assert small_snn(seed=1).prototypes.tobytes() != small_snn(seed=2).prototypes.tobytes()


def primed(**kw):
    """An SNN whose first three prototypes point along the all-ones input and the
    others orthogonal to it."""
    cfg = dict(num_neurons=6, input_dim=12, top_k=5, spike_threshold=0.3, stdp_lr=0.1)
    cfg.update(kw)
    s = EmbeddedSNN(clock=StepClock(), **cfg)
    st_ = s.state()
    st_["prototypes"][:3] = F(0.01)
    st_["prototypes"][3:] = np.resize(f32([0.01, -0.01]), 12)
    return EmbeddedSNN.restore(st_, clock=StepClock())


def test_deltas_apply_to_a_capsule():
    s = primed()
    batch = s.process(np.ones(12), NeuromodState(dopamine=1.0))
    assert len(batch) == 6 and set(batch.types.tolist()) == {int(DeltaType.UPDATE)}
    assert batch.source == "snn"
    assert sorted(batch.keys) == sorted(f"weight_{i}_{j}" for i in range(3) for j in range(3) if i != j)
    for i, key in enumerate(batch.keys):
        assert batch.value(i).tolist() == [Signal.from_signed(F(0.2)).to_tuple()]
        assert batch.strengths[i]["polarity"] == 1 and batch.strengths[i]["magnitude"] > 150
    cap = Thermogram("memory", clock=StepClock())
    cap.apply_batch(batch)
    cap.apply_batch(s.process(np.ones(12)))
    assert cap.read("weight_0_1").tolist() == [Signal.from_signed(s.weight(0, 1)).to_tuple()]
    assert s.weight(0, 1) == pytest.approx(0.3) and s.weight(3, 4) == pytest.approx(0.1)  # dopamine kept
    cap.consolidate()
    assert "weight_2_0" in cap.keys()


def test_prototype_deltas_are_scaled_rows():
    s = small_snn(prototype_lr=0.5)
    x = np.linspace(-3, 5, 12).astype(F)
    batch = s.process(x)
    protos = [k for k in batch.keys if k.startswith("proto_")]
    assert len(protos) == 1
    r = int(protos[0].split("_")[1])
    row = s.prototypes[r]
    got = signals_to_floats(batch.value(batch.keys.index(protos[0])))
    assert np.abs(got).max() == 1.0
    np.testing.assert_allclose(got, row / np.abs(row).max(), atol=1 / 255 + 1e-6)
    assert int(np.argmax(s.last_activations)) == r


def test_decay_prunes_once_with_zero_update():
    s = small_snn(decay_rate=1.0)
    st_ = s.state()
    st_["weights"][:] = F(0.015)
    s = EmbeddedSNN.restore(st_, clock=StepClock())
    zero = np.zeros(12, F)
    batches = [s.process(zero, NeuromodState(serotonin=0.0)) for _ in range(20)]
    sizes = [len(b) for b in batches]
    assert sizes[9] == 6 * 3 and sum(sizes) == 18  # tick 10 only; nothing again at tick 20
    b = batches[9]
    assert set(b.values.tobytes()) == {0} and set(b.strengths.tobytes()) == {0}
    assert (s.weights == 0).all()


def test_homeostasis_every_100_ticks():
    s = small_snn(decay_rate=0.0)
    zero = np.zeros(12, F)
    s.process_batch(np.zeros((99, 12), F))
    assert (s.weights == F(0.1)).all()
    s.process(zero)  # tick 100: rates are 0, so weights grow by (1 + 0.1 * 0.005)
    assert (s.weights == F(0.1) * (F(1) + F(0.1) * (F(0.01) * F(0.5)))).all()


def test_ternary_mode_uses_spike_timing():
    s = primed(use_ternary=True, top_k=5)
    ones = np.ones(12, F)
    # neuron 0 alone first: make 1 and 2 silent by pointing them elsewhere
    st_ = s.state()
    st_["prototypes"][1:3] = -F(0.01)
    s1 = EmbeddedSNN.restore(st_)
    s1.process(ones)  # only neuron 0 spikes (tick 1)
    assert s1.last_spike_ms.tolist()[:3] == [100, -1, -1]
    st_ = s1.state()
    st_["prototypes"][1:3] = F(0.01)
    s2 = EmbeddedSNN.restore(st_)
    b = s2.process(ones)  # 0, 1, 2 spike together; 0 fired before
    m = batch_map(b)
    assert s2.ternary_weights[0, 0] == 1 and s2.ternary_weights[0, 1] == 1  # 0->1, 0->2 strengthen
    assert s2.ternary_weights[1, 4] == -1 and s2.ternary_weights[2, 3] == -1  # 1->0, 2->0 weaken
    assert s2.ternary_weights[1, 0] == 0  # 1->2 simultaneous: stays 0
    assert m["weight_0_1"][0] == np.array([(1, 255)], SIGNAL).tobytes()
    assert m["weight_1_0"][0] == np.array([(-1, 255)], SIGNAL).tobytes()
    assert s2.weight(1, 0) == 1.0 and s2.weight(0, 1) == 1.0  # float weight = |ternary|
    # high decay returns ternary weights to zero (on decay ticks only)
    st_ = s2.state()
    st_["config"]["decay_rate"] = np.array(0.9)
    s3 = EmbeddedSNN.restore(st_, clock=StepClock())
    calm = NeuromodState(serotonin=0.0)
    assert len(s3.process_batch(np.zeros((7, 12), F), calm)) == 0 and s3.tick == 9
    b = s3.process(np.zeros(12, F), calm)  # tick 10
    assert len(b) == 4 and (s3.ternary_weights == 0).all() and (s3.weights[:3] == 0).any()
    assert set(b.values.tobytes()) == {0}


# ----------------------------------------------------------------------------- validation

@pytest.mark.parametrize("bad", [np.ones(11), np.ones((1, 12)), np.array(["a"] * 12),
                                 np.ones(12, complex), [1.0] * 13, "not an array",
                                 np.array([object()] * 12), np.ones(12) * np.nan,
                                 np.r_[np.ones(11), np.inf], np.r_[np.ones(11), 1e300],
                                 [[1.0, 2.0], [3.0]],
                                 # float32, C-contiguous: the one-call path of process()
                                 np.r_[np.ones(11), np.nan].astype(F), np.r_[-np.inf, np.ones(11)].astype(F)])
def test_process_rejects_bad_input_and_changes_nothing(bad):
    s = small_snn(prototype_lr=0.3)
    s.process(np.ones(12))
    before = s.state()
    nm = s.neuromod.copy()
    with pytest.raises(ValidationError):
        s.process(bad, NeuromodState(dopamine=0.0))
    state_equal(before, s.state())
    assert s.neuromod == nm


def test_process_batch_rejects_bad_rows_and_changes_nothing():
    s = small_snn()
    X = np.ones((10, 12), F)
    X[7, 3] = np.nan
    before = s.state()
    with pytest.raises(ValidationError, match="row 7, column 3"):
        s.process_batch(X)
    for bad in (np.ones(12), np.ones((3, 11)), np.ones((2, 3, 12))):
        with pytest.raises(ValidationError):
            s.process_batch(bad)
    with pytest.raises(ValidationError):
        s.process(np.ones(12), neuromod="calm")
    state_equal(before, s.state())


@settings(max_examples=20)
@given(configs, st.data())
def test_one_call_path_and_general_path_agree(cfg, data):
    """process() of a float32 C-contiguous row with the default clock (validation and tick in one
    kernel call) and of the same values as float64 with an injected clock (validated, converted,
    then ticked) give the same deltas and state, also for inputs that are scaled, all zero, or
    rejected, and with neuromodulators given (timestamps aside: one is the wall clock)."""
    d = cfg["input_dim"]
    a, b = EmbeddedSNN(**cfg), EmbeddedSNN(clock=StepClock(), **cfg)  # default clock: the one-call path
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    centre = rng.standard_normal(d)
    for step in range(12):
        x = (centre + 0.3 * rng.standard_normal(d)).astype(F)
        kind = data.draw(st.sampled_from(["plain", "plain", "huge", "tiny", "zero", "nan"]))
        if kind == "huge":
            x *= F(2.0 ** 110)
        elif kind == "tiny":
            x *= F(2.0 ** -100)
        elif kind == "zero":
            x[:] = 0
        elif kind == "nan":
            x[rng.integers(d)] = np.nan
        nm = NeuromodState(*data.draw(levels)) if step % 3 == 0 else None
        if kind == "nan":
            for s_, v in ((a, x), (b, x.astype(np.float64))):
                with pytest.raises(ValidationError):
                    s_.process(v, nm)
            continue
        assert columns(a.process(x, nm))[:5] == columns(b.process(x.astype(np.float64), nm))[:5]
    state_equal(a.state(), b.state())


def test_prototypes_are_padded_to_whole_lane_vectors_but_read_as_num_neurons():
    s = EmbeddedSNN(num_neurons=20, input_dim=8, seed=3, clock=StepClock())
    assert s.prototypes.shape == (20, 8) and s.state()["prototypes"].shape == (20, 8)
    assert s._PTpad.shape == (8, 32) and not s._PTpad[:, 20:].any()
    assert s._PTpad.ctypes.data % 64 == 0
    again = EmbeddedSNN.restore(s.state(), clock=StepClock())
    assert again._PTpad.shape == (8, 32) and again._PTpad.ctypes.data % 64 == 0
    x = np.linspace(-1, 1, 8).astype(F)
    assert columns(s.process(x)) == columns(again.process(x))
    assert not s._PTpad[:, 20:].any()


def test_huge_and_tiny_inputs_are_scaled():
    a, b, c = small_snn(prototype_lr=0.2), small_snn(prototype_lr=0.2), small_snn(prototype_lr=0.2)
    x = np.linspace(-1, 1, 12).astype(F)
    a.process(x)
    b.process(x * F(2.0 ** 120))
    c.process(x * F(2.0 ** -100))
    assert a.last_activations.tobytes() == b.last_activations.tobytes() == c.last_activations.tobytes()
    assert np.isfinite(b.prototypes).all()


# ----------------------------------------------------------------------------- edge cases

def test_zero_input():
    s = small_snn(spike_threshold=0.0)
    s.process(np.ones(12))
    tr = s.traces.copy()
    b = s.process(np.zeros(12))
    assert len(b) == 0 and s.tick == 2
    assert (s.last_activations == 0).all()
    assert (s.traces == tr * F(0.9)).all()


def test_extreme_neuromodulation():
    X = np.ones((30, 12), F)
    off = primed()
    b = off.process_batch(X, NeuromodState(0.0, 0.0, 0.0, 0.0))
    # no dopamine: no STDP; no acetylcholine: no spreading; no norepinephrine: no competition;
    # no serotonin: full decay (weights 0.1 shrink by 0.001 every 10 ticks), no homeostasis
    assert len(b) == 0
    assert (off.weights == F(0.1) * F(1 - F(0.001)) ** 3).all()
    assert off.last_activations[:3].tolist() == pytest.approx([1.0, 1.0, 1.0])
    on = primed()
    b = on.process_batch(X, NeuromodState(1.0, 1.0, 1.0, 1.0))
    # full dopamine: 0.1 per co-spike until 1.0; full serotonin: no decay
    assert on.weight(0, 1) == 1.0 and on.weight(1, 0) == 1.0 and on.weight(3, 4) == F(0.1)
    assert len(b) == 6
    assert on.last_activations[0] > 1.0  # spreading added activation to the winner


def test_single_neuron():
    s = EmbeddedSNN(num_neurons=1, input_dim=4, top_k=10, prototype_lr=0.5, spike_threshold=0.2)
    assert s.connections == 0 and s.indices.shape == (1, 0)
    x = np.array([1.0, 2.0, 3.0, 4.0])
    st_ = s.state()
    st_["prototypes"][0] = F(0.01)
    s = EmbeddedSNN.restore(st_)
    b = s.process(x)
    assert list(b.keys) == ["proto_0"] and s.firing_rates[0] == F(0.1)
    assert s.last_activations[0] == pytest.approx(10 / (30 ** 0.5 * 2))
    s.process_batch(np.tile(x, (50, 1)))
    assert s.last_activations[0] == pytest.approx(1.0)


def test_top_k_at_least_num_neurons():
    s = EmbeddedSNN(num_neurons=4, input_dim=3, top_k=10)
    assert s.connections == 3 and s.config.top_k == 10
    assert s.indices.tolist() == [[1, 2, 3], [2, 3, 0], [3, 0, 1], [0, 1, 2]]
    s.process_batch(np.ones((20, 3)))


# ----------------------------------------------------------------------------- state

def test_state_round_trips_through_canonical_encoding():
    s = small_snn(prototype_lr=0.1, spike_threshold=0.1)
    rng = np.random.default_rng(4)
    X = (rng.standard_normal(12) + F(0.2) * rng.standard_normal((30, 12))).astype(F)
    s.process_batch(X[:15], NeuromodState(0.9, 0.2, 0.7, 0.4))
    st_ = s.state()
    decoded = decode_value(encode_value(st_))
    state_equal(st_, decoded)
    r = EmbeddedSNN.restore(decoded, clock=StepClock())
    state_equal(st_, r.state())
    # the same deltas (timestamps aside: the two clocks differ)
    assert [columns(s.process(x))[:5] for x in X[15:]] == [columns(r.process(x))[:5] for x in X[15:]]
    assert r.neuromod == NeuromodState(0.9, 0.2, 0.7, 0.4)


@pytest.mark.parametrize("change", [
    lambda d: d.pop("weights"), lambda d: d.update(engine_type="Other"),
    lambda d: d.update(format=2), lambda d: d.update(tick=-1),
    lambda d: d.update(prototypes=d["prototypes"][:, :5]),
    lambda d: d.update(weights=d["weights"].astype(np.float64)),
    lambda d: d["indices"].__setitem__((0, 0), 0), lambda d: d["indices"].__setitem__((0, 0), 99),
    lambda d: d["ternary_weights"].__setitem__((0, 0), 2),
    lambda d: d["traces"].__setitem__(0, np.nan), lambda d: d.update(rng={"bit_generator": "X"}),
    lambda d: d["config"].update(bogus=1), lambda d: d.update(neuromod={}), lambda d: d.update(traces=[0.0] * 6),
])
def test_restore_rejects_bad_state(change):
    st_ = small_snn().state()
    change(st_)
    with pytest.raises(ValidationError):
        EmbeddedSNN.restore(st_)


def test_repr_and_html():
    s = small_snn()
    s.process(np.ones(12))
    r = repr(s)
    assert "neurons=6" in r and "tick=1" in r and "dopamine" in r
    h = s._repr_html_()
    assert "6 neurons" in h and "tick 1" in h and "rate mean" in h and "dop" in h
    assert "dopamine" in NeuromodState()._repr_html_() and "NeuromodSyncConfig" in repr(NeuromodSyncConfig())


# ----------------------------------------------------------------------------- neuromodulation

def test_neuromod_changes_clamp():
    s = NeuromodState.baseline()
    assert s.to_dict() == dict.fromkeys(["dopamine", "serotonin", "norepinephrine", "acetylcholine"], 0.5)
    s.reward(0.3)
    assert s.dopamine == float(F(0.5) + F(0.3))
    s.reward(5)
    assert s.dopamine == 1.0
    s.stress(0.2)
    assert s.serotonin == float(F(0.5) - F(0.2)) and s.norepinephrine == float(F(0.5) + F(0.2))
    s.stress(-9)
    assert (s.serotonin, s.norepinephrine) == (1.0, 0.0)
    s.focus(-3)
    assert s.acetylcholine == 0.0
    s.decay(0.5)
    assert s.to_dict() == {"dopamine": 0.75, "serotonin": 0.75, "norepinephrine": 0.25, "acetylcholine": 0.25}
    s.decay(1.0)
    assert s == NeuromodState.baseline()
    assert NeuromodState(dopamine=7, serotonin=-1).as_array().tolist() == [1.0, 0.0, 0.5, 0.5]
    s.dopamine = 2
    assert s.dopamine == 1.0
    for bad in (float("nan"), float("inf"), "0.1", None, True):
        with pytest.raises(ValidationError):
            NeuromodState(dopamine=bad)
        with pytest.raises(ValidationError):
            s.reward(bad)
    c = s.copy()
    c.reward(-1)
    assert s.dopamine == 1.0 and c.dopamine == 0.0


def test_sync_configs():
    assert NeuromodSyncConfig().to_dict() == {"enabled": True, "sync_rate": pytest.approx(0.1), "sync_interval_ms": 100}
    assert NeuromodSyncConfig.independent().to_dict() == {"enabled": False, "sync_rate": 0.0, "sync_interval_ms": 0}
    assert NeuromodSyncConfig.full_sync().to_dict() == {"enabled": True, "sync_rate": 1.0, "sync_interval_ms": 50}
    ext = NeuromodState(dopamine=1.0)
    local = NeuromodState()
    assert NeuromodSyncConfig.independent().apply_sync(local, ext) is False and local.dopamine == 0.5
    local = NeuromodState()
    assert NeuromodSyncConfig.full_sync().apply_sync(local, ext) is True and local == ext
    for bad in (dict(sync_rate=1.5), dict(sync_interval_ms=-1), dict(enabled="yes"), dict(clock=3)):
        with pytest.raises(ValidationError):
            NeuromodSyncConfig(**bad)


def test_apply_sync_honours_interval():
    now = [0]
    sync = NeuromodSyncConfig.default(clock=lambda: now[0])
    ext = NeuromodState(dopamine=1.0)
    local, other = NeuromodState(), NeuromodState()
    assert sync.apply_sync(local, ext)
    assert local.dopamine == float(F(0.5) + (F(1.0) - F(0.5)) * F(0.1))
    now[0] = 99_999_999  # 99.999999 ms later: too soon
    assert not sync.apply_sync(local, ext)
    assert sync.apply_sync(other, ext)  # the interval is per local state
    now[0] = 100_000_000
    assert sync.apply_sync(local, ext) and local.dopamine > 0.55
    zero = NeuromodSyncConfig(True, 0.5, 0, clock=lambda: 0)
    assert zero.apply_sync(local, ext) and zero.apply_sync(local, ext)
    bad = NeuromodSyncConfig.default(clock=lambda: 1.5)
    with pytest.raises(ValidationError):
        bad.apply_sync(NeuromodState(), ext)


def test_sync_neuromod_on_the_network():
    s = small_snn()
    ext = NeuromodState(dopamine=0.9, acetylcholine=0.1)
    assert s.sync_neuromod(ext) and s.neuromod == ext
    ext.reward(-1)
    assert s.neuromod.dopamine == pytest.approx(0.9)  # a copy was taken
    now = [0]
    sync = NeuromodSyncConfig(True, 0.5, 100, clock=lambda: now[0])
    assert s.sync_neuromod(NeuromodState(), sync)
    assert s.neuromod.dopamine == pytest.approx(0.7)
    assert not s.sync_neuromod(NeuromodState(), sync)
    s.process(np.ones(12))  # None keeps the synced levels
    assert s.neuromod.dopamine == pytest.approx(0.7)


# ----------------------------------------------------------------------------- clustering

def test_clusters_are_captured_and_co_active_neurons_bind():
    """Four well-separated clusters plus noise, then a stream where clusters 0 and 1
    often appear together: each cluster gets its own prototype (purity >= 0.9) and the
    neurons that fire together end with the strongest mutual weights."""
    rng = np.random.default_rng(7)
    d, k = 32, 4
    q, _ = np.linalg.qr(rng.standard_normal((d, k)))
    centres = (3 * q.T).astype(F)

    def sample(c):
        return (centres[c] + F(0.25) * rng.standard_normal(d)).astype(F)

    s = EmbeddedSNN(num_neurons=8, input_dim=d, top_k=7, prototype_lr=0.1, seed=3)
    s.process_batch(np.stack([sample(c) for c in rng.integers(0, k, 400)]))
    together = np.zeros((8, 8), int)
    for step in range(300):
        x = (sample(0) + sample(1)) / 2 if step % 3 == 0 else sample(int(rng.integers(0, k)))
        s.process(x)
        spiking = s.last_activations > s.config.spike_threshold
        together += np.outer(spiking, spiking)

    labels = np.repeat(np.arange(k), 50)
    X = np.stack([sample(c) for c in labels])
    P = s.prototypes
    cos = (X @ P.T) / (np.linalg.norm(X, axis=1)[:, None] * np.linalg.norm(P, axis=1)[None])
    winner = cos.argmax(axis=1)
    majority = {r: collections.Counter(labels[winner == r]).most_common(1)[0]
                for r in np.unique(winner)}
    purity = sum(c for _, c in majority.values()) / len(labels)
    assert purity >= 0.9
    owner = {c: collections.Counter(winner[labels == c]).most_common(1)[0][0] for c in range(k)}
    assert len(set(owner.values())) == k  # every cluster has its own prototype

    np.fill_diagonal(together, 0)
    pairs = {(i, int(j)) for i in range(8) for j in s.indices[i]}
    co = [(i, j) for i, j in pairs if together[i, j] > 0]
    rest = [(i, j) for i, j in pairs if together[i, j] == 0]
    assert {owner[0], owner[1]} <= {i for i, _ in co}
    assert min(s.weight(i, j) for i, j in co) > max(s.weight(i, j) for i, j in rest)
    assert s.weight(owner[0], owner[1]) > 0.5 and s.weight(owner[1], owner[0]) > 0.5


def test_snn_state_is_saved_inside_a_thermo_v2_capsule(tmp_path):
    from thermogram import ConsolidationPolicy, EmbeddedSNN, EmbeddedSNNConfig, NeuromodState, Thermogram
    cfg = EmbeddedSNNConfig(num_neurons=12, input_dim=32, top_k=4, seed=3, prototype_lr=0.05)
    snn = EmbeddedSNN(cfg)
    t = Thermogram("with-snn", policy=ConsolidationPolicy.manual_only())
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 32)).astype(np.float32)
    t.apply_batch(snn.process_batch(X, NeuromodState.baseline()))
    t.extensions["snn"] = snn.state()
    p = tmp_path / "c.thermo"
    t.save(p)
    u = Thermogram.load(p)
    again = EmbeddedSNN.restore(u.extensions["snn"])
    x = rng.normal(size=32).astype(np.float32)
    a, b = snn.process(x), again.process(x)
    assert a.keys == b.keys and np.array_equal(a.values, b.values) and np.array_equal(a.strengths, b.strengths)
