"""The C++ LSTM against the NumPy oracle: forward and every gradient, every ISA path."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import as64, assert_close, make_lstm_case

import fastrnn
from fastrnn import reference

# (B, T, I, H): ones, sizes around the micro-kernel tiles (4..12 rows, 4..32 columns), one
# case past the GEMM blocks (T*B > 128 rows, I > 256) so every blocking loop turns, and both
# forward paths: w_hh read as stored (B <= 2 or T <= 8) and packed (the others); H = 64
# and 128 let the backward read w_hh as stored too (H a multiple of its 4-vector blocks).
SHAPES = [
    (2, 5, 8, 64),
    (1, 12, 8, 128),
    (5, 9, 7, 33),
    (7, 12, 16, 17),
    (1, 1, 1, 1),
    (1, 1, 3, 1),
    (3, 5, 7, 6),
    (2, 4, 17, 33),
    (8, 3, 16, 16),
    (9, 6, 33, 65),
    (1, 20, 8, 9),
    (13, 11, 300, 24),
    (64, 17, 5, 9),  # T*B >= 1024: the weight gradients are computed transposed
    # Weights too large per batch row for a fused projection (LSTM 8 MiB, Elman 2 MiB of
    # panels for 4 rows): contiguous x projected by a separate GEMM (core recurrence.h).
    (4, 10, 512, 512),
]


def run_both(case, grads, batch_first, *, dh_seq=True, dh_n=True, dc_n=True):
    kw = dict(batch_first=batch_first, training=True)
    out = fastrnn.lstm_forward(**case, **kw)
    ref = reference.lstm_forward(**as64(case), **kw)
    g64 = as64(grads)
    args = [
        grads["dh_seq"] if dh_seq else None,
        grads["dh_n"] if dh_n else None,
        grads["dc_n"] if dc_n else None,
    ]
    args64 = [
        g64["dh_seq"] if dh_seq else None,
        g64["dh_n"] if dh_n else None,
        g64["dc_n"] if dc_n else None,
    ]
    g = fastrnn.lstm_backward(*args, out.cache)
    gr = reference.lstm_backward(*args64, ref.cache)
    return out, ref, g, gr


def assert_all_close(out, ref, g, gr, dtype):
    for name in ("h_seq", "h_n", "c_n"):
        assert_close(getattr(out, name), getattr(ref, name), dtype, name)
    for name in g._fields:
        a, e = getattr(g, name), getattr(gr, name)
        if e is None:
            assert a is None, name
        else:
            assert_close(a, e, dtype, name)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B{}T{}I{}H{}".format(*s))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch_first", [True, False], ids=["bf", "tm"])
@pytest.mark.parametrize("peephole", [False, True], ids=["plain", "peep"])
def test_lstm_matches_reference(rng, isa, shape, dtype, batch_first, peephole):
    case, grads = make_lstm_case(rng, *shape, dtype, peephole=peephole, batch_first=batch_first)
    assert_all_close(*run_both(case, grads, batch_first), dtype)


def chunked_steps(B, GH, dtype):
    """Steps per chunk of the backward's gradient GEMMs for this shape; the tests below
    take T past one chunk (T = chunk + 1: a last chunk of one step, which holds step 0) and
    past two (2 * chunk + 3). The chunking does not depend on the kernel path, so they run
    on the default one. They compare float64 only: several chunks need sums of more
    than 2000 products per weight gradient, where even the float32 oracle misses the float32
    tolerance (by up to 1.3x, measured). The chunking is the same code for both types, and
    the float32 kernels are compared in the other shapes and across threads below."""
    return fastrnn._core._grad_chunk_steps(10**6, B, GH, dtype == np.float64)


def test_grad_chunk_steps_refuses_bad_arguments():
    f = fastrnn._core._grad_chunk_steps
    for args, message in [((0, 1, 1, False), "`T` must be >= 1, got 0"),
                          ((1, -2, 1, True), "`B` must be >= 1, got -2"),
                          ((1, 1, 0, False), "`GH` must be >= 1, got 0")]:
        with pytest.raises(ValueError, match=message):
            f(*args)
    with pytest.raises(TypeError):
        f("16", 1, 1, False)
    assert f(5, 1, 1, False) == 5  # never more steps than the sequence has


@pytest.mark.parametrize("dtype", [np.float64])
@pytest.mark.parametrize("layout", ["bf", "tm"])
@pytest.mark.parametrize("variant", ["plain", "peep", "no-states"])
@pytest.mark.parametrize("extra", [1, "2c+3"])
def test_lstm_backward_in_chunks_matches_reference(rng, dtype, layout, variant, extra):
    B, I, H = 128, 5, 128
    chunk = chunked_steps(B, 4 * H, dtype)
    T = chunk + 1 if extra == 1 else 2 * chunk + 3
    assert chunk < T <= 64, chunk  # several chunks, and a reference that stays cheap
    case, grads = make_lstm_case(rng, B, T, I, H, dtype, peephole=variant == "peep",
                                 batch_first=layout == "bf", states=variant != "no-states")
    assert_all_close(*run_both(case, grads, layout == "bf"), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("peephole", [False, True], ids=["plain", "peep"])
def test_lstm_no_states_no_output_grads(rng, isa, dtype, peephole):
    case, grads = make_lstm_case(rng, 4, 6, 5, 7, dtype, peephole=peephole, batch_first=True,
                                 states=False)
    for flags in [(False, True, True), (True, False, False), (False, False, True)]:
        res = run_both(case, grads, True, dh_seq=flags[0], dh_n=flags[1], dc_n=flags[2])
        assert_all_close(*res, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("T", [7, 12])  # w_hh as stored / packed (with or without fusion)
def test_lstm_reads_any_view_of_x(rng, isa, dtype, T):
    """Sliced, strided, reversed and transposed views are read in place."""
    B, I, H = 5, 6, 9
    case, grads = make_lstm_case(rng, B, T, I, H, dtype, peephole=True, batch_first=True)
    big = rng.standard_normal((2 * B + 1, 3 * T, 2 * I)).astype(dtype)
    views = {
        "strided": big[1::2, ::3, ::2],
        "reversed": big[::-2, -T:, :I][:B],
        "time_major_T": np.ascontiguousarray(big[:B, :T, :I].transpose(1, 0, 2)).transpose(1, 0, 2),
        "fortran": np.asfortranarray(big[:B, :T, :I]),
    }
    for name, x in views.items():
        assert x.shape == (B, T, I), name
        assert not x.flags.c_contiguous, name
        case["x"] = x
        out, ref, g, gr = run_both(case, grads, True)
        assert_all_close(out, ref, g, gr, dtype)
        assert g.dx.flags.c_contiguous


def test_lstm_strided_states_and_grads(rng, isa):
    """h0, c0, dh_n, dc_n with a row stride, dh_seq as a sliced view."""
    B, T, I, H = 3, 4, 5, 6
    dtype = np.float64
    case, grads = make_lstm_case(rng, B, T, I, H, dtype, peephole=False, batch_first=True)
    wide = rng.standard_normal((B, 2 * H))
    case["h0"], case["c0"] = wide[:, :H], wide[:, H:]
    grads["dh_n"], grads["dc_n"] = wide[:, H:] * 2, wide[:, :H] * 3
    grads["dh_seq"] = rng.standard_normal((B, 2 * T, H))[:, ::2]
    assert_all_close(*run_both(case, grads, True), dtype)


# Sizes large enough for the kernels to use 2-3 threads (they keep small calls on one):
# a batch of 1 and of 5 splits hidden units with a barrier per step, 13 and 16 split rows.
# B=64 at H=256 splits units too: its fused panels (1.1 MiB float32, 2.2 MiB float64)
# outgrow half an L2 of up to 2 (float32) or 4 MiB (float64), core run_steps.
THREADED_SHAPES = [
    (1, 20, 40, 256),
    (5, 20, 40, 128),
    (13, 20, 40, 128),
    (16, 20, 24, 96),
    (64, 17, 24, 40),
    (64, 17, 8, 256),  # two chunks of the backward's gradient GEMMs
    # I = H: on 2 threads the weight-gradient GEMMs run side by side (core gemm_pair),
    # with few rows (dG^T as the A side) and with many (transposed, 1088 rows).
    (4, 20, 64, 64),
    (64, 17, 48, 48),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", THREADED_SHAPES, ids=lambda s: "B{}T{}I{}H{}".format(*s))
def test_lstm_bitwise_identical_across_threads(rng, isa, dtype, shape):
    case, grads = make_lstm_case(rng, *shape, dtype, peephole=True, batch_first=True)
    results = []
    for n in (1, 2, 3):
        fastrnn.set_num_threads(n)
        out = fastrnn.lstm_forward(**case, training=True)
        g = fastrnn.lstm_backward(grads["dh_seq"], grads["dh_n"], grads["dc_n"], out.cache)
        results.append([out.h_seq, out.h_n, out.c_n, *g])
    fastrnn.set_num_threads(0)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert np.array_equal(a, b)


def test_lstm_inference_equals_training_forward(rng, isa):
    case, _ = make_lstm_case(rng, 4, 9, 5, 6, np.float32, peephole=True, batch_first=False)
    a = fastrnn.lstm_forward(**case, batch_first=False, training=False)
    b = fastrnn.lstm_forward(**case, batch_first=False, training=True)
    assert a.cache is None
    for name in ("h_seq", "h_n", "c_n"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


def test_lstm_long_inference_is_chunked_correctly(rng):
    """More steps than one inference chunk holds (8 MiB of gates): the chunks join up.
    x strided along I takes the unfused path, which projects the inputs chunk by chunk."""
    B, T, I, H = 64, 70, 3, 128  # one float64 step of gates = 256 KiB: 32 steps a chunk
    case, _ = make_lstm_case(rng, B, T, I, H, np.float64, peephole=True, batch_first=True)
    case["x"] = np.repeat(case["x"], 2, axis=2)[:, :, ::2]
    assert case["x"].strides[2] != case["x"].itemsize
    out = fastrnn.lstm_forward(**case)
    ref = reference.lstm_forward(**case)
    for name in ("h_seq", "h_n", "c_n"):
        assert_close(getattr(out, name), getattr(ref, name), np.float64, name)
