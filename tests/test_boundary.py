"""Every bad-input rule of the functional API: the right exception, a useful message,
no crash, and inputs left untouched."""

from __future__ import annotations

import re
import threading
import time

import numpy as np
import pytest
from conftest import long_lstm_case, make_lstm_case, make_rnn_case

import fastrnn
from fastrnn import _core

B, T, I, H = 3, 4, 5, 6


@pytest.fixture
def lstm(rng):
    case, grads = make_lstm_case(rng, B, T, I, H, np.float32, peephole=True, batch_first=True)
    return case, grads


@pytest.fixture
def rnn(rng):
    case, grads = make_rnn_case(rng, B, T, I, H, np.float32, batch_first=True)
    return case, grads


def call_lstm(case, **kw):
    return fastrnn.lstm_forward(**case, **kw)


# ---- dtype and type: TypeError ----------------------------------------------------------


@pytest.mark.parametrize("name", ["x", "h0", "c0", "w_ih", "w_hh", "b", "peephole"])
def test_non_array_is_type_error(lstm, name):
    case, _ = lstm
    case[name] = case[name].tolist()
    with pytest.raises(TypeError, match=rf"`{name}` must be a numpy.ndarray, got list"):
        call_lstm(case)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.float16, np.complex64, np.bool_])
def test_x_dtype_must_be_float32_or_float64(lstm, dtype):
    case, _ = lstm
    case["x"] = case["x"].astype(dtype)
    with pytest.raises(TypeError, match=r"`x` must have dtype float32 or float64, got"):
        call_lstm(case)


@pytest.mark.parametrize("name", ["h0", "c0", "w_ih", "w_hh", "b", "peephole"])
def test_mixed_dtypes_are_type_error(lstm, name):
    case, _ = lstm
    case[name] = case[name].astype(np.float64)
    with pytest.raises(TypeError, match=rf"`{name}` has dtype float64 but `x` has float32"):
        call_lstm(case)


def test_non_native_byte_order_is_type_error(lstm):
    case, _ = lstm
    case["w_hh"] = case["w_hh"].astype(">f4")
    with pytest.raises(TypeError, match="`w_hh` has dtype"):
        call_lstm(case)


def test_gradient_dtype_must_match(lstm):
    case, grads = lstm
    out = call_lstm(case, training=True)
    with pytest.raises(TypeError, match="`dh_seq` has dtype float64"):
        fastrnn.lstm_backward(grads["dh_seq"].astype(np.float64), None, None, out.cache)
    with pytest.raises(TypeError, match="`dc_n` must be a numpy.ndarray"):
        fastrnn.lstm_backward(None, None, 1.0, out.cache)


def test_rnn_types(rnn):
    case, grads = rnn
    with pytest.raises(TypeError, match="`b` has dtype float64"):
        fastrnn.rnn_forward(**{**case, "b": case["b"].astype(np.float64)})
    out = fastrnn.rnn_forward(**case, training=True)
    with pytest.raises(TypeError, match="`dh_n` has dtype int64"):
        fastrnn.rnn_backward(None, np.zeros((B, H), np.int64), out.cache)


# ---- shapes: ValueError naming the argument, the expected and the given shape ------------


@pytest.mark.parametrize(
    "name, bad, expected",
    [
        ("w_ih", (4 * H, I + 1), r"`w_ih` must have shape \(4\*H, I\) = \(24, 5\), got \(24, 6\)"),
        ("w_hh", (4 * H, H + 1), r"`w_hh` must have shape \(4\*H, H\), got \(24, 7\)"),
        ("w_hh", (4 * H,), r"`w_hh` must have shape \(4\*H, H\), got \(24,\)"),
        ("b", (4 * H + 1,), r"`b` must have shape \(4\*H,\) = \(24,\), got \(25,\)"),
        ("h0", (B + 1, H), r"`h0` must have shape \(B, H\) = \(3, 6\), got \(4, 6\)"),
        ("c0", (B, H, 1), r"`c0` must have shape \(B, H\) = \(3, 6\), got \(3, 6, 1\)"),
        ("peephole", (4, H), r"`peephole` must have shape \(3, H\) = \(3, 6\), got \(4, 6\)"),
        ("x", (B, T), r"`x` must be 3-D \(B, T, features\), got shape \(3, 4\)"),
    ],
)
def test_shape_mismatch_is_value_error(lstm, name, bad, expected):
    case, _ = lstm
    case[name] = np.zeros(bad, np.float32)
    with pytest.raises(ValueError, match=r"lstm_forward: " + expected):
        call_lstm(case)


def test_time_major_message_names_layout(lstm):
    case, _ = lstm
    case["x"] = np.zeros((T, B), np.float32)
    with pytest.raises(ValueError, match=re.escape("(T, B, features)")):
        call_lstm(case, batch_first=False)


