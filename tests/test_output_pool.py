"""Arrays of 256 KiB and more that a call returns come from a pool that takes them back
when NumPy drops them (csrc/core/workspace.cpp): repeated calls of one shape must not
fault in fresh pages, recycled memory must never leak into a result, and two live arrays
must never share it."""

from __future__ import annotations

import gc
import os
import resource
import threading

import numpy as np
import pytest
from conftest import make_lstm_case, make_rnn_case

import fastrnn
from fastrnn import _core

# The training cache's gates, (T, B, 4H) float32, are 37.7 MB: above glibc's largest
# mmap threshold (32 MiB), so without the pool every call maps, faults in and zeroes them.
B, T, I, H = 4096, 9, 16, 64


def minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def test_repeated_training_calls_reuse_the_output_memory(rng):
    case, _ = make_lstm_case(rng, B, T, I, H, np.float32, peephole=False, batch_first=True)
    assert 4 * H * B * T * 4 > 32 << 20
    for _ in range(2):  # warm-up: the pool and the scratch fill here
        out = fastrnn.lstm_forward(**case, training=True)
        del out
    before = minor_faults()
    for _ in range(4):
        out = fastrnn.lstm_forward(**case, training=True)
        del out
    faults = minor_faults() - before
    # Fresh 37.7 MB of gates cost >= 18 faults a call even in 2 MiB huge pages (~9200 in
    # 4 KiB pages); recycled memory costs none. The margin is for the interpreter's own.
    assert faults < 16, f"{faults} page faults in 4 calls of one shape"


@pytest.mark.parametrize("cell", ["lstm", "rnn"])
def test_recycled_memory_never_reaches_a_result(rng, cell):
    """Poison every returned array, drop it, call again: the results must not change."""
    Bs, Ts = 64, 40  # every sequence array >= 256 KiB, so all of them are pooled
    if cell == "lstm":
        case, grads = make_lstm_case(rng, Bs, Ts, 32, 32, np.float32, peephole=True,
                                     batch_first=True)

        def run():
            out = fastrnn.lstm_forward(**case, training=True)
            return out, fastrnn.lstm_backward(grads["dh_seq"], grads["dh_n"], grads["dc_n"],
                                              out.cache)
    else:
        case, grads = make_rnn_case(rng, Bs, Ts, 32, 32, np.float32, batch_first=True)

        def run():
            out = fastrnn.rnn_forward(**case, training=True)
            return out, fastrnn.rnn_backward(grads["dh_seq"], grads["dh_n"], out.cache)

    def arrays(out, g):
        found = [a for a in (*out[:-1], *g) if isinstance(a, np.ndarray)]
        found += [v for v in vars(out.cache).values() if isinstance(v, np.ndarray)]
        return found

    out, g = run()
    want = [a.copy() for a in arrays(out, g)]
    assert any(a.nbytes >= 256 << 10 for a in want)
    for _ in range(3):
        for a in arrays(out, g):
            if a.flags.writeable and not any(np.shares_memory(a, v) for v in case.values()
                                             if isinstance(v, np.ndarray)):
                a.fill(np.nan)
        del a
        out = g = None
        out, g = run()
        for got, expected in zip(arrays(out, g), want):
            np.testing.assert_array_equal(got, expected)


def test_live_outputs_never_share_memory(rng):
    case, _ = make_lstm_case(rng, 64, 40, 32, 32, np.float32, peephole=False, batch_first=True)
    outs = [fastrnn.lstm_forward(**case, training=True) for _ in range(3)]
    del outs[1]
    outs.append(fastrnn.lstm_forward(**case, training=True))  # may take the freed blocks
    arrays = [a for o in outs for a in (o.h_seq, o.cache.gates, o.cache.c_seq)]
    for i, a in enumerate(arrays):
        for b in arrays[i + 1:]:
            assert not np.shares_memory(a, b)


def test_outputs_dropped_on_other_threads(rng):
    """The pool is process-wide: arrays die on whichever thread drops them last."""
    case, _ = make_lstm_case(rng, 64, 40, 32, 32, np.float32, peephole=False, batch_first=True)
    want = fastrnn.lstm_forward(**case).h_seq.copy()
    held, errors = [], []

    def work():
        try:
            for _ in range(20):
                out = fastrnn.lstm_forward(**case, training=True)
                np.testing.assert_array_equal(out.h_seq, want)
                held.append(out)  # dropped by the main thread
                if len(held) > 4:
                    held.pop(0)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    workers = [threading.Thread(target=work) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    held.clear()
    assert not errors, errors
    np.testing.assert_array_equal(fastrnn.lstm_forward(**case).h_seq, want)


def resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux's /proc")
def test_the_pool_keeps_at_most_256_mib():
    """Six freed 64 MiB results: the pool keeps four of them and gives two back."""
    a = np.ones((4096, 1), np.float32)
    b = np.ones((1, 4096), np.float32)
    gc.collect()
    before = resident_bytes()
    outs = [_core.matmul(a, b) for _ in range(6)]  # written in full: 384 MiB resident
    assert all(o.nbytes == 64 << 20 for o in outs)
    assert resident_bytes() - before > 300 << 20
    del outs
    gc.collect()
    kept = resident_bytes() - before
    assert kept <= (256 + 32) << 20, f"{kept >> 20} MiB still resident"
