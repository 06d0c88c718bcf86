"""The documented error bounds of the vectorised float32 sigmoid and tanh (simd.h), on
every ISA path, over the whole float32 range, read through the public functions."""

from __future__ import annotations

import numpy as np
import pytest

import fastrnn

TANH_MAX_ABS_ERROR = 1.5e-7
SIGMOID_MAX_ABS_ERROR = 1.2e-7
H = 64


def float32_sample(rng):
    """A dense grid where the functions bend, plus random bit patterns of every exponent."""
    bits = rng.integers(0, 2**32, 200_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    bits = bits[np.isfinite(bits)]
    special = np.array([0.0, -0.0, 1e-38, -1e-38, 0.0625, -0.0625, 88.0, 89.0, -87.4, -104.0,
                        3.4e38, -3.4e38], np.float32)
    x = np.concatenate([np.linspace(-20, 20, 200_001, dtype=np.float32), bits, special])
    pad = (-x.size) % H
    return np.concatenate([x, np.zeros(pad, np.float32)]).reshape(-1, 1, H)


def kernel_tanh(x):
    """Elman step with w_ih = I, w_hh = 0, b = 0: h = tanh(x), exactly the kernel's tanh."""
    eye = np.eye(H, dtype=np.float32)
    zeros = np.zeros((H, H), np.float32)
    return fastrnn.rnn_forward(x, None, eye, zeros, np.zeros(H, np.float32)).h_n


def kernel_sigmoid(x):
    """LSTM step with gate i = x and g = tanh(30) = 1: c = sigmoid(x) * 1 exactly."""
    w_ih = np.zeros((4 * H, H), np.float32)
    w_ih[:H] = np.eye(H)
    b = np.zeros(4 * H, np.float32)
    b[2 * H : 3 * H] = 30
    return fastrnn.lstm_forward(x, None, None, w_ih, np.zeros((4 * H, H), np.float32), b).c_n


def test_tanh_error_bound(rng, isa):
    x = float32_sample(rng)
    err = np.abs(kernel_tanh(x) - np.tanh(x[:, 0].astype(np.float64)))
    assert err.max() <= TANH_MAX_ABS_ERROR, (err.max(), x[:, 0].flat[err.argmax()])


def test_sigmoid_error_bound(rng, isa):
    x = float32_sample(rng)
    x64 = x[:, 0].astype(np.float64)
    with np.errstate(over="ignore"):
        exact = 1.0 / (1.0 + np.exp(-x64))
    err = np.abs(kernel_sigmoid(x) - exact)
    assert err.max() <= SIGMOID_MAX_ABS_ERROR, (err.max(), x64.flat[err.argmax()])


@pytest.mark.parametrize("value", [1e30, -1e30, 50.0, -50.0, 3.4e38, -3.4e38])
def test_saturation(isa, value):
    """Large inputs give exactly +-1 from tanh and 1 or (almost) 0 from sigmoid, never NaN.
    (Infinite inputs cannot be fed this way: inf * 0 in the identity projection is NaN.)"""
    x = np.full((1, 1, H), value, np.float32)
    assert np.all(kernel_tanh(x) == np.sign(value))
    s = kernel_sigmoid(x)
    if value > 0:
        assert np.all(s == 1.0)
    else:
        exact = np.exp(np.float64(value))  # sigmoid(x) ~ e^x for x << 0
        assert np.all((s >= 0) & (s <= max(exact * (1 + 1e-6), 1.2e-38)))


def test_nan_propagates(isa):
    x = np.full((1, 1, H), np.nan, np.float32)
    assert np.isnan(kernel_tanh(x)).all()
    assert np.isnan(kernel_sigmoid(x)).all()
