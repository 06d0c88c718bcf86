"""Proves the NumPy oracle: float64 central finite differences on every gradient.

The loss L = sum(h_seq * R_h_seq) + sum(h_n * R_h_n) (+ sum(c_n * R_c_n)) with random
R's has dL/dh_seq = R_h_seq and so on, so the R's are exactly the output gradients
handed to backward, and leaving one out of L is the same as passing None.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from fastrnn import reference

T, B, I, H = 3, 2, 3, 4
EPS = 1e-6


@pytest.fixture
def rng():
    return np.random.default_rng(20240607)


def _rnn_case(rng, batch_first, nonlinearity):
    """Returns (inputs, forward, backward, output names) of a tiny RNN."""
    inputs = {
        "x": rng.standard_normal((B, T, I) if batch_first else (T, B, I)),
        "h0": rng.standard_normal((B, H)),
        "w_ih": 0.6 * rng.standard_normal((H, I)),
        "w_hh": 0.6 * rng.standard_normal((H, H)),
        "b": 0.3 * rng.standard_normal(H),
    }
    forward = functools.partial(
        reference.rnn_forward, nonlinearity=nonlinearity, batch_first=batch_first
    )
    return inputs, forward, reference.rnn_backward, ("h_seq", "h_n")


def _lstm_case(rng, batch_first, peephole):
    """Returns (inputs, forward, backward, output names) of a tiny LSTM."""
    inputs = {
        "x": rng.standard_normal((B, T, I) if batch_first else (T, B, I)),
        "h0": rng.standard_normal((B, H)),
        "c0": rng.standard_normal((B, H)),
        "w_ih": 0.6 * rng.standard_normal((4 * H, I)),
        "w_hh": 0.6 * rng.standard_normal((4 * H, H)),
        "b": 0.3 * rng.standard_normal(4 * H),
        "peephole": 0.5 * rng.standard_normal((3, H)) if peephole else None,
    }
    forward = functools.partial(reference.lstm_forward, batch_first=batch_first)
    return inputs, forward, reference.lstm_backward, ("h_seq", "h_n", "c_n")


CASES = {
    "rnn-tanh": functools.partial(_rnn_case, nonlinearity="tanh"),
    "rnn-relu": functools.partial(_rnn_case, nonlinearity="relu"),
    "lstm": functools.partial(_lstm_case, peephole=False),
    "lstm-peephole": functools.partial(_lstm_case, peephole=True),
}


def _output_grads(rng, out, outputs):
    return [rng.standard_normal(getattr(out, name).shape) for name in outputs]


def _loss(forward, inputs, weights):
    out = forward(**inputs)
    return sum(np.sum(getattr(out, name) * r) for name, r in weights.items())


def _numeric_grad(forward, inputs, weights, name):
    """Central differences of the loss w.r.t. every element of inputs[name]."""
    grad = np.zeros_like(inputs[name])
    for idx in np.ndindex(grad.shape):
        loss = []
        for step in (EPS, -EPS):
            moved = inputs[name].copy()
            moved[idx] += step
            loss.append(_loss(forward, {**inputs, name: moved}, weights))
        grad[idx] = (loss[0] - loss[1]) / (2 * EPS)
    return grad


def _check_gradients(rng, case, missing=()):
    """Compares every analytic gradient with finite differences.

    Output gradients named in `missing` are left out of the loss and passed as None.
    """
    inputs, forward, backward, outputs = case
    out = forward(**inputs, training=True)
    weights = {n: rng.standard_normal(getattr(out, n).shape) for n in outputs if n not in missing}
    grads = backward(*(weights.get(n) for n in outputs), out.cache)
    for name, value in inputs.items():
        analytic = getattr(grads, "d" + name)
        if value is None:
            assert analytic is None, f"d{name} must be None when {name} is None"
            continue
        numeric = _numeric_grad(forward, inputs, weights, name)
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8, err_msg="d" + name)


def _assert_relu_kinks_far(inputs, batch_first):
    """Pre-activations are far from relu's kink next to what EPS moves them by,
    and both sides of it are exercised."""
    out = reference.rnn_forward(**inputs, nonlinearity="relu", batch_first=batch_first)
    x, h = (a.swapaxes(0, 1) if batch_first else a for a in (inputs["x"], out.h_seq))
    h_prev = np.concatenate([inputs["h0"][None], h[:-1]])
    z = x @ inputs["w_ih"].T + h_prev @ inputs["w_hh"].T + inputs["b"]
    assert np.abs(z).min() > 1e-3
    assert (z > 0).any() and (z < 0).any()


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("kind", CASES)
def test_gradients_match_finite_differences(rng, kind, batch_first):
    case = CASES[kind](rng, batch_first)
    if kind == "rnn-relu":
        _assert_relu_kinks_far(case[0], batch_first)
    _check_gradients(rng, case)


@pytest.mark.parametrize(
    ("kind", "missing"),
    [
        ("rnn-tanh", ("h_seq",)),
        ("rnn-tanh", ("h_n",)),
        ("lstm-peephole", ("h_seq",)),
        ("lstm-peephole", ("h_n", "c_n")),
        ("lstm-peephole", ("h_seq", "h_n", "c_n")),
    ],
)
def test_none_output_gradients_count_as_zero(rng, kind, missing):
    _check_gradients(rng, CASES[kind](rng, True), missing)


@pytest.mark.parametrize("kind", CASES)
def test_float32_stays_float32_and_close_to_float64(rng, kind):
    inputs, forward, backward, outputs = CASES[kind](rng, True)
    inputs32 = {k: None if v is None else v.astype(np.float32) for k, v in inputs.items()}
    out64 = forward(**inputs, training=True)
    out32 = forward(**inputs32, training=True)
    d_out = _output_grads(rng, out64, outputs)
    grads64 = backward(*d_out, out64.cache)
    grads32 = backward(*(d.astype(np.float32) for d in d_out), out32.cache)
    for name, got, want in [
        *zip(out32._fields[:-1], out32[:-1], out64[:-1]),
        *zip(grads32._fields, grads32, grads64),
    ]:
        if want is None:
            assert got is None, name
            continue
        assert got.dtype == np.float32, name
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("kind", CASES)
def test_inputs_are_not_modified(rng, kind):
    inputs, forward, backward, outputs = CASES[kind](rng, True)
    d_out = _output_grads(rng, forward(**inputs), outputs)
    arrays = [a for a in [*inputs.values(), *d_out] if a is not None]
    saved = [a.copy() for a in arrays]
    for a in arrays:
        a.flags.writeable = False  # any write now raises, not just the ones we compare
    backward(*d_out, forward(**inputs, training=True).cache)
    for a, before in zip(arrays, saved):
        np.testing.assert_array_equal(a, before)


@pytest.mark.parametrize("kind", CASES)
def test_no_cache_without_training(rng, kind):
    inputs, forward, backward, outputs = CASES[kind](rng, True)
    out = forward(**inputs)
    assert out.cache is None
    for got, want in zip(out[:-1], forward(**inputs, training=True)[:-1]):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match=r"cache is None: call \w+_forward\(\.\.\., training=True\)"):
        backward(*[None] * len(outputs), out.cache)


@pytest.mark.parametrize("kind", CASES)
def test_none_initial_state_equals_zeros(rng, kind):
    inputs, forward, backward, outputs = CASES[kind](rng, True)
    states = [k for k in ("h0", "c0") if k in inputs]
    out_zeros = forward(**{**inputs, **{k: np.zeros((B, H)) for k in states}}, training=True)
    out_none = forward(**{**inputs, **{k: None for k in states}}, training=True)
    d_out = _output_grads(rng, out_zeros, outputs)
    got = [*out_none[:-1], *backward(*d_out, out_none.cache)]
    want = [*out_zeros[:-1], *backward(*d_out, out_zeros.cache)]
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("kind", CASES)
def test_time_major_equals_batch_first_transposed(rng, kind):
    inputs, forward, backward, outputs = CASES[kind](rng, True)
    out_bf = forward(**inputs, training=True)
    # A transposed view: time-major x need not be contiguous.
    out_tm = forward(**{**inputs, "x": inputs["x"].swapaxes(0, 1)}, batch_first=False, training=True)
    d_out = _output_grads(rng, out_bf, outputs)
    grads_bf = backward(*d_out, out_bf.cache)
    grads_tm = backward(d_out[0].swapaxes(0, 1), *d_out[1:], out_tm.cache)

    tight = functools.partial(np.testing.assert_allclose, rtol=1e-12, atol=1e-14)
    tight(out_tm.h_seq, out_bf.h_seq.swapaxes(0, 1))
    tight(grads_tm.dx, grads_bf.dx.swapaxes(0, 1))
    for name, got, want in [
        *zip(out_bf._fields[1:-1], out_tm[1:-1], out_bf[1:-1]),
        *zip(grads_bf._fields[1:], grads_tm[1:], grads_bf[1:]),
    ]:
        if want is None:
            assert got is None, name
        else:
            tight(got, want, err_msg=name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_saturated_lstm_does_not_overflow(rng, dtype):
    inputs, forward, backward, _ = CASES["lstm-peephole"](rng, True)
    huge = {k: None if v is None else (1e4 * v).astype(dtype) for k, v in inputs.items()}
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        out = forward(**huge, training=True)
        grads = backward(np.ones_like(out.h_seq), None, np.ones_like(out.c_n), out.cache)
    assert all(np.isfinite(a).all() for a in [*out[:-1], *grads])


def test_bad_arguments_are_named(rng):
    inputs, forward, _, _ = CASES["lstm-peephole"](rng, True)
    with pytest.raises(ValueError, match=r"w_hh must have shape \(16, 4\), got \(16, 3\)"):
        forward(**{**inputs, "w_hh": inputs["w_hh"][:, :3]})
    with pytest.raises(TypeError, match="b must have dtype float64, got float32"):
        forward(**{**inputs, "b": inputs["b"].astype(np.float32)})
    rnn_inputs, _, _, _ = CASES["rnn-tanh"](rng, True)
    with pytest.raises(ValueError, match="nonlinearity must be 'tanh' or 'relu', got 'gelu'"):
        reference.rnn_forward(**rnn_inputs, nonlinearity="gelu")
