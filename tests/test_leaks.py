"""Leaks: 10,000 calls of each public function (small shapes, success and error paths)
grow the resident set by less than 1 MB after a warm-up. Runs in a child process, so the
allocations of other tests do not blur the numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

CALLS = 10_000
LIMIT_BYTES = 1 << 20

LEAK_SCRIPT = textwrap.dedent(
    r"""
    import gc, json, os, sys
    import numpy as np
    import fastrnn
    sys.path.insert(0, sys.argv[1])
    from conftest import make_lstm_case, make_rnn_case

    CALLS = int(sys.argv[2])
    PAGE = os.sysconf("SC_PAGE_SIZE")

    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * PAGE

    rng = np.random.default_rng(0)
    lc, lg = make_lstm_case(rng, 2, 3, 4, 5, np.float32, peephole=True, batch_first=True)
    rc, rg = make_rnn_case(rng, 2, 3, 4, 5, np.float64, batch_first=True)
    lout = fastrnn.lstm_forward(**lc, training=True)
    rout = fastrnn.rnn_forward(**rc, training=True)
    bad_w = np.zeros((7, 7), np.float32)

    def lstm_bad_shape():
        try:
            fastrnn.lstm_forward(**{**lc, "w_hh": bad_w})
        except ValueError:
            pass

    def lstm_bad_type():
        try:
            fastrnn.lstm_forward(**{**lc, "b": [0.0]})
        except TypeError:
            pass

    model = fastrnn.models.LSTM(input_dim=4, hidden_dim=5, output_dim=1, seed=0)
    model.compile("sgd", "mse")
    mx, my = rng.standard_normal((2, 3, 4)).astype(np.float32), np.zeros((2, 1), np.float32)

    FUNCS = {
        "lstm_forward": lambda: fastrnn.lstm_forward(**lc),
        "lstm_forward_training": lambda: fastrnn.lstm_forward(**lc, training=True),
        "lstm_backward": lambda: fastrnn.lstm_backward(lg["dh_seq"], lg["dh_n"], lg["dc_n"],
                                                       lout.cache),
        "rnn_forward": lambda: fastrnn.rnn_forward(**rc, training=True),
        "rnn_backward": lambda: fastrnn.rnn_backward(rg["dh_seq"], rg["dh_n"], rout.cache),
        "lstm_forward_value_error": lstm_bad_shape,
        "lstm_forward_type_error": lstm_bad_type,
        "model_train_on_batch": lambda: model.train_on_batch(mx, my),
        "model_predict": lambda: model.predict(mx),
    }
    report = {}
    for name, fn in FUNCS.items():
        n = CALLS // 5 if name.startswith("model") else CALLS  # the model adds Python cost
        for _ in range(500):
            fn()
        gc.collect()
        before = rss()
        for _ in range(n):
            fn()
        gc.collect()
        report[name] = {"calls": n, "growth_bytes": rss() - before}
    print(json.dumps(report))
    """
)


def test_rss_does_not_grow_over_many_calls():
    here = os.path.dirname(os.path.abspath(__file__))
    proc = subprocess.run(
        [sys.executable, "-c", LEAK_SCRIPT, here, str(CALLS)],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "OMP_NUM_THREADS": "2"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    grown = {k: v for k, v in report.items() if v["growth_bytes"] >= LIMIT_BYTES}
    assert not grown, f"RSS grew by 1 MB or more: {json.dumps(report, indent=1)}"