@pytest.mark.parametrize("name, shape", [("dh_seq", (B, T + 1, H)), ("dh_n", (B, H + 1)),
                                         ("dc_n", (1, H))])
def test_backward_shape_mismatch(lstm, name, shape):
    case, grads = lstm
    out = call_lstm(case, training=True)
    grads[name] = np.zeros(shape, np.float32)
    with pytest.raises(ValueError, match=rf"lstm_backward: `{name}` must have shape"):
        fastrnn.lstm_backward(grads["dh_seq"], grads["dh_n"], grads["dc_n"], out.cache)


def test_rnn_shapes_and_nonlinearity(rnn):
    case, _ = rnn
    with pytest.raises(ValueError, match=r"`w_ih` must have shape \(H, I\) = \(6, 5\), got \(6, 4\)"):
        fastrnn.rnn_forward(**{**case, "w_ih": np.zeros((H, I - 1), np.float32)})
    with pytest.raises(ValueError, match="`nonlinearity` must be 'tanh' or 'relu', got 'sigmoid'"):
        fastrnn.rnn_forward(**case, nonlinearity="sigmoid")


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_zero_sizes_are_value_error(lstm, axis):
    """Documented choice: T, B, I and H must be at least 1."""
    case, _ = lstm
    shape = list(case["x"].shape)
    shape[axis] = 0
    case["x"] = np.zeros(shape, np.float32)
    with pytest.raises(ValueError, match="all sizes must be at least 1"):
        call_lstm(case)


def test_zero_hidden_is_value_error(rnn):
    case, _ = rnn
    z = np.zeros((0, 0), np.float32)
    with pytest.raises(ValueError, match="at least 1"):
        fastrnn.rnn_forward(case["x"], None, np.zeros((0, I), np.float32), z,
                            np.zeros(0, np.float32))


# ---- layout -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["w_ih", "w_hh", "peephole"])
def test_weights_must_be_c_contiguous(lstm, name):
    case, _ = lstm
    case[name] = np.asfortranarray(case[name])
    with pytest.raises(ValueError, match=rf"`{name}` must be C-contiguous"):
        call_lstm(case)


def test_states_need_contiguous_rows(lstm):
    case, _ = lstm
    case["h0"] = np.zeros((H, B), np.float32).T
    with pytest.raises(ValueError, match="`h0` must be contiguous along its last axis"):
        call_lstm(case)


def test_misaligned_data_is_value_error(lstm):
    case, _ = lstm
    raw = np.zeros(case["w_hh"].nbytes + 1, np.uint8)[1:]
    case["w_hh"] = raw.view(np.float32).reshape(case["w_hh"].shape)
    with pytest.raises(ValueError, match="`w_hh` is not aligned"):
        call_lstm(case)


# ---- cache ------------------------------------------------------------------------------


def test_backward_needs_a_training_cache(lstm, rnn):
    case, _ = lstm
    out = call_lstm(case, training=False)
    assert out.cache is None
    with pytest.raises(ValueError, match=r"cache is None: call lstm_forward\(..., training=True\)"):
        fastrnn.lstm_backward(None, None, None, out.cache)
    rcase, _ = rnn
    rout = fastrnn.rnn_forward(**rcase, training=True)
    with pytest.raises(TypeError, match="cache must be the LstmCache"):
        fastrnn.lstm_backward(None, None, None, rout.cache)
    with pytest.raises(ValueError, match=r"call rnn_forward\(..., training=True\)"):
        fastrnn.rnn_backward(None, None, None)


# ---- inputs are read, never written; odd values flow through ----------------------------


def test_inputs_unchanged_and_read_only_inputs_work(lstm):
    case, grads = lstm
    for a in (*case.values(), *grads.values()):
        a.setflags(write=False)
    snapshot = {k: v.copy() for k, v in {**case, **grads}.items()}
    out = call_lstm(case, training=True)
    fastrnn.lstm_backward(grads["dh_seq"], grads["dh_n"], grads["dc_n"], out.cache)
    for k, v in {**case, **grads}.items():
        assert np.array_equal(v, snapshot[k]), k


def test_rnn_inputs_unchanged(rnn):
    case, grads = rnn
    snapshot = {k: v.copy() for k, v in {**case, **grads}.items()}
    out = fastrnn.rnn_forward(**case, training=True)
    fastrnn.rnn_backward(grads["dh_seq"], grads["dh_n"], out.cache)
    for k, v in {**case, **grads}.items():
        assert np.array_equal(v, snapshot[k]), k


