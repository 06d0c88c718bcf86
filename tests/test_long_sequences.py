"""Long sequences and extremes: T = 100,000 steps with B = 1 run forward and backward (no
stack overflow, even on a small thread stack), agree with the oracle on a prefix, use the
memory the design predicts, and saturating inputs (|x| ~ 1e4) give finite results."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
from conftest import as64, assert_close, make_lstm_case, make_rnn_case

import fastrnn
from fastrnn import reference

T_LONG, B, I, H = 100_000, 1, 4, 8
PREFIX = 300


def _prefix_grads(shape_bt, dtype, rng):
    """dh_seq that is zero after PREFIX steps: the gradients of the whole sequence then
    equal those of the prefix alone, which the oracle can afford."""
    dh = np.zeros(shape_bt + (H,), dtype)
    dh[:, :PREFIX] = rng.standard_normal((B, PREFIX, H)) * 0.5
    return dh


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lstm_100k_steps_match_the_oracle_on_a_prefix(rng, dtype):
    case, _ = make_lstm_case(rng, B, T_LONG, I, H, dtype, peephole=True, batch_first=True)
    dh_seq = _prefix_grads((B, T_LONG), dtype, rng)
    out = fastrnn.lstm_forward(**case, training=True)
    assert np.isfinite(out.h_seq).all() and np.isfinite(out.c_n).all()
    # the training cache holds what the design says and nothing more
    itemsize = np.dtype(dtype).itemsize
    c = out.cache
    assert c.gates.nbytes == T_LONG * B * 4 * H * itemsize
    assert c.c_seq.nbytes == T_LONG * B * H * itemsize
    assert out.h_seq.nbytes == T_LONG * B * H * itemsize
    infer = fastrnn.lstm_forward(**case)
    assert np.array_equal(infer.h_seq, out.h_seq) and np.array_equal(infer.c_n, out.c_n)

    g = fastrnn.lstm_backward(dh_seq, None, None, out.cache)
    prefix = {**case, "x": case["x"][:, :PREFIX]}
    ref = reference.lstm_forward(**as64(prefix), training=True)
    gr = reference.lstm_backward(dh_seq[:, :PREFIX].astype(np.float64), None, None, ref.cache)
    assert_close(out.h_seq[:, :PREFIX], ref.h_seq, dtype, "h_seq prefix")
    assert_close(g.dx[:, :PREFIX], gr.dx, dtype, "dx prefix")
    assert not g.dx[:, PREFIX:].any(), "dx after the last nonzero dh must be exactly zero"
    for name in ("dh0", "dc0", "dw_ih", "dw_hh", "db", "dpeephole"):
        assert_close(getattr(g, name), getattr(gr, name), dtype, name)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_100k_steps_match_the_oracle_on_a_prefix(rng, nonlinearity):
    dtype = np.float32
    case, _ = make_rnn_case(rng, B, T_LONG, I, H, dtype, batch_first=False)
    dh_seq = np.zeros((T_LONG, B, H), dtype)
    dh_seq[:PREFIX] = rng.standard_normal((PREFIX, B, H)) * 0.5
    kw = dict(nonlinearity=nonlinearity, batch_first=False)
    out = fastrnn.rnn_forward(**case, **kw, training=True)
    assert np.isfinite(out.h_seq).all()
    g = fastrnn.rnn_backward(dh_seq, None, out.cache)
    prefix = {**case, "x": case["x"][:PREFIX]}
    ref = reference.rnn_forward(**as64(prefix), **kw, training=True)
    gr = reference.rnn_backward(dh_seq[:PREFIX].astype(np.float64), None, ref.cache)
    assert_close(out.h_seq[:PREFIX], ref.h_seq, dtype, "h_seq prefix")
    assert not g.dx[PREFIX:].any()
    for name in g._fields:
        a = getattr(g, name)
        assert_close(a[:PREFIX] if name == "dx" else a, getattr(gr, name), dtype, name)


def test_long_sequence_on_a_small_thread_stack(rng):
    """Nothing on the stack grows with T: 100,000 steps run in a thread with a 256 KiB
    stack (a recursion or a T-sized stack array would crash it)."""
    case, grads = make_lstm_case(rng, B, T_LONG, I, H, np.float32, peephole=False,
                                 batch_first=True)
    rcase, _ = make_rnn_case(rng, B, T_LONG, I, H, np.float32, batch_first=True)
    result = {}

    def work():
        out = fastrnn.lstm_forward(**case, training=True)
        result["lstm"] = fastrnn.lstm_backward(grads["dh_seq"], None, None, out.cache)
        rout = fastrnn.rnn_forward(**rcase, training=True)
        result["rnn"] = fastrnn.rnn_backward(np.ones_like(rout.h_seq), None, rout.cache)

    old = threading.stack_size(256 * 1024)
    try:
        th = threading.Thread(target=work)
        th.start()
        th.join(120)
    finally:
        threading.stack_size(old)
    assert not th.is_alive()
    assert np.isfinite(result["lstm"].dw_hh).all() and np.isfinite(result["rnn"].dx).all()


MEMORY_SCRIPT = textwrap.dedent(
    r"""
    import json, sys
    import numpy as np
    import fastrnn

    T, B, I, H = (int(v) for v in sys.argv[1:5])
    def status(key):
        for line in open("/proc/self/status"):
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    def reset_peak():
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    def measure(fn):
        reset_peak()
        before = status("VmRSS:")
        result = fn()
        return result, status("VmHWM:") - before

    rng = np.random.default_rng(0)
    r = lambda *s, k=0.3: (rng.standard_normal(s) * k).astype(np.float32)
    x, w_ih, w_hh, b, p = r(B, T, I), r(4 * H, I), r(4 * H, H, k=0.1), r(4 * H), r(3, H)
    fastrnn.set_num_threads(1)
    small = fastrnn.lstm_forward(x[:, :3], None, None, w_ih, w_hh, b, p, training=True)
    fastrnn.lstm_backward(np.ones_like(small.h_seq), None, None, small.cache)  # warm-up
    report = {}
    _, report["inference"] = measure(lambda: fastrnn.lstm_forward(x, None, None, w_ih, w_hh, b, p))
    out, report["training_forward"] = measure(
        lambda: fastrnn.lstm_forward(x, None, None, w_ih, w_hh, b, p, training=True))
    dh = np.ones_like(out.h_seq)
    _, report["backward"] = measure(lambda: fastrnn.lstm_backward(dh, None, None, out.cache))
    print(json.dumps(report))
    """
)


def test_long_sequence_memory_is_as_predicted():
    """Peak resident growth of each call against the design: inference keeps h_seq plus
    at most one 8 MiB chunk of gates; a training forward keeps h_seq, gates (4H) and c_seq
    (H) per step; backward returns dx and keeps dG for one chunk of steps only (about
    4 MiB; T*B*4H would be 12 MiB here)."""
    T, itemsize = T_LONG, 4
    proc = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, str(T), str(B), str(I), str(H)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    mib = 1 << 20
    h_seq = T * B * H * itemsize
    dx = T * B * I * itemsize
    predicted = {
        "inference": h_seq,
        "training_forward": T * B * (4 * H + H) * itemsize + h_seq,
        "backward": dx + 4 * mib,
    }
    slack = {"inference": 8 * mib + 2 * mib, "training_forward": 3 * mib, "backward": 3 * mib}
    report = {k: (got[k] / mib, predicted[k] / mib) for k in got}
    for k, limit in predicted.items():
        assert got[k] <= limit + slack[k], f"{k}: MiB (measured, predicted) {report}"
    # The dG chunk may reuse scratch an earlier call left cached; the outputs cannot.
    lower = {"training_forward": predicted["training_forward"], "backward": dx}
    for k, v in lower.items():
        assert got[k] >= 0.8 * v, f"{k}: less than predicted? {report}"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch_first", [True, False])
def test_saturating_inputs_give_finite_results(rng, dtype, batch_first):
    Bs, Ts, Is, Hs = 3, 200, 5, 17
    for scale in (1e4, -1e4):
        case, grads = make_lstm_case(rng, Bs, Ts, Is, Hs, dtype, peephole=True,
                                     batch_first=batch_first)
        case["x"] = (case["x"] * scale).astype(dtype)
        out = fastrnn.lstm_forward(**case, batch_first=batch_first, training=True)
        g = fastrnn.lstm_backward(grads["dh_seq"], grads["dh_n"], grads["dc_n"], out.cache)
        for name, a in [("h_seq", out.h_seq), ("c_n", out.c_n), *zip(g._fields, g)]:
            assert np.isfinite(a).all(), f"LSTM {name} not finite at |x| ~ {abs(scale)}"
        assert np.abs(out.h_seq).max() <= 1.0
        rcase, rgrads = make_rnn_case(rng, Bs, Ts, Is, Hs, dtype, batch_first=batch_first)
        rcase["x"] = (rcase["x"] * scale).astype(dtype)
        rout = fastrnn.rnn_forward(**rcase, batch_first=batch_first, training=True)
        rg = fastrnn.rnn_backward(rgrads["dh_seq"], rgrads["dh_n"], rout.cache)
        for name, a in [("h_seq", rout.h_seq), *zip(rg._fields, rg)]:
            assert np.isfinite(a).all(), f"RNN {name} not finite at |x| ~ {abs(scale)}"
        assert np.abs(rout.h_seq).max() <= 1.0
