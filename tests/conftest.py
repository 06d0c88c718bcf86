"""Shared fixtures: a seeded rng, the tolerance table, every ISA path and thread count."""

from __future__ import annotations

import time

import numpy as np
import pytest

import fastrnn
from fastrnn import _core

# Kernel vs the float64 oracle (cast down for float32): (rtol, atol).
TOLERANCE = {
    np.float32: (2e-5, 2e-5),
    np.float64: (1e-10, 1e-12),
}


def assert_close(actual, expected, dtype, what=""):
    """Compare a kernel result with the float64 oracle within the dtype's tolerance."""
    rtol, atol = TOLERANCE[np.dtype(dtype).type]
    assert actual.dtype == np.dtype(dtype), f"{what}: dtype {actual.dtype}, want {dtype}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, want {expected.shape}"
    np.testing.assert_allclose(actual, expected.astype(dtype), rtol=rtol, atol=atol, err_msg=what)


@pytest.fixture
def rng():
    return np.random.default_rng(20261130)


@pytest.fixture(params=_core.supported_isas())
def isa(request):
    """Runs the test once per kernel path this CPU supports (FASTRNN_ISA can only lower)."""
    before = _core.active_isa()
    _core.select_isa(request.param)
    yield request.param
    _core.select_isa(before)


@pytest.fixture(params=[1, 2, 3])
def threads(request):
    fastrnn.set_num_threads(request.param)
    yield request.param
    fastrnn.set_num_threads(0)


def make_lstm_case(rng, B, T, I, H, dtype, *, peephole, batch_first, states=True, scale=0.5):
    """Random LSTM inputs (dtype) and output gradients.

    w_hh is scaled by 1/sqrt(H), like the orthogonal initialisation of real models: larger
    recurrent weights make the recurrence chaotic, and then float32 rounding of any
    implementation (the float32 oracle included) grows past a float32 tolerance.
    """
    G = 4

    def r(*shape, s=scale):
        return (rng.standard_normal(shape) * s).astype(dtype)

    x = r(*((B, T, I) if batch_first else (T, B, I)))
    case = dict(
        x=x,
        h0=r(B, H) if states else None,
        c0=r(B, H) if states else None,
        w_ih=r(G * H, I),
        w_hh=r(G * H, H, s=scale / np.sqrt(H)),
        b=r(G * H),
        peephole=r(3, H) if peephole else None,
    )
    grads = dict(dh_seq=r(*((B, T, H) if batch_first else (T, B, H))), dh_n=r(B, H), dc_n=r(B, H))
    return case, grads


def make_rnn_case(rng, B, T, I, H, dtype, *, batch_first, states=True, scale=0.5):
    """Random Elman inputs and output gradients, w_hh scaled as in make_lstm_case."""

    def r(*shape, s=scale):
        return (rng.standard_normal(shape) * s).astype(dtype)

    case = dict(
        x=r(*((B, T, I) if batch_first else (T, B, I))),
        h0=r(B, H) if states else None,
        w_ih=r(H, I),
        w_hh=r(H, H, s=scale / np.sqrt(H)),
        b=r(H),
    )
    grads = dict(dh_seq=r(*((B, T, H) if batch_first else (T, B, H))), dh_n=r(B, H))
    return case, grads


def long_lstm_case(rng, seconds=0.1):
    """An LSTM inference case (B=64, I=H=128, float32) whose call lasts at least `seconds`
    on this machine and thread count: steps double from 300 until it does (tests that
    need a long call; 300 steps took 29-41 ms on one machine). Also the warm-up call."""
    for steps in (300, 600, 1200, 2400, 4800):
        case, _ = make_lstm_case(rng, 64, steps, 128, 128, np.float32, peephole=False,
                                 batch_first=True)
        fastrnn.lstm_forward(**case)  # warm-up: scratch buffers
        start = time.perf_counter()
        fastrnn.lstm_forward(**case)
        if time.perf_counter() - start > seconds:
            break
    return case


def as64(d):
    return {k: (None if v is None else v.astype(np.float64)) for k, v in d.items()}
