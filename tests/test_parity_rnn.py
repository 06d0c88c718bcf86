"""The C++ Elman RNN against the NumPy oracle: forward and every gradient, every ISA path."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import as64, assert_close, make_rnn_case
from test_parity_lstm import SHAPES, chunked_steps

import fastrnn
from fastrnn import reference


def run_both(case, grads, nonlinearity, batch_first, *, dh_seq=True, dh_n=True):
    kw = dict(nonlinearity=nonlinearity, batch_first=batch_first, training=True)
    out = fastrnn.rnn_forward(**case, **kw)
    ref = reference.rnn_forward(**as64(case), **kw)
    g64 = as64(grads)
    g = fastrnn.rnn_backward(grads["dh_seq"] if dh_seq else None,
                             grads["dh_n"] if dh_n else None, out.cache)
    gr = reference.rnn_backward(g64["dh_seq"] if dh_seq else None,
                                g64["dh_n"] if dh_n else None, ref.cache)
    return out, ref, g, gr


def assert_all_close(out, ref, g, gr, dtype):
    for name in ("h_seq", "h_n"):
        assert_close(getattr(out, name), getattr(ref, name), dtype, name)
    for name in g._fields:
        assert_close(getattr(g, name), getattr(gr, name), dtype, name)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B{}T{}I{}H{}".format(*s))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch_first", [True, False], ids=["bf", "tm"])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_matches_reference(rng, isa, shape, dtype, batch_first, nonlinearity):
    case, grads = make_rnn_case(rng, *shape, dtype, batch_first=batch_first)
    assert_all_close(*run_both(case, grads, nonlinearity, batch_first), dtype)


@pytest.mark.parametrize("dtype", [np.float64])
@pytest.mark.parametrize("layout", ["bf", "tm"])
@pytest.mark.parametrize("states", [True, False])
@pytest.mark.parametrize("extra", [1, "2c+3"])
def test_rnn_backward_in_chunks_matches_reference(rng, dtype, layout, states, extra):
    B, I, H = 128, 5, 512
    chunk = chunked_steps(B, H, dtype)
    T = chunk + 1 if extra == 1 else 2 * chunk + 3
    assert chunk < T <= 64, chunk
    case, grads = make_rnn_case(rng, B, T, I, H, dtype, batch_first=layout == "bf",
                                states=states, scale=0.1)
    assert_all_close(*run_both(case, grads, "tanh", layout == "bf"), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rnn_optional_arguments(rng, isa, dtype):
    case, grads = make_rnn_case(rng, 4, 6, 5, 7, dtype, batch_first=False, states=False)
    for flags in [(False, True), (True, False), (False, False)]:
        res = run_both(case, grads, "tanh", False, dh_seq=flags[0], dh_n=flags[1])
        assert_all_close(*res, dtype)


@pytest.mark.parametrize("T", [6, 12])  # w_hh as stored / packed
def test_rnn_reads_any_view_of_x(rng, isa, T):
    B, I, H = 4, 5, 8
    case, grads = make_rnn_case(rng, B, T, I, H, np.float64, batch_first=False)
    big = rng.standard_normal((3 * T, B + 2, 2 * I))
    for x in (big[::-3, 1:-1, ::2], big[::-3, 1:-1, 3:3 + I]):  # unfused and fused paths
        case["x"] = x
        assert case["x"].shape == (T, B, I)
        assert_all_close(*run_both(case, grads, "tanh", False), np.float64)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
# I = H in the last two: on 2 threads the weight-gradient GEMMs run side by side (core
# gemm_pair), with few rows and with many (transposed).
@pytest.mark.parametrize("shape", [(1, 40, 40, 512), (5, 30, 40, 256), (16, 30, 40, 160),
                                   (128, 17, 8, 512), (16, 30, 160, 160), (128, 17, 64, 64)],
                         ids=lambda s: "B{}T{}I{}H{}".format(*s))
def test_rnn_bitwise_identical_across_threads(rng, isa, nonlinearity, shape):
    """Sizes large enough for 2-3 threads (small calls stay on one)."""
    case, grads = make_rnn_case(rng, *shape, np.float32, batch_first=True, scale=0.1)
    results = []
    for n in (1, 2, 3):
        fastrnn.set_num_threads(n)
        out = fastrnn.rnn_forward(**case, nonlinearity=nonlinearity, training=True)
        g = fastrnn.rnn_backward(grads["dh_seq"], grads["dh_n"], out.cache)
        results.append([out.h_seq, out.h_n, *g])
    fastrnn.set_num_threads(0)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert np.array_equal(a, b)
