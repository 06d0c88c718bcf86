"""The NEON kernels run and agree with the NumPy reference and the portable kernels: the
core and both aarch64 kernel sets, built for aarch64 Linux, run in an emulator
(tools/arm_emulator.py: clang from `ziglang`, the CPU emulator `unicorn`)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from fastrnn import reference

from conftest import assert_close

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

pytest.importorskip("ziglang", reason="the aarch64 compiler comes with pip install '.[cross]'")
pytest.importorskip("unicorn", reason="the emulator comes with pip install '.[cross]'")
pytest.importorskip("elftools", reason="pyelftools comes with pip install '.[cross]'")

import arm_emulator  # noqa: E402

# (T, B, I, H, h0 given, weights off): the last is how many elements w_ih and w_hh start
# past a 64-byte line. With NEON's 3-row tiles these shapes take every step path:
# - B <= 2 or T <= 8 read w_hh as stored; the input projection is a GEMV at up to 12
#   passes (T * ceil(B / 3)), a GEMM beyond (T = 6, B = 7: 18 passes; T = 40, B = 1);
# - weights one element off a 16-byte vector: read from the vector boundary before them
#   (T = 4), or w_hh copied onto lines first (T = 40 >= 32 steps);
# - B = 7: row tiles of 3, 2 and 2; B = 3, T = 10: w_hh packed, projection fused in;
# - T * B = 1120 >= 1024: weight gradients as transposed GEMMs, for the LSTM in two
#   chunks of steps (64 + 6).
# H and I leave vector tails.
SHAPES = [(3, 1, 5, 9, False, 0), (4, 2, 16, 8, True, 1), (6, 7, 33, 20, True, 0),
          (10, 3, 7, 17, True, 0), (40, 1, 12, 8, True, 1), (70, 16, 6, 32, False, 0)]
# The 1120-row case in float64 only: in float32 a weight gradient there sums 1120 terms
# (up to ~100 with relu), and where they cancel the sum's rounding exceeds the 2e-5
# relative tolerance, in the reference's float32 cast as in any kernel.
CASES = [(shape, dtype) for shape in SHAPES for dtype in (np.float32, np.float64)
         if dtype == np.float64 or shape[0] * shape[1] < 1024]
ISAS = ("neon", "generic")


@pytest.fixture(scope="module")
def exe(tmp_path_factory):
    return arm_emulator.build(tmp_path_factory.mktemp("arm"))


def _compare(got, want, dtype):
    for name, value in want.items():
        for isa in ISAS:
            assert_close(got[isa][name], value, dtype, f"{isa} {name}")
        assert_close(got["neon"][name], got["generic"][name].astype(np.float64), dtype,
                     f"neon vs generic {name}")


def _data(rng, dtype, T, B, I, H, G):
    draw = lambda *shape, s=0.5: (rng.standard_normal(shape) * s).astype(dtype)  # noqa: E731
    # Weights at the usual 1/sqrt(fan-in) scale: larger ones make a 70-step Elman RNN
    # chaotic, and its gradients then amplify rounding in every implementation alike.
    return dict(x=draw(T, B, I), h0=draw(B, H), c0=draw(B, H), w_ih=draw(G * H, I, s=I**-0.5),
                w_hh=draw(G * H, H, s=H**-0.5), b=draw(G * H), peephole=draw(3, H),
                dh_seq=draw(T, B, H), dh_n=draw(B, H), dc_n=draw(B, H))


@pytest.mark.parametrize("peephole", [False, True])
@pytest.mark.parametrize("shape,dtype", CASES)
def test_lstm_on_neon_matches_reference_and_generic(exe, shape, dtype, peephole):
    T, B, I, H, given, off = shape
    rng = np.random.default_rng(hash((T, B, I, H, peephole)) % 2**32)
    d = _data(rng, dtype, T, B, I, H, 4)
    h0 = d["h0"] if given else None
    c0 = d["c0"] if given else None
    p = d["peephole"] if peephole else None
    f64 = {k: v.astype(np.float64) for k, v in d.items()}
    out = reference.lstm_forward(f64["x"], f64["h0"] if given else None,
                                 f64["c0"] if given else None, f64["w_ih"], f64["w_hh"],
                                 f64["b"], f64["peephole"] if peephole else None,
                                 batch_first=False, training=True)
    grads = reference.lstm_backward(f64["dh_seq"], f64["dh_n"], f64["dc_n"], out.cache)
    want = dict(h_seq=out.h_seq, h_n=out.h_n, c_n=out.c_n, dx=grads.dx, dh0=grads.dh0,
                dc0=grads.dc0, dw_ih=grads.dw_ih, dw_hh=grads.dw_hh, db=grads.db)
    if peephole:
        want["dpeephole"] = grads.dpeephole
    got = {isa: arm_emulator.lstm(exe, isa, d["x"], h0, c0, d["w_ih"], d["w_hh"], d["b"], p,
                                  d["dh_seq"], d["dh_n"], d["dc_n"], weights_off=off)
           for isa in ISAS}
    _compare(got, want, dtype)


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("shape,dtype", CASES)
def test_rnn_on_neon_matches_reference_and_generic(exe, shape, dtype, relu):
    T, B, I, H, given, off = shape
    rng = np.random.default_rng(hash((T, B, I, H, relu, 1)) % 2**32)
    d = _data(rng, dtype, T, B, I, H, 1)
    h0 = d["h0"] if given else None
    f64 = {k: v.astype(np.float64) for k, v in d.items()}
    out = reference.rnn_forward(f64["x"], f64["h0"] if given else None, f64["w_ih"],
                                f64["w_hh"], f64["b"], nonlinearity="relu" if relu else "tanh",
                                batch_first=False, training=True)
    grads = reference.rnn_backward(f64["dh_seq"], f64["dh_n"], out.cache)
    want = dict(h_seq=out.h_seq, h_n=out.h_n, dx=grads.dx, dh0=grads.dh0, dw_ih=grads.dw_ih,
                dw_hh=grads.dw_hh, db=grads.db)
    got = {isa: arm_emulator.rnn(exe, isa, d["x"], h0, d["w_ih"], d["w_hh"], d["b"],
                                 d["dh_seq"], d["dh_n"], relu=relu, weights_off=off)
           for isa in ISAS}
    _compare(got, want, dtype)


def test_a_case_too_large_for_the_harness_is_refused(exe):
    x = np.zeros((1, 1, 1), np.float64)
    H = 600  # w_hh alone: 4 * 600 * 600 * 8 bytes, more than fr_io's 16 MiB
    w = np.zeros((4 * H, H), np.float64)
    with pytest.raises(ValueError, match="fr_io"):
        arm_emulator.lstm(exe, "neon", x, None, None, np.zeros((4 * H, 1)), w,
                          np.zeros(4 * H), None, np.zeros((1, 1, H)), np.zeros((1, H)),
                          np.zeros((1, H)))


@pytest.mark.parametrize("bad", ["h0 shape", "w_hh dtype", "weights_off"])
def test_wrong_inputs_are_refused_before_running(exe, bad):
    T, B, I, H = 2, 1, 3, 4
    f = np.float32
    args = dict(x=np.zeros((T, B, I), f), h0=np.zeros((B, H), f), c0=np.zeros((B, H), f),
                w_ih=np.zeros((4 * H, I), f), w_hh=np.zeros((4 * H, H), f),
                b=np.zeros(4 * H, f), peephole=None, dh_seq=np.zeros((T, B, H), f),
                dh_n=np.zeros((B, H), f), dc_n=np.zeros((B, H), f))
    off = 0
    if bad == "h0 shape":
        args["h0"] = np.zeros((B, H + 1), f)
    elif bad == "w_hh dtype":
        args["w_hh"] = args["w_hh"].astype(np.float64)
    else:
        off = -1
    with pytest.raises(ValueError, match=bad.split()[0]):
        arm_emulator.lstm(exe, "neon", weights_off=off, **args)
