"""Concurrency: Python threads sharing weights get the serial results bit for bit, the GIL
is released while the core runs (calls from two threads overlap in time), and a child
made by os.fork() after the parent ran threaded calls can call fastrnn too."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
from conftest import long_lstm_case, make_lstm_case, make_rnn_case

import fastrnn

N_THREADS = 8
CALLS_PER_THREAD = 2


@pytest.fixture
def omp_threads(request):
    fastrnn.set_num_threads(request.param)
    yield request.param
    fastrnn.set_num_threads(0)


def _run_threads(n, target):
    """Starts n threads that wait on one barrier, so their calls begin together."""
    barrier = threading.Barrier(n)
    errors = []

    def body(k):
        try:
            barrier.wait()
            target(k)
        except BaseException as e:  # noqa: BLE001 - reported after the join
            errors.append((k, repr(e)))

    threads = [threading.Thread(target=body, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread is still running after 120 s"
    assert not errors, errors


def _lstm_call(case, grads, x):
    out = fastrnn.lstm_forward(**{**case, "x": x}, training=True)
    g = fastrnn.lstm_backward(grads["dh_seq"], grads["dh_n"], grads["dc_n"], out.cache)
    return [out.h_seq, out.h_n, out.c_n, *g]


def _rnn_call(case, grads, x):
    out = fastrnn.rnn_forward(**{**case, "x": x}, nonlinearity="tanh", training=True)
    g = fastrnn.rnn_backward(grads["dh_seq"], grads["dh_n"], out.cache)
    return [out.h_seq, out.h_n, *g]


# ~5-15 ms a call (forward + backward) on one core.
CELLS = {
    "lstm": (make_lstm_case, dict(peephole=True), (16, 50, 64, 128), _lstm_call),
    "rnn": (make_rnn_case, {}, (16, 100, 64, 256), _rnn_call),
}


@pytest.mark.parametrize("omp_threads", [1, 2], indirect=True)
@pytest.mark.parametrize("cell", sorted(CELLS))
def test_threads_sharing_weights_match_serial_calls(rng, cell, omp_threads):
    make, extra, shape, call = CELLS[cell]
    case, grads = make(rng, *shape, np.float32, batch_first=True, **extra)
    for a in (*case.values(), *grads.values()):  # shared by all threads, read-only
        if a is not None:
            a.setflags(write=False)
    # One x per thread (different data: a mix-up between threads would show).
    xs = [(rng.standard_normal(case["x"].shape) * 0.5).astype(np.float32)
          for _ in range(N_THREADS)]
    serial = [call(case, grads, x) for x in xs]
    results = [[None] * CALLS_PER_THREAD for _ in range(N_THREADS)]

    def work(k):
        for j in range(CALLS_PER_THREAD):
            results[k][j] = call(case, grads, xs[k])

    _run_threads(N_THREADS, work)
    for k in range(N_THREADS):
        for j in range(CALLS_PER_THREAD):
            for i, (a, b) in enumerate(zip(serial[k], results[k][j])):
                if a is None:
                    assert b is None
                else:
                    assert np.array_equal(a, b), f"thread {k} call {j} output {i} differs"


def _inside_fraction(window, spans):
    """Share of the window covered by spans that start and end inside it."""
    s0, e0 = window
    return sum(e - s for s, e in spans if s >= s0 and e <= e0) / (e0 - s0)


def _overlap_of(long_call, short_call):
    """Thread A makes one long call; thread B makes short calls until A is done. Returns
    (A's window, the share of it covered by B's calls that lie wholly inside it)."""
    window, spans = [], []
    a_started, a_done = threading.Event(), threading.Event()

    def a():
        a_started.set()
        s = time.perf_counter()
        long_call()
        window.extend([s, time.perf_counter()])
        a_done.set()

    def b():
        a_started.wait()
        while not a_done.is_set():
            s = time.perf_counter()
            short_call()
            spans.append((s, time.perf_counter()))

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return window, _inside_fraction(window, spans)


@pytest.mark.parametrize("omp_threads", [1], indirect=True)
def test_gil_is_released_calls_overlap(rng, omp_threads):
    """While thread A is inside one long call, thread B completes short calls: their
    kernels run at the same time (in parallel on two cores, interleaved by the OS on one
    loaded core). If A held the GIL, B could not even start a call until A's returned, and
    only the few milliseconds of one GIL switch interval after it would count. The measure
    is B's time inside calls that begin and end within A's call, as a share of A's call;
    it does not depend on the machine's speed or load. Speed is not asserted."""
    big = long_lstm_case(rng)  # long enough to tell (the 50 ms floor below)
    small, _ = make_lstm_case(rng, 4, 20, 16, 32, np.float32, peephole=False,
                              batch_first=True)
    fastrnn.lstm_forward(**small)
    window, frac = _overlap_of(lambda: fastrnn.lstm_forward(**big),
                               lambda: fastrnn.lstm_forward(**small, training=True))
    length = window[1] - window[0]
    assert length > 0.05, f"the long call took {length * 1e3:.1f} ms: too short to tell"
    assert frac > 0.3, (
        f"thread B was inside fastrnn for only {frac:.0%} of thread A's {length * 1e3:.0f} ms "
        "call: the GIL seems held while the core runs"
    )


