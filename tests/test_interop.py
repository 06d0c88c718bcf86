"""Interop: weights imported from torch / Keras give their outputs (skipped without them)."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

from fastrnn import interop
from fastrnn import layers as L
from fastrnn import models as M


@pytest.fixture
def rng():
    return np.random.default_rng(5)


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason="torch is not installed (pip install torch==2.13.0, the CPU build)")


@pytest.fixture(autouse=True)
def _seed_torch(request):
    # Seeded only where a test uses torch, so the keras tests run without it.
    if "torch" in request.fixturenames:
        request.getfixturevalue("torch").manual_seed(0)


def _t(a):
    import torch

    return torch.from_numpy(np.ascontiguousarray(a))


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_from_torch_lstm(torch, rng, batch_first, num_layers):
    mod = torch.nn.LSTM(3, 5, num_layers=num_layers, batch_first=batch_first).double()
    x = rng.standard_normal((4, 6, 3))
    with torch.no_grad():
        out = mod(_t(x if batch_first else x.transpose(1, 0, 2)))[0].numpy()
    expected = out if batch_first else out.transpose(1, 0, 2)
    converted = interop.from_torch(mod)
    assert isinstance(converted, L.LSTM if num_layers == 1 else M.Sequential)
    got = converted(x) if num_layers == 1 else converted.predict(x)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_from_torch_rnn_float32(torch, rng, nonlinearity):
    mod = torch.nn.RNN(3, 4, nonlinearity=nonlinearity, batch_first=True)
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    with torch.no_grad():
        expected = mod(_t(x))[0].numpy()
    layer = interop.from_torch(mod)
    assert layer.dtype == np.float32 and layer.activation == nonlinearity
    np.testing.assert_allclose(layer(x), expected, rtol=1e-5, atol=1e-6)


def test_from_torch_sequential_reads_the_seed_model(torch, rng):
    seq = torch.nn.Sequential(
        torch.nn.LSTM(3, 6, batch_first=True),
        torch.nn.RNN(6, 5, batch_first=True),
        torch.nn.Linear(5, 2),
        torch.nn.Tanh(),
    ).double()
    x = rng.standard_normal((4, 7, 3))
    with torch.no_grad():
        h = seq[1](seq[0](_t(x))[0])[0]
        expected = torch.tanh(seq[2](h[:, -1])).numpy()
    model = interop.from_torch(seq)
    assert [type(l).__name__ for l in model.layers] == ["LSTM", "SimpleRNN", "Dense"]
    assert model.layers[0].return_sequences and not model.layers[1].return_sequences
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-10, atol=1e-12)


def test_from_torch_linear_and_errors(torch, rng):
    lin = torch.nn.Linear(4, 3).double()
    x = rng.standard_normal((5, 4))
    with torch.no_grad():
        expected = lin(_t(x)).numpy()
    np.testing.assert_allclose(interop.from_torch(lin)(x), expected, rtol=1e-12)
    with pytest.raises(ValueError, match="bidirectional"):
        interop.from_torch(torch.nn.LSTM(3, 4, bidirectional=True))
    with pytest.raises(ValueError, match="unsupported module GRU"):
        interop.from_torch(torch.nn.GRU(3, 4))


def test_to_torch_round_trip(torch, rng):
    model = M.LSTM(3, 6, 2, num_layers=2, seed=0, dtype="float64")
    x = rng.standard_normal((4, 5, 3))
    mod = interop.to_torch(model)
    with torch.no_grad():
        got = mod(_t(x)).numpy()
    np.testing.assert_allclose(got, model.predict(x), rtol=1e-10, atol=1e-12)
    rnn = L.SimpleRNN(4, activation="relu", return_sequences=True, seed=0)
    xf = x.astype(np.float32)
    rnn(xf)
    with torch.no_grad():
        got = interop.to_torch(rnn)(_t(xf))[0].numpy()
    np.testing.assert_allclose(got, rnn(xf), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="peepholes"):
        interop.to_torch(M.LSTM(3, 4, 1, peephole=True))


# -- keras ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keras():
    if importlib.util.find_spec("keras") is None:
        pytest.skip("keras is not installed (pip install '.[keras]')")
    # Keras 3 defaults to the TensorFlow backend; without TensorFlow, torch (present here) serves.
    if importlib.util.find_spec("tensorflow") is None and "KERAS_BACKEND" not in os.environ:
        os.environ["KERAS_BACKEND"] = "torch"
    return pytest.importorskip("keras")


def test_from_keras_layers(keras, rng):
    x = rng.standard_normal((3, 6, 4)).astype(np.float32)
    for klayer in (
        keras.layers.LSTM(5, return_sequences=True),
        keras.layers.SimpleRNN(5, activation="relu"),
        keras.layers.LSTM(5, use_bias=False),
    ):
        expected = np.asarray(klayer(x))
        # Keras initialises biases to 0 (1 for the forget gate); make them matter.
        weights = klayer.get_weights()
        if len(weights) == 3:
            weights[2] = rng.standard_normal(weights[2].shape).astype(np.float32)
            klayer.set_weights(weights)
            expected = np.asarray(klayer(x))
        converted = interop.from_keras(klayer)
        assert converted.return_sequences == klayer.return_sequences
        np.testing.assert_allclose(converted(x), expected, rtol=1e-4, atol=1e-5)


def test_from_keras_sequential(keras, rng):
    kmodel = keras.Sequential(
        [
            keras.Input((7, 3)),
            keras.layers.LSTM(6, return_sequences=True),
            keras.layers.SimpleRNN(4),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    x = rng.standard_normal((5, 7, 3)).astype(np.float32)
    expected = np.asarray(kmodel(x))
    model = interop.from_keras(kmodel)
    assert isinstance(model, M.Sequential) and [type(l).__name__ for l in model.layers] == [
        "LSTM",
        "SimpleRNN",
        "Dense",
    ]
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="unsupported layer GRU"):
        interop.from_keras(keras.Sequential([keras.Input((7, 3)), keras.layers.GRU(3)]))


def test_a_dense_before_the_recurrence_works_on_each_step(torch, keras, rng):
    # Both frameworks run these; the models were built 2-D and refused with advice to
    # set return_sequences on the Dense.
    x = rng.standard_normal((2, 5, 3))
    seq = torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.LSTM(6, 4, batch_first=True))
    seq = seq.double()
    with torch.no_grad():
        expected = seq(_t(x))[0].numpy()  # a last nn.LSTM returns every step
    np.testing.assert_allclose(interop.from_torch(seq).predict(x), expected, rtol=1e-10,
                               atol=1e-12)
    kmodel = keras.Sequential([keras.Input((5, 3)), keras.layers.Dense(6),
                               keras.layers.SimpleRNN(4)])
    x32 = x.astype(np.float32)
    np.testing.assert_allclose(interop.from_keras(kmodel).predict(x32), np.asarray(kmodel(x32)),
                               rtol=1e-4, atol=1e-5)


def test_from_keras_names_a_weightless_layer_as_unsupported(keras):
    # A built Activation has no weights, and was reported as "not built".
    kmodel = keras.Sequential([keras.Input((5, 3)), keras.layers.LSTM(4),
                               keras.layers.Activation("sigmoid")])
    with pytest.raises(ValueError, match="unsupported layer Activation"):
        interop.from_keras(kmodel)
