"""Garbage in, a Python exception out: the public functions and the model methods meet
wrong ranks, zero sizes, mixed dtypes, non-arrays, broadcast and read-only arrays,
tampered caches and sizes whose byte count overflows. Each call either succeeds (and
the result has the documented shapes) or raises the documented exception type
(TypeError for a non-array or a wrong dtype, ValueError for a shape, a layout or a size,
MemoryError for a size the machine cannot hold) -- never a crash.

Huge sizes run in a child process under an address-space limit (RLIMIT_AS) and a
timeout: they must be refused before the memory is touched, not by the OOM killer.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastrnn
from fastrnn import models

settings.register_profile(
    "fastrnn-fuzz",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=300,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROFILE = settings.get_profile("fastrnn-fuzz")

B, T, I, H = 3, 4, 5, 6
F32 = np.float32


def lstm_args(dtype=F32):
    rng = np.random.default_rng(7)

    def r(*s):
        return (rng.standard_normal(s) * 0.5).astype(dtype)

    return dict(x=r(B, T, I), h0=r(B, H), c0=r(B, H), w_ih=r(4 * H, I), w_hh=r(4 * H, H),
                b=r(4 * H), peephole=r(3, H))


def rnn_args(dtype=F32):
    a = lstm_args(dtype)
    return dict(x=a["x"], h0=a["h0"], w_ih=a["w_ih"][:H].copy(), w_hh=a["w_hh"][:H].copy(),
                b=a["b"][:H].copy())


REQUIRED = {"x", "w_ih", "w_hh", "b"}
OK = "ok"


# ---- a catalogue of garbage, each with the outcome the contract documents ---------------


def misaligned(a):
    raw = np.zeros(a.nbytes + 1, np.uint8)[1:]
    v = raw.view(a.dtype).reshape(a.shape)
    v[...] = a
    return v


def garbage_for(name, good):
    """(label, value, expected) for one argument; expected is OK, TypeError or ValueError."""
    optional = name not in REQUIRED
    out = [
        ("None", None, OK if optional else TypeError),
        ("int", 3, TypeError),
        ("float", 1.5, TypeError),
        ("str", "abc", TypeError),
        ("bytes", b"\x00" * 16, TypeError),
        ("dict", {"a": good}, TypeError),
        ("list", good.tolist(), TypeError),
        ("tuple", tuple(good.ravel().tolist()), TypeError),
        ("object", object(), TypeError),
        ("numpy-scalar", good.dtype.type(1.0), TypeError),
        ("memoryview", memoryview(good.copy()), TypeError),
        ("0-d", np.array(1.0, good.dtype), ValueError),
        ("rank+1", good[..., None], ValueError),
        ("rank-1", good.reshape(-1) if good.ndim > 1 else good.reshape(1, -1), ValueError),
        ("zero-size", np.zeros((0,) + good.shape[1:], good.dtype), ValueError),
        ("int64", good.astype(np.int64), TypeError),
        ("float16", good.astype(np.float16), TypeError),
        ("complex", good.astype(np.complex64), TypeError),
        ("bool", good.astype(bool), TypeError),
        ("object-dtype", good.astype(object), TypeError),
        ("str-dtype", good.astype(str), TypeError),
        ("structured", np.zeros(good.shape, [("a", good.dtype)]), TypeError),
        ("datetime", np.zeros(good.shape, "datetime64[s]"), TypeError),
        ("byteswapped", good.astype(good.dtype.newbyteorder()), TypeError),
        ("other-float", good.astype(np.float64 if good.dtype == F32 else F32),
         TypeError),
        ("misaligned", misaligned(good), ValueError),
        ("read-only", _read_only(good), OK),
        ("masked", np.ma.masked_array(good, mask=np.zeros(good.shape, bool)), OK),
        ("too-big", np.zeros(tuple(s + 1 for s in good.shape), good.dtype), ValueError),
    ]
    if good.ndim >= 2:
        # Weights must be C-contiguous; x may be any view; states need unit last stride.
        fortran = np.asfortranarray(good)
        col_bcast = np.broadcast_to(good[..., :1], good.shape)
        row_bcast = np.broadcast_to(good[:1], good.shape)
        if name == "x":
            out += [("fortran", fortran, OK), ("bcast-last", col_bcast, OK),
                    ("bcast-first", row_bcast, OK), ("reversed", good[::-1, ::-1, ::-1], OK)]
        elif name in ("h0", "c0", "dh_n", "dc_n", "dh_seq"):
            out += [("fortran", fortran, ValueError), ("bcast-last", col_bcast, ValueError),
                    ("bcast-first", row_bcast, OK), ("reversed-rows", good[::-1], OK),
                    ("reversed-cols", good[..., ::-1], ValueError)]
        else:
            out += [("fortran", fortran, ValueError), ("bcast-last", col_bcast, ValueError),
                    ("bcast-first", row_bcast, ValueError), ("reversed", good[::-1], ValueError)]
    else:
        out += [("strided", np.repeat(good, 2)[::2], ValueError),
                ("bcast", np.broadcast_to(good[:1], good.shape), ValueError)]
    return out


def _read_only(a):
    a = a.copy()
    a.setflags(write=False)
    return a


def expect(expected, fn, *args, **kw):
    if expected is OK:
        return fn(*args, **kw)
    with pytest.raises(expected):
        fn(*args, **kw)
    return None


def single_cases(make):
    good = make()
    for name in good:
        for label, value, expected in garbage_for(name, good[name]):
            yield pytest.param(name, label, expected, id=f"{name}-{label}")


@pytest.mark.parametrize("name, label, expected", list(single_cases(lstm_args)))
@pytest.mark.parametrize("training", [False, True], ids=["infer", "train"])
def test_lstm_forward_one_bad_argument(name, label, expected, training):
    args = lstm_args()
    args[name] = {lab: v for lab, v, _ in garbage_for(name, args[name])}[label]
    out = expect(expected, fastrnn.lstm_forward, **args, training=training)
    if out is not None:
        assert out.h_seq.shape == (B, T, H) and out.h_n.shape == out.c_n.shape == (B, H)
        if training:
            g = fastrnn.lstm_backward(np.ones_like(out.h_seq), None, None, out.cache)
            assert g.dx.shape == (B, T, I) and np.isfinite(g.dw_hh).all()


@pytest.mark.parametrize("name, label, expected", list(single_cases(rnn_args)))
@pytest.mark.parametrize("training", [False, True], ids=["infer", "train"])
def test_rnn_forward_one_bad_argument(name, label, expected, training):
    args = rnn_args()
    args[name] = {lab: v for lab, v, _ in garbage_for(name, args[name])}[label]
    out = expect(expected, fastrnn.rnn_forward, **args, training=training)
    if out is not None:
        assert out.h_seq.shape == (B, T, H) and out.h_n.shape == (B, H)
        if training:
            g = fastrnn.rnn_backward(np.ones_like(out.h_seq), None, out.cache)
            assert g.dx.shape == (B, T, I)


def lstm_grads():
    rng = np.random.default_rng(8)
    return dict(dh_seq=rng.standard_normal((B, T, H)).astype(F32),
                dh_n=rng.standard_normal((B, H)).astype(F32),
                dc_n=rng.standard_normal((B, H)).astype(F32))


def grad_cases(names):
    good = lstm_grads()
    for name in names:
        for label, value, expected in garbage_for(name, good[name]):
            if name == "dh_seq" and label == "None":
                expected = OK
            yield pytest.param(name, label, expected, id=f"{name}-{label}")


@pytest.mark.parametrize("name, label, expected", list(grad_cases(["dh_seq", "dh_n", "dc_n"])))
def test_lstm_backward_one_bad_gradient(name, label, expected):
    out = fastrnn.lstm_forward(**lstm_args(), training=True)
    grads = lstm_grads()
    grads[name] = {lab: v for lab, v, _ in garbage_for(name, grads[name])}[label]
    if label == "None":
        expected = OK  # every output gradient may be None (zero)
    g = expect(expected, fastrnn.lstm_backward, grads["dh_seq"], grads["dh_n"], grads["dc_n"],
               out.cache)
    if g is not None:
        assert g.dx.shape == (B, T, I) and g.dpeephole.shape == (3, H)


@pytest.mark.parametrize("name, label, expected", list(grad_cases(["dh_seq", "dh_n"])))
def test_rnn_backward_one_bad_gradient(name, label, expected):
    out = fastrnn.rnn_forward(**rnn_args(), training=True)
    grads = lstm_grads()
    grads[name] = {lab: v for lab, v, _ in garbage_for(name, grads[name])}[label]
    if label == "None":
        expected = OK
    g = expect(expected, fastrnn.rnn_backward, grads["dh_seq"], grads["dh_n"], out.cache)
    if g is not None:
        assert g.dx.shape == (B, T, I) and g.db.shape == (H,)


# ---- tampered caches ------------------------------------------------------------------


def cache_field_cases(kind):
    if kind == "lstm":
        cache = fastrnn.lstm_forward(**lstm_args(), training=True).cache
    else:
        cache = fastrnn.rnn_forward(**rnn_args(), training=True).cache
    for f in dataclasses.fields(cache):
        good = getattr(cache, f.name)
        if isinstance(good, np.ndarray):
            for label, _, _ in garbage_for(f.name, good):
                yield pytest.param(kind, f.name, label, id=f"{kind}-{f.name}-{label}")
        for label in ("None", "str", "int", "flip"):
            yield pytest.param(kind, f.name, label, id=f"{kind}-{f.name}-{label}")


def _tampered_value(field, good, label):
    if isinstance(good, np.ndarray):
        table = {lab: v for lab, v, _ in garbage_for(field, good)}
        if label in table:
            return table[label]
    return {"None": None, "str": "relu" if isinstance(good, str) else "abc", "int": 7,
            "flip": (not good) if isinstance(good, bool) else good}[label]


@pytest.mark.parametrize(
    "kind, field, label", [*cache_field_cases("lstm"), *cache_field_cases("rnn")]
)
def test_tampered_cache_never_crashes(kind, field, label):
    """Any field of a cache replaced by garbage: a result of the documented shapes, or a
    TypeError / ValueError."""
    if kind == "lstm":
        out = fastrnn.lstm_forward(**lstm_args(), training=True)
        call = fastrnn.lstm_backward
        grads = (np.ones_like(out.h_seq), None, None)
    else:
        out = fastrnn.rnn_forward(**rnn_args(), training=True)
        call = fastrnn.rnn_backward
        grads = (np.ones_like(out.h_seq), None)
    cache = dataclasses.replace(out.cache, **{field: _tampered_value(
        field, getattr(out.cache, field), label)})
    try:
        g = call(*grads, cache)
    except (TypeError, ValueError):
        return
    assert g.dx.ndim == 3 and g.dh0.shape == (B, H)


@pytest.mark.parametrize("bad", [None, 0, "cache", {}, [], object(), (1, 2)])
def test_backward_with_a_non_cache(bad):
    for call, n in ((fastrnn.lstm_backward, 3), (fastrnn.rnn_backward, 2)):
        with pytest.raises(ValueError if bad is None else TypeError):
            call(*([None] * n), bad)


def test_backward_with_the_other_cells_cache():
    lc = fastrnn.lstm_forward(**lstm_args(), training=True).cache
    rc = fastrnn.rnn_forward(**rnn_args(), training=True).cache
    with pytest.raises(TypeError):
        fastrnn.rnn_backward(None, None, lc)
    with pytest.raises(TypeError):
        fastrnn.lstm_backward(None, None, None, rc)


@pytest.mark.parametrize("bad", [None, 3, [1], "tanh ", "TANH", "", "sigmoid"])
def test_rnn_bad_nonlinearity(bad):
    # functional.py passes str(nonlinearity) on; only "tanh" and "relu" are accepted.
    with pytest.raises(ValueError, match="nonlinearity"):
        fastrnn.rnn_forward(**rnn_args(), nonlinearity=bad)


# ---- random combinations --------------------------------------------------------------


def _garbage_strategy(name, good):
    # Draw an index, not the value: hypothesis hashes sampled elements (memoryviews can't).
    table = [(label, value) for label, value, _ in garbage_for(name, good)]
    return st.integers(0, len(table) - 1).map(lambda k: table[k])


@st.composite
def mutated_calls(draw, make):
    args = make()
    names = sorted(args)
    chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=4, unique=True))
    labels = {}
    for name in chosen:
        label, value = draw(_garbage_strategy(name, args[name]))
        args[name] = value
        labels[name] = label
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    if dtype == np.float64:  # the same garbage on a float64 call
        args = {k: (v.astype(np.float64) if isinstance(v, np.ndarray) and v.dtype == F32
                    and k not in labels else v) for k, v in args.items()}
    return args, labels, draw(st.booleans()), draw(st.booleans())


NOT_ARRAYS = {"int", "float", "str", "bytes", "dict", "list", "tuple", "object",
              "numpy-scalar", "memoryview"}


def _check_outcome(fn, args, labels, **kw):
    try:
        out = fn(**args, **kw)
    except (TypeError, ValueError) as e:
        assert str(e), "an exception without a message"
        return None
    bad = [n for n, lab in labels.items()
           if lab in NOT_ARRAYS or (lab == "None" and n in REQUIRED)]
    assert not bad, f"accepted non-arrays for {bad}: {labels}"
    return out


@PROFILE
@given(mutated_calls(lstm_args))
def test_lstm_random_garbage(call):
    args, labels, batch_first, training = call
    out = _check_outcome(fastrnn.lstm_forward, args, labels, batch_first=batch_first,
                         training=training)
    if out is not None and training:
        try:
            g = fastrnn.lstm_backward(np.ones_like(out.h_seq), np.ones_like(out.h_n), None,
                                      out.cache)
        except (TypeError, ValueError):
            pytest.fail("backward refused the cache of a forward that succeeded")
        assert g.dx.shape == args["x"].shape


@PROFILE
@given(mutated_calls(rnn_args))
def test_rnn_random_garbage(call):
    args, labels, batch_first, training = call
    out = _check_outcome(fastrnn.rnn_forward, args, labels, batch_first=batch_first,
                         training=training)
    if out is not None and training:
        g = fastrnn.rnn_backward(np.ones_like(out.h_seq), None, out.cache)
        assert g.dx.shape == args["x"].shape


# ---- model methods --------------------------------------------------------------------

N_SAMPLES, MT, MI = 6, 5, 3


def model_garbage():
    good_x = np.zeros((N_SAMPLES, MT, MI))
    return [
        ("None", None),
        ("str", "abc"),
        ("dict", {"x": 1}),
        ("object", object()),
        ("scalar", 3.0),
        ("1-d", np.zeros(MI)),
        ("2-d", np.zeros((N_SAMPLES, MI))),
        ("4-d", np.zeros((N_SAMPLES, MT, MI, 1))),
        ("zero-samples", np.zeros((0, MT, MI))),
        ("zero-steps", np.zeros((N_SAMPLES, 0, MI))),
        ("zero-features", np.zeros((N_SAMPLES, MT, 0))),
        ("wrong-features", np.zeros((N_SAMPLES, MT, MI + 1))),
        ("ragged-list", [[[0.0] * MI] * MT, [[0.0] * MI] * (MT - 1)]),
        ("str-array", good_x.astype(str)),
        ("object-array", good_x.astype(object)),
        ("complex", good_x.astype(complex)),
        ("datetime", np.zeros((N_SAMPLES, MT, MI), "datetime64[s]")),
        ("structured", np.zeros((N_SAMPLES, MT, MI), [("a", "f4")])),
        ("bcast", np.broadcast_to(np.float32(0.5), (N_SAMPLES, MT, MI))),
        ("read-only", _read_only(good_x)),
        ("int", good_x.astype(np.int64)),
        ("bool", good_x.astype(bool)),
        ("nan", np.full((N_SAMPLES, MT, MI), np.nan)),
        ("reversed", good_x[::-1, ::-1, ::-1]),
        ("list", good_x.tolist()),
    ]


def _model(cls):
    m = cls(input_dim=MI, hidden_dim=4, output_dim=1, seed=0)
    m.compile(optimizer="adam", loss="mse")
    return m


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NaN data stops fit with a warning
@pytest.mark.parametrize("cls", [models.LSTM, models.RNN])
@pytest.mark.parametrize("label, x", model_garbage(), ids=[g[0] for g in model_garbage()])
def test_model_methods_with_garbage_x(cls, label, x):
    y = np.zeros((N_SAMPLES, 1))
    model = _model(cls)
    for method, call in (("predict", lambda: model.predict(x)),
                         ("evaluate", lambda: model.evaluate(x, y)),
                         ("fit", lambda: model.fit(x, y, epochs=1, verbose=0)),
                         ("train_on_batch", lambda: model.train_on_batch(x, y))):
        try:
            result = call()
        except (TypeError, ValueError):
            continue
        if method == "predict":
            assert result.shape == (N_SAMPLES, 1), (method, label)


@pytest.mark.parametrize("cls", [models.LSTM, models.RNN])
@pytest.mark.parametrize(
    "label, y",
    [("None", None), ("str", "abc"), ("dict", {}), ("wrong-samples", np.zeros((N_SAMPLES + 1, 1))),
     ("wrong-outputs", np.zeros((N_SAMPLES, 2))), ("3-d", np.zeros((N_SAMPLES, 1, 1))),
     ("scalar", 1.0), ("zero", np.zeros((0, 1))), ("object", np.array([None] * N_SAMPLES)),
     ("flat", np.zeros(N_SAMPLES)), ("bcast", np.broadcast_to(np.float32(1), (N_SAMPLES, 1)))],
)
def test_model_methods_with_garbage_y(cls, label, y):
    x = np.zeros((N_SAMPLES, MT, MI))
    model = _model(cls)
    for call in (lambda: model.evaluate(x, y), lambda: model.fit(x, y, epochs=1, verbose=0)):
        try:
            call()
        except (TypeError, ValueError):
            pass


@pytest.mark.parametrize("kw", [dict(batch_size=0), dict(batch_size=-1), dict(batch_size="a"),
                                dict(batch_size=None), dict(batch_size=10**12),
                                dict(epochs="2"), dict(validation_split=1.5),
                                dict(validation_split=0.01), dict(validation_data=(1,)),
                                dict(verbose=7), dict(initial_epoch=5)])
def test_model_fit_with_garbage_options(kw):
    x, y = np.zeros((N_SAMPLES, MT, MI)), np.zeros((N_SAMPLES, 1))
    model = _model(models.LSTM)
    try:
        model.fit(x, y, **{"epochs": 1, "verbose": 0, **kw})
    except (TypeError, ValueError):
        pass


# ---- huge sizes, in a child process with an address-space limit -------------------------

HUGE_HARNESS = textwrap.dedent(
    r"""
    import json, sys
    import numpy as np
    import fastrnn
    from fastrnn import models
    from numpy.lib.stride_tricks import as_strided

    f32 = np.float32
    def bcast(shape, dtype=f32):
        # zero strides: any shape whose element count fits in intp, no memory behind it
        return as_strided(np.zeros(1, dtype), shape, (0,) * len(shape))

    # Each case builds its inputs (NumPy must accept them) and returns the call to try.
    def lstm(x, H, training):
        I = x.shape[2]
        z = lambda *s: np.zeros(s, x.dtype)
        args = (x, None, None, z(4 * H, I), z(4 * H, H), z(4 * H))
        return lambda: fastrnn.lstm_forward(*args, training=training)

    def rnn(x, H):
        I = x.shape[2]
        z = lambda *s: np.zeros(s, x.dtype)
        args = (x, None, z(H, I), z(H, H), z(H))
        return lambda: fastrnn.rnn_forward(*args)

    def rnn_backward_tampered(BT, H, I=1, batch_first=True):
        # a cache whose x and h_seq are zero-stride views of B*T rows: (B=1, T=BT) when
        # batch_first, else (T=1, B=BT)
        import dataclasses
        out = fastrnn.rnn_forward(np.zeros((1, 1, I), f32), None, np.zeros((H, I), f32),
                                  np.zeros((H, H), f32), np.zeros(H, f32), training=True)
        h_seq = as_strided(np.zeros(H, f32), (1, BT, H), (0, 0, 4))
        c = dataclasses.replace(out.cache, x=bcast((1, BT, I)), h_seq=h_seq,
                                batch_first=batch_first)
        return lambda: fastrnn.rnn_backward(None, None, c)

    def model_predict(shape, dtype):
        m = models.LSTM(input_dim=shape[2], hidden_dim=4, output_dim=1, seed=0)
        x = bcast(shape, dtype)
        return lambda: m.predict(x)

    def model_fit(shape):
        m = models.LSTM(input_dim=shape[2], hidden_dim=8, output_dim=1, seed=0)
        m.compile("adam", "mse")
        x, y = bcast(shape), bcast((shape[0], 1))
        return lambda: m.fit(x, y, epochs=1, verbose=0)

    CASES = {
        # outputs whose element count overflows int64 (x itself is valid: 2**60 elements)
        "lstm-h_seq-count-overflows-int64": lambda: lstm(bcast((2**30, 2**30, 1)), 16, False),
        "lstm-train-count-overflows-int64": lambda: lstm(bcast((2**30, 2**30, 1)), 16, True),
        "rnn-h_seq-count-overflows-int64": lambda: rnn(bcast((2**30, 2**30, 1)), 16),
        # outputs whose byte count overflows (element count fits)
        "lstm-h_seq-bytes-overflow": lambda: lstm(bcast((2**30, 2**30, 1)), 4, False),
        "lstm-gates-bytes-overflow": lambda: lstm(bcast((2**30, 2**28, 1)), 4, True),
        "lstm-float64-bytes-overflow": lambda: lstm(bcast((2**30, 2**29, 1), np.float64), 4, False),
        "rnn-backward-dx-bytes": lambda: rnn_backward_tampered(2**60, 1),
        # terabytes
        "lstm-terabytes": lambda: lstm(bcast((2**20, 2**20, 2)), 4, False),
        "lstm-train-terabytes": lambda: lstm(bcast((2**20, 2**20, 2)), 4, True),
        "rnn-terabytes": lambda: rnn(bcast((2**24, 2**20, 1)), 2),
        # gigabytes: more than the child's address-space limit, less than the machine
        "lstm-infer-8GB": lambda: lstm(bcast((1, 2**28, 2)), 8, False),
        "lstm-train-6GB": lambda: lstm(bcast((2**10, 2**16, 1)), 4, True),
        "rnn-8GB": lambda: rnn(bcast((2**13, 2**16, 3)), 4),
        # the core's own workspace, [chunk + 1, B, H]: dx and dh0 (1 GiB each) fit in the
        # limit, the 2 GiB of scratch on top of them does not
        "rnn-backward-workspace-2GB": lambda: rnn_backward_tampered(2**28, 1, 1, False),
        # the model layer
        "model-predict-float32": lambda: model_predict((2**40, 2**18, 3), f32),
        "model-predict-float64-copy": lambda: model_predict((2**29, 2**28, 3), np.float64),
        "model-fit": lambda: model_fit((2**16, 2**22, 3)),
    }

    results = {}
    for name, case in CASES.items():
        try:
            call = case()
        except BaseException as e:
            results[name] = "SETUP " + type(e).__name__ + ": " + str(e)[:160]
            print(json.dumps({name: results[name]}), flush=True)
            continue
        try:
            call()
            results[name] = "succeeded"
        except (ValueError, MemoryError) as e:
            results[name] = type(e).__name__ + ": " + str(e)[:160]
        except BaseException as e:  # a wrong exception type is a test failure, not a crash
            results[name] = "WRONG " + type(e).__name__ + ": " + str(e)[:160]
        print(json.dumps({name: results[name]}), flush=True)
    print("DONE", flush=True)
    """
)

LIMIT_BYTES = 3 << 30  # the child's address space: far below what the huge cases ask


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT_BYTES, LIMIT_BYTES))


def test_huge_sizes_are_refused_before_allocating():
    try:
        proc = subprocess.run(
            [sys.executable, "-c", HUGE_HARNESS],
            preexec_fn=_limit_memory,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "OMP_NUM_THREADS": "2"},
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the huge-size harness hung (a size not refused up front?):\n{e.stdout}")
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0, (
        f"harness died with code {proc.returncode} (negative = signal) after:\n"
        f"{proc.stdout}\n{proc.stderr[-3000:]}"
    )
    assert lines and lines[-1] == "DONE", proc.stdout + proc.stderr
    results = {}
    for line in lines[:-1]:
        results.update(json.loads(line))
    bad = {k: v for k, v in results.items() if not v.startswith(("ValueError", "MemoryError"))}
    assert not bad, json.dumps(results, indent=1)
