"""Layers, losses and metrics: backward against float64 finite differences, forward
against the NumPy reference, initialisers, weight layout and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from fastrnn import layers as L
from fastrnn import losses, metrics
from fastrnn import reference as R


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def _numeric_grad(f, a, eps=1e-6):
    """Central differences of the scalar f() with respect to every element of a (in place)."""
    g = np.zeros_like(a)
    it = np.nditer(a, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = a[i]
        a[i] = old + eps
        fp = f()
        a[i] = old - eps
        fm = f()
        a[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


def _outputs_list(out):
    return out if isinstance(out, list) else [out]


def _check_layer_grads(layer, x, rng, initial_state=None):
    """Compares backward of sum(out_k * r_k) with central differences for x, the weights and states."""
    kwargs = {} if initial_state is None else {"initial_state": initial_state}
    probe = _outputs_list(layer(x, **kwargs))
    projections = [rng.standard_normal(o.shape) for o in probe]

    def loss():
        outs = _outputs_list(layer.forward(x, training=False, **kwargs))
        return sum(float((o * r).sum()) for o, r in zip(outs, projections))

    layer.forward(x, training=True, **kwargs)
    dy = projections if isinstance(probe, list) and len(probe) > 1 else projections[0]
    dx = layer.backward(dy)
    analytic = {k: v.copy() for k, v in layer.grads.items()}
    d_states = layer.d_initial_state if initial_state is not None else None

    np.testing.assert_allclose(dx, _numeric_grad(loss, x), rtol=1e-5, atol=1e-7)
    for name, w in layer.weights.items():
        np.testing.assert_allclose(
            analytic[name], _numeric_grad(loss, w), rtol=1e-5, atol=1e-7, err_msg=name
        )
    if initial_state is not None:
        for d, s in zip(d_states, initial_state):
            np.testing.assert_allclose(d, _numeric_grad(loss, s), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_simple_rnn_backward_matches_finite_differences(rng, return_sequences, activation):
    layer = L.SimpleRNN(
        4, activation=activation, return_sequences=return_sequences, dtype="float64", seed=0
    )
    # relu has kinks at 0; a positive bias keeps pre-activations away from them.
    x = (
        rng.uniform(0.1, 1.0, size=(2, 3, 3))
        if activation == "relu"
        else rng.standard_normal((2, 3, 3))
    )
    layer.build(x.shape)
    if activation == "relu":
        layer.weights["b"][...] = 0.5
        layer.weights["w_ih"][...] = np.abs(layer.weights["w_ih"])
        layer.weights["w_hh"][...] = np.abs(layer.weights["w_hh"]) * 0.3
    _check_layer_grads(layer, x, rng)


@pytest.mark.parametrize("peephole", [False, True])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_lstm_backward_matches_finite_differences(rng, peephole, return_sequences):
    layer = L.LSTM(3, peephole=peephole, return_sequences=return_sequences, dtype="float64", seed=0)
    x = rng.standard_normal((2, 3, 4))
    layer.build(x.shape)
    layer.weights["b"][...] += 0.1 * rng.standard_normal(layer.weights["b"].shape)
    if peephole:
        layer.weights["peephole"][...] = 0.5 * rng.standard_normal((3, 3))
    _check_layer_grads(layer, x, rng)


def test_lstm_return_state_and_initial_state_gradients(rng):
    layer = L.LSTM(3, return_sequences=True, return_state=True, dtype="float64", seed=0)
    x = rng.standard_normal((2, 4, 2))
    states = [rng.standard_normal((2, 3)), rng.standard_normal((2, 3))]
    out = layer(x, initial_state=states)
    assert [o.shape for o in out] == [(2, 4, 3), (2, 3), (2, 3)]
    _check_layer_grads(layer, x, rng, initial_state=states)


def test_simple_rnn_return_state_initial_state_gradients(rng):
    layer = L.SimpleRNN(3, return_state=True, dtype="float64", seed=0)
    x = rng.standard_normal((2, 3, 2))
    out = layer(x, initial_state=[rng.standard_normal((2, 3))])
    assert len(out) == 2 and np.array_equal(out[0], out[1])
    _check_layer_grads(layer, x, rng, initial_state=[rng.standard_normal((2, 3))])


@pytest.mark.parametrize("activation", [None, "relu", "tanh", "sigmoid", "softmax"])
@pytest.mark.parametrize("rank", [2, 3])
def test_dense_backward_matches_finite_differences(rng, activation, rank):
    layer = L.Dense(3, activation=activation, dtype="float64", seed=0)
    x = rng.standard_normal((2, 4) if rank == 2 else (2, 3, 4))
    if activation == "relu":
        x = np.abs(x) + 0.1
        layer.build(x.shape)
        layer.weights["w"][...] = np.abs(layer.weights["w"]) + 0.05
    _check_layer_grads(layer, x, rng)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_recurrent_forward_matches_reference(rng, dtype):
    x = rng.standard_normal((3, 5, 4)).astype(dtype)
    lstm = L.LSTM(6, peephole=True, return_sequences=True, dtype=dtype, seed=1)
    lstm.build(x.shape)
    lstm.weights["peephole"][...] = rng.standard_normal((3, 6))
    w = lstm.get_weights()
    expected = R.lstm_forward(x, None, None, *w[:3], w[3]).h_seq
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(lstm(x), expected, rtol=tol, atol=tol)
    rnn = L.SimpleRNN(6, activation="relu", dtype=dtype, seed=1)
    rnn.build(x.shape)
    expected = R.rnn_forward(x, None, *rnn.get_weights(), nonlinearity="relu").h_n
    np.testing.assert_allclose(rnn(x), expected, rtol=tol, atol=tol)


def test_initialisers_follow_keras(rng):
    lstm = L.LSTM(8, seed=3)
    lstm.build((None, None, 5))
    w_ih, w_hh, b = lstm.get_weights()
    assert w_ih.shape == (32, 5) and w_hh.shape == (32, 8) and b.shape == (32,)
    assert all(w.dtype == np.float32 and w.flags.c_contiguous for w in (w_ih, w_hh, b))
    assert np.abs(w_ih).max() <= np.sqrt(6.0 / (5 + 32))
    np.testing.assert_allclose(w_hh.T @ w_hh, np.eye(8), atol=1e-5)
    np.testing.assert_array_equal(b[8:16], 1.0)
    np.testing.assert_array_equal(np.delete(b, np.s_[8:16]), 0.0)

    rnn = L.SimpleRNN(6, seed=3)
    rnn.build((None, None, 10))
    w_ih, w_hh, b = rnn.get_weights()
    np.testing.assert_allclose(w_hh @ w_hh.T, np.eye(6), atol=1e-5)
    np.testing.assert_array_equal(b, 0.0)

    dense = L.Dense(4, seed=3)
    dense.build((None, 7))
    w, b = dense.get_weights()
    assert w.shape == (4, 7) and np.abs(w).max() <= np.sqrt(6.0 / 11)
    np.testing.assert_array_equal(b, 0.0)


def test_same_seed_same_weights():
    a, b = L.LSTM(5, seed=7), L.LSTM(5, seed=7)
    a.build((None, None, 3))
    b.build((None, None, 3))
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_lazy_build_and_dtype_conversion(rng):
    layer = L.SimpleRNN(4, return_sequences=True)
    assert not layer.built
    out = layer(rng.standard_normal((2, 3, 5)).tolist())
    assert layer.built and layer.input_dim == 5
    assert out.shape == (2, 3, 4)
    f32 = L.LSTM(4, dtype="float32")
    assert f32(rng.standard_normal((2, 3, 5))).dtype == np.float32


def test_set_weights_round_trip_and_errors(rng):
    layer = L.LSTM(3, peephole=True)
    weights = [rng.standard_normal(s) for s in [(12, 2), (12, 3), (12,), (3, 3)]]
    layer.set_weights(weights)
    assert layer.built and layer.input_dim == 2
    for got, want in zip(layer.get_weights(), weights):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    with pytest.raises(ValueError, match=r"weight 'w_hh' must have shape \(12, 3\)"):
        layer.set_weights([weights[0], np.zeros((12, 4)), weights[2], weights[3]])
    with pytest.raises(ValueError, match="expected 4 weights"):
        layer.set_weights(weights[:3])


def test_bad_arguments_and_inputs(rng):
    with pytest.raises(ValueError, match="`units` must be a positive integer, got 0"):
        L.LSTM(0)
    with pytest.raises(ValueError, match="activation"):
        L.SimpleRNN(3, activation="sigmoid")
    with pytest.raises(ValueError, match="activation"):
        L.Dense(3, activation="swish")
    with pytest.raises(TypeError, match="float32 or float64"):
        L.Dense(3, dtype="int32")
    layer = L.LSTM(3)
    with pytest.raises(ValueError, match=r"3-D input \(batch, timesteps"):
        layer(rng.standard_normal((2, 5)))
    layer(rng.standard_normal((2, 4, 5)))
    with pytest.raises(ValueError, match="expected inputs with 5 features"):
        layer(rng.standard_normal((2, 4, 6)))
    with pytest.raises(RuntimeError, match="training=True"):
        layer.backward(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"initial state must have shape \(2, 3\)"):
        layer(rng.standard_normal((2, 4, 5)), initial_state=[np.zeros((2, 4)), np.zeros((2, 3))])


def test_layer_config_round_trip():
    layer = L.LSTM(7, peephole=True, return_sequences=True, name="enc")
    clone = L.get("LSTM").from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    dense = L.Dense(2, activation="softmax")
    assert L.get("Dense").from_config(dense.get_config()).activation == "softmax"


# -- losses and metrics --------------------------------------------------------------------


def _loss_cases(rng):
    y_reg = rng.standard_normal((3, 4))
    p = rng.uniform(0.05, 0.95, size=(3, 4))
    bits = (rng.uniform(size=(3, 4)) > 0.5).astype(float)
    probs = rng.uniform(0.1, 1.0, size=(3, 2, 4))
    onehot = np.eye(4)[rng.integers(0, 4, size=(3, 2))]
    ids = rng.integers(0, 4, size=(3, 2))
    return [
        (losses.MeanSquaredError(), y_reg, rng.standard_normal((3, 4))),
        (losses.MeanAbsoluteError(), y_reg, rng.standard_normal((3, 4))),
        (losses.BinaryCrossentropy(), bits, p),
        (losses.BinaryCrossentropy(from_logits=True), bits, rng.standard_normal((3, 4))),
        (losses.CategoricalCrossentropy(), onehot, probs),
        (losses.CategoricalCrossentropy(from_logits=True), onehot, rng.standard_normal((3, 2, 4))),
        (losses.SparseCategoricalCrossentropy(), ids, probs.copy()),
        (
            losses.SparseCategoricalCrossentropy(from_logits=True),
            ids,
            rng.standard_normal((3, 2, 4)),
        ),
    ]


@pytest.mark.parametrize("case", range(8))
def test_loss_gradients_match_finite_differences(rng, case):
    loss, y_true, y_pred = _loss_cases(rng)[case]
    _, grad = loss.value_and_grad(y_true, y_pred)
    numeric = _numeric_grad(lambda: loss.value_and_grad(y_true, y_pred)[0], y_pred)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


def test_loss_values_match_formulas(rng):
    y, p = rng.standard_normal((4, 2)), rng.standard_normal((4, 2))
    assert losses.get("mse")(y, p) == pytest.approx(np.mean((y - p) ** 2))
    assert losses.get("mae")(y, p) == pytest.approx(np.mean(np.abs(y - p)))
    logits = rng.standard_normal((4, 3))
    ids = np.array([0, 2, 1, 1])
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    expected = -np.mean(logp[np.arange(4), ids])
    assert losses.SparseCategoricalCrossentropy(from_logits=True)(ids, logits) == pytest.approx(
        expected
    )
    probs = np.exp(logp)
    assert losses.CategoricalCrossentropy()(np.eye(3)[ids], probs) == pytest.approx(expected)
    z = rng.standard_normal((4, 1))
    t = np.array([[1.0], [0.0], [1.0], [0.0]])
    s = 1 / (1 + np.exp(-z))
    bce = -np.mean(t * np.log(s) + (1 - t) * np.log(1 - s))
    assert losses.BinaryCrossentropy(from_logits=True)(t, z) == pytest.approx(bce)
    assert losses.BinaryCrossentropy()(t, s) == pytest.approx(bce)
    big = np.array([[1000.0], [-1000.0]])
    assert np.isfinite(losses.BinaryCrossentropy(from_logits=True)(np.array([[0.0], [1.0]]), big))


def test_loss_and_metric_lookup_errors():
    with pytest.raises(ValueError, match="unknown loss 'msee'"):
        losses.get("msee")
    with pytest.raises(ValueError, match="unknown metric"):
        metrics.get("precisionx")
    with pytest.raises(ValueError, match="same shape"):
        losses.get("mse")(np.zeros((2, 1)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"class ids must be in \[0, 3\)"):
        losses.get("sparse_categorical_crossentropy")(np.array([3]), np.ones((1, 3)) / 3)


def test_metrics():
    y = np.array([[1.0], [0.0], [1.0], [0.0]])
    p = np.array([[0.9], [0.2], [0.4], [0.7]])
    assert metrics.get("mae")(y, p) == pytest.approx(np.mean(np.abs(y - p)))
    assert metrics.get("accuracy", losses.get("binary_crossentropy"))(y, p) == pytest.approx(0.5)
    assert metrics.get("accuracy", losses.BinaryCrossentropy(from_logits=True))(
        y, p - 0.5
    ) == pytest.approx(0.5)
    probs = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    ids = np.array([1, 1, 1])
    assert metrics.get("accuracy", losses.get("sparse_categorical_crossentropy"))(
        ids, probs
    ) == pytest.approx(2 / 3)
    assert metrics.get("accuracy", losses.get("categorical_crossentropy"))(
        np.eye(2)[ids], probs
    ) == pytest.approx(2 / 3)
    assert metrics.get(lambda t, q: 1.0).name == "<lambda>"
