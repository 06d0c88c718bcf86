"""The GEMM driver under every sequence-wide product, against NumPy, on every ISA path:
odd sizes around the tile and block edges, strided and reversed operands."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from conftest import TOLERANCE

from fastrnn import _core

SHAPES = [(1, 1, 1), (1, 37, 5), (13, 1, 7), (5, 9, 1), (12, 32, 256), (25, 65, 257),
          (140, 70, 300), (3, 2100, 20)]


@pytest.mark.parametrize("M, N, K", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_matches_numpy(rng, isa, M, N, K, dtype):
    a = rng.standard_normal((M, K)).astype(dtype)
    b = rng.standard_normal((K, N)).astype(dtype)
    c = _core.matmul(a, b)
    rtol, atol = TOLERANCE[dtype]
    # Each element sums K products: scale the absolute tolerance by sqrt(K).
    np.testing.assert_allclose(c, a.astype(np.float64) @ b, rtol=rtol, atol=atol * np.sqrt(K) * 4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_reads_any_strides(rng, isa, dtype):
    """A is packed when strided along k and read in place otherwise; both ways here."""
    big = rng.standard_normal((60, 80)).astype(dtype)
    rtol, atol = TOLERANCE[dtype]
    for a in (big[::-3, 1::2], big[::-3, 3:43], big[7:50, :40]):  # packed, direct, direct
        b = big[5:45, ::-2].T[: a.shape[1]]  # transposed view
        expected = a.astype(np.float64) @ b.astype(np.float64)
        np.testing.assert_allclose(_core.matmul(a, b), expected, rtol=rtol, atol=atol * 40)


# A large product, and two of ~2 MFLOP (the dx and dw shapes of Elman training at B=16,
# T=1, H=256) just above the floor from which a GEMM splits over 2 threads.
@pytest.mark.parametrize("M, K, N", [(300, 200, 150), (16, 256, 256), (256, 16, 256)])
def test_matmul_same_bits_for_any_thread_count(rng, M, K, N):
    import fastrnn

    a = rng.standard_normal((M, K)).astype(np.float32)
    b = rng.standard_normal((K, N)).astype(np.float32)
    out = []
    for n in (1, 2, 3):
        fastrnn.set_num_threads(n)
        out.append(_core.matmul(a, b))
    fastrnn.set_num_threads(0)
    assert np.array_equal(out[0], out[1]) and np.array_equal(out[0], out[2])


@pytest.mark.parametrize("M, N, K", [(3, 1, 1), (5, 17, 33), (100, 70, 300), (7, 130, 16)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_with_b_stored_transposed(rng, isa, M, N, K, dtype):
    """B = W^T of a row-major W (the input projection's w_ih^T) is packed by transposing
    register blocks; edges of every size go through the scalar tail."""
    a = rng.standard_normal((M, K)).astype(dtype)
    w = rng.standard_normal((N, K)).astype(dtype)
    rtol, atol = TOLERANCE[dtype]
    expected = a.astype(np.float64) @ w.T.astype(np.float64)
    np.testing.assert_allclose(_core.matmul(a, w.T), expected, rtol=rtol,
                               atol=atol * np.sqrt(K) * 4)


@pytest.mark.parametrize("M, N, K", [(300, 150, 200), (500, 20, 300), (13, 700, 400),
                                     (200, 400, 64)])
def test_matmul_same_bits_for_any_split_of_c(rng, isa, M, N, K):
    """Threads split C into row groups, panel groups or both (a 2 x 2 or 2 x 3 grid on 4
    or 6 threads), by the shape: one panel and many rows, few rows and many panels, and
    both in between. For each way of packing the operands (A in place or packed, B plain
    or stored transposed), every thread count gives the same bits."""
    import fastrnn

    a_plain = rng.standard_normal((M, K)).astype(np.float32)
    a_strided = np.asfortranarray(a_plain)  # packed: stride along k is not 1
    b_plain = rng.standard_normal((K, N)).astype(np.float32)
    b_transposed = np.ascontiguousarray(b_plain.T).T
    expected = a_plain.astype(np.float64) @ b_plain.astype(np.float64)
    rtol, atol = TOLERANCE[np.float32]
    try:
        for a in (a_plain, a_strided):
            for b in (b_plain, b_transposed):
                out = []
                for n in (1, 2, 3, 4, 6):
                    fastrnn.set_num_threads(n)
                    out.append(_core.matmul(a, b))
                np.testing.assert_allclose(out[0], expected, rtol=rtol, atol=atol * np.sqrt(K) * 4)
                assert all(np.array_equal(out[0], o) for o in out[1:])
    finally:
        fastrnn.set_num_threads(0)


@pytest.mark.parametrize("M", [1, 40, 256, 257])
@pytest.mark.parametrize("N", [48, 96])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_same_bits_for_b_in_place_or_packed(rng, isa, M, N, dtype):
    """With A packed (strided along k, as x^T in the weight gradients), a row-major B is
    read where it lies when its rows lie at most 2 KiB apart, C has at most 256 rows and N
    is whole panels (panels are 4-32 columns wide by kernel: N = 96 is whole panels for
    all, 48 for all but AVX-512 float32); otherwise it is packed. Over three K blocks each
    way must give NumPy's product, in the same bits."""
    import fastrnn

    K = 600
    a = np.asfortranarray(rng.standard_normal((M, K)).astype(dtype))
    b = rng.standard_normal((K, N)).astype(dtype)
    views = [b]
    for row_bytes in (2048, 2048 + 64):  # the farthest rows read in place, and packed
        wide = np.zeros((K, row_bytes // b.itemsize), dtype)
        wide[:, :N] = b
        views.append(wide[:, :N])
    expected = a.astype(np.float64) @ b.astype(np.float64)
    rtol, atol = TOLERANCE[dtype]
    try:
        for threads in (1, 2):
            fastrnn.set_num_threads(threads)
            out = [_core.matmul(a, v) for v in views]
            np.testing.assert_allclose(out[0], expected, rtol=rtol, atol=atol * np.sqrt(K) * 4)
            assert all(np.array_equal(out[0], o) for o in out[1:])
    finally:
        fastrnn.set_num_threads(0)



def _before_guard_page(b, row_stride):
    """b (K, N) copied to a view of row stride row_stride elements whose last element ends
    a page, the next page unreadable: a read past the view's end crashes the process."""
    import ctypes
    import mmap

    K, N = b.shape
    nbytes = ((K - 1) * row_stride + N) * b.itemsize
    pages = -(-nbytes // mmap.PAGESIZE)
    buf = mmap.mmap(-1, (pages + 1) * mmap.PAGESIZE)
    guard_at = ctypes.addressof(ctypes.c_char.from_buffer(buf)) + pages * mmap.PAGESIZE
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    assert libc.mprotect(guard_at, mmap.PAGESIZE, 0) == 0  # PROT_NONE
    raw = np.frombuffer(buf, b.dtype, nbytes // b.itemsize, pages * mmap.PAGESIZE - nbytes)
    view = np.lib.stride_tricks.as_strided(raw, (K, N), (row_stride * b.itemsize, b.itemsize))
    view[...] = b
    return view


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mprotect via ctypes")
@pytest.mark.parametrize("N", [1, 17, 48, 96, 100])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_reads_nothing_past_b(rng, isa, N, dtype):
    """B read in place must not read a whole panel's width past a partial last panel: B
    ends right before an unreadable page, contiguous and with rows 2 KiB apart."""
    a = np.asfortranarray(rng.standard_normal((20, 300)).astype(dtype))
    b = rng.standard_normal((300, N)).astype(dtype)
    expected = _core.matmul(a, np.ascontiguousarray(b))
    for row_stride in (N, 2048 // b.itemsize):
        assert np.array_equal(_core.matmul(a, _before_guard_page(b, row_stride)), expected)

# (M, K, N) of two products around gemm_pair's rules for running them side by side on 2
# threads (each has M, N, K > 0, the smaller holds >= 0.75 of the larger's multiply-adds,
# together >= 2^20): on each side of the balance and of the floor, one empty product, and
# a long-K pair of near-equal products like the weight gradients at H=64.
PAIRS = [
    ((64, 256, 64), (48, 256, 64)),   # 0.75: side by side
    ((64, 256, 64), (47, 256, 64)),   # below 0.75: one after the other
    ((32, 256, 64), (32, 256, 64)),   # 2^20 together: side by side
    ((31, 256, 64), (32, 256, 64)),   # just below the floor
    ((64, 300, 64), (0, 300, 64)),    # one empty
    ((64, 0, 64), (64, 256, 64)),     # K = 0: zeros
    ((64, 4096, 64), (64, 4095, 64)),
]


@pytest.mark.parametrize("s0, s1", PAIRS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_pair_same_bits_as_two_matmuls(rng, s0, s1, dtype):
    """Side by side or not, each product is computed as gemm() alone computes it, on any
    thread count: the same bits as two matmul calls, and NumPy's products."""
    import fastrnn

    def operands(M, K, N):
        a = np.asfortranarray(rng.standard_normal((M, K)).astype(dtype))  # x^T: packed
        return a, rng.standard_normal((K, N)).astype(dtype)

    a0, b0 = operands(*s0)
    a1, b1 = operands(*s1)
    rtol, atol = TOLERANCE[dtype]
    try:
        for threads in (1, 2, 3):
            fastrnn.set_num_threads(threads)
            c0, c1 = _core.matmul_pair(a0, b0, a1, b1)
            for c, a, b in ((c0, a0, b0), (c1, a1, b1)):
                assert c.shape == (a.shape[0], b.shape[1])
                expected = a.astype(np.float64) @ b.astype(np.float64)
                np.testing.assert_allclose(c, expected, rtol=rtol,
                                           atol=atol * np.sqrt(max(a.shape[1], 1)) * 4)
                assert np.array_equal(c, _core.matmul(a, b))
    finally:
        fastrnn.set_num_threads(0)


def test_matmul_pair_rejects_bad_input():
    a = np.ones((4, 5), np.float32)
    with pytest.raises(ValueError, match="a1 and b1"):
        _core.matmul_pair(a, a.T, a, a)
    with pytest.raises(TypeError, match="b0"):
        _core.matmul_pair(a, a.T.astype(np.float64), a, a.T)