def test_nan_and_inf_flow_through(lstm, rnn):
    case, grads = lstm
    case["x"][0, 1, 2] = np.nan
    case["x"][1, 0, 0] = np.inf
    out = call_lstm(case, training=True)
    g = fastrnn.lstm_backward(grads["dh_seq"], grads["dh_n"], grads["dc_n"], out.cache)
    assert np.isnan(out.h_seq[0, 1:]).any()
    assert np.isfinite(out.h_seq[2]).all()  # batch rows stay independent
    assert np.isnan(g.dw_ih).any()
    rcase, _ = rnn
    rcase["w_hh"][0, 0] = np.inf
    rout = fastrnn.rnn_forward(**rcase, nonlinearity="relu")
    assert rout.h_seq.shape == (B, T, H)


def test_saturating_inputs_stay_finite(lstm):
    case, grads = lstm
    case["x"] = case["x"] * np.float32(1e4)
    out = call_lstm(case, training=True)
    g = fastrnn.lstm_backward(grads["dh_seq"], grads["dh_n"], grads["dc_n"], out.cache)
    assert np.isfinite(out.h_seq).all() and np.isfinite(g.dx).all()


# ---- threads ----------------------------------------------------------------------------


def test_set_num_threads_validates():
    # Above 1024 a later call would ask OpenMP for that many threads, and libgomp exits
    # the process when it cannot make them; 2**31 used to reach pybind as a TypeError.
    for bad in (-1, 1.5, "2", True, 1025, 2**31, np.int64(-3)):
        with pytest.raises(ValueError, match=r"`n` must be an integer in \[0, 1024\]"):
            fastrnn.set_num_threads(bad)
    fastrnn.set_num_threads(np.int64(1))  # numpy's integers are integers
    assert fastrnn.get_num_threads() == 1
    fastrnn.set_num_threads(1024)
    assert fastrnn.get_num_threads() == 1024
    with pytest.raises(ValueError, match=r"\[0, 1024\]"):
        _core.set_num_threads(1025)  # the core keeps the same range
    fastrnn.set_num_threads(0)
    assert fastrnn.get_num_threads() >= 1


def test_gil_is_released_while_the_core_runs(rng):
    """A Python thread keeps running while another thread is inside a long kernel call."""
    fastrnn.set_num_threads(1)
    case = long_lstm_case(rng)  # long enough to tell (the 50 ms floor below)
    started, done = threading.Event(), threading.Event()
    elapsed = []

    def worker():
        started.set()
        t0 = time.perf_counter()
        fastrnn.lstm_forward(**case)
        elapsed.append(time.perf_counter() - t0)
        done.set()

    th = threading.Thread(target=worker)
    th.start()
    started.wait()
    ticks = 0
    while not done.is_set():
        ticks += 1
        time.sleep(0.001)
    th.join()
    fastrnn.set_num_threads(0)
    # Holding the GIL would let this loop run only at the call's edges (a tick or two);
    # released, it ticks about once per millisecond of the call (fewer on a loaded
    # machine, hence the wide margin).
    assert elapsed[0] > 0.05, "the call was too short to tell"
    assert ticks >= 10, (ticks, elapsed[0])


def test_denormal_mode_is_restored_for_the_caller(lstm):
    """The core flushes denormals while it runs, and gives the caller its mode back."""
    tiny = np.array([1e-39], np.float32)
    assert tiny[0] != 0 and (tiny * np.float32(0.5))[0] != 0  # this thread keeps denormals
    case, _ = lstm
    case["x"] = np.full_like(case["x"], 1e-39)  # denormal inputs
    out = call_lstm(case, training=True)
    assert np.isfinite(out.h_seq).all()
    assert (tiny * np.float32(0.5))[0] != 0


def test_relu_backward_keeps_non_finite_gradients_like_the_reference(rng):
    """[h > 0] * dh: a NaN or inf gradient stays non-finite even where h <= 0."""
    from fastrnn import reference

    case, grads = make_rnn_case(rng, 2, 3, 4, 5, np.float64, batch_first=True)
    grads["dh_seq"][0, 1, 2] = np.nan
    grads["dh_seq"][1, 2, 0] = np.inf
    out = fastrnn.rnn_forward(**case, nonlinearity="relu", training=True)
    ref = reference.rnn_forward(**case, nonlinearity="relu", training=True)
    g = fastrnn.rnn_backward(grads["dh_seq"], grads["dh_n"], out.cache)
    with np.errstate(all="ignore"):  # NumPy warns about the NaNs we put there on purpose
        gr = reference.rnn_backward(grads["dh_seq"], grads["dh_n"], ref.cache)
    for name in g._fields:
        a, e = getattr(g, name), getattr(gr, name)
        assert np.array_equal(np.isnan(a), np.isnan(e)), name
        np.testing.assert_allclose(a, e, rtol=1e-10, atol=1e-12, equal_nan=True, err_msg=name)