def test_gil_overlap_measure_detects_a_held_gil():
    """The measure above is ~0 for calls that hold the GIL (builtin sum over a range)."""
    window, frac = _overlap_of(lambda: sum(range(6_000_000)), lambda: sum(range(20_000)))
    assert frac < 0.2, (frac, window[1] - window[0])


FORK_SCRIPT = textwrap.dedent(
    r"""
    import os, signal, sys, time
    import numpy as np
    import fastrnn
    sys.path.insert(0, sys.argv[1])
    from conftest import make_lstm_case, make_rnn_case

    rng = np.random.default_rng(0)
    # big enough for the kernels to run a 2-thread OpenMP team in the parent
    case, grads = make_lstm_case(rng, 16, 20, 40, 256, np.float32, peephole=True,
                                 batch_first=True)
    rcase, rgrads = make_rnn_case(rng, 16, 20, 40, 256, np.float32, batch_first=True)

    def run():
        out = fastrnn.lstm_forward(**case, training=True)
        g = fastrnn.lstm_backward(grads["dh_seq"], grads["dh_n"], grads["dc_n"], out.cache)
        r = fastrnn.rnn_forward(**rcase, training=True)
        rg = fastrnn.rnn_backward(rgrads["dh_seq"], rgrads["dh_n"], r.cache)
        return [out.h_seq, *g[:-1], r.h_seq, *rg]

    fastrnn.set_num_threads(2)
    want = run()
    mode = sys.argv[2]
    pid = os.fork()
    if pid == 0:
        try:
            if mode == "threads=1":
                fastrnn.set_num_threads(1)
            got = run()
            ok = all(np.array_equal(a, b) for a, b in zip(want, got))
            os._exit(0 if ok else 1)
        except BaseException as e:
            print("child raised", repr(e), flush=True)
            os._exit(2)
    deadline = time.monotonic() + float(sys.argv[3])
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            print("CHILD DEADLOCKED", flush=True)
            sys.exit(3)
        time.sleep(0.02)
    code = os.waitstatus_to_exitcode(status)
    print("child exit", code, flush=True)
    # the parent still works after the fork
    again = run()
    assert all(np.array_equal(a, b) for a, b in zip(want, again))
    sys.exit(0 if code == 0 else 4)
    """
)


@pytest.mark.parametrize("mode", ["threads=2", "threads=1"])
def test_calls_in_a_forked_child(mode):
    """The parent runs 2-thread OpenMP calls, forks; the child's calls must finish and give
    the parent's results. A deadlock is reported as such (the child is killed)."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        proc = subprocess.run(
            [sys.executable, "-c", FORK_SCRIPT, here, mode, "8"],
            capture_output=True, text=True, timeout=90, check=False,
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"fork harness hung: {e.stdout!r}")
    assert "CHILD DEADLOCKED" not in proc.stdout, (
        "fastrnn deadlocks in a child created by os.fork() after the parent used OpenMP "
        f"threads ({mode}):\n{proc.stdout}{proc.stderr[-2000:]}"
    )
    assert proc.returncode == 0, (
        f"fork harness exit {proc.returncode} ({mode}):\n{proc.stdout}{proc.stderr[-2000:]}"
    )
