"""Python overhead of one training step: the whole ``fit`` step vs the time spent
inside the functional (C++) calls, at batch 32, T=50, 64 hidden units.

Everything outside ``fastrnn.functional``'s four functions (batch indexing,
Dense head, loss, gradient copies, optimizer update, callbacks) counts as
overhead.

Run:  python examples/train_step_overhead.py [--cell LSTM|RNN] [--features 8]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import fastrnn
import fastrnn.functional as F
import fastrnn.models

_NAMES = ("lstm_forward", "lstm_backward", "rnn_forward", "rnn_backward")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", choices=("LSTM", "RNN"), default="LSTM")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--features", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    n = args.batch * 40
    x = rng.standard_normal((n, args.steps, args.features)).astype(np.float32)
    y = rng.standard_normal((n, 1)).astype(np.float32)
    model = getattr(fastrnn.models, args.cell)(args.features, args.hidden, 1, seed=0)
    model.compile("adam", "mse")
    model.fit(x, y, epochs=1, batch_size=args.batch, verbose=0)

    kernel_seconds = [0.0]
    originals = {name: getattr(F, name) for name in _NAMES}

    def timed(fn):
        def wrapper(*a, **k):
            t0 = time.perf_counter()
            out = fn(*a, **k)
            kernel_seconds[0] += time.perf_counter() - t0
            return out

        return wrapper

    # The layers look the functions up on the module at call time, so patching it reaches them.
    for name in _NAMES:
        setattr(F, name, timed(originals[name]))
    best = None
    try:
        for _ in range(args.repeats):
            kernel_seconds[0] = 0.0
            t0 = time.perf_counter()
            model.fit(x, y, epochs=1, batch_size=args.batch, verbose=0)
            total = time.perf_counter() - t0
            if best is None or total < best[0]:
                best = (total, kernel_seconds[0])
    finally:
        for name in _NAMES:
            setattr(F, name, originals[name])

    steps = n // args.batch
    total, kernel = best
    print(
        f"{args.cell} B={args.batch} T={args.steps} H={args.hidden} I={args.features} "
        f"threads={fastrnn.get_num_threads()} isa={fastrnn.build_info()['isa']}: "
        f"step {1e3 * total / steps:.3f} ms, functional calls {1e3 * kernel / steps:.3f} ms, "
        f"Python overhead {1e3 * (total - kernel) / steps:.3f} ms = {100 * (total - kernel) / total:.1f}%"
    )


if __name__ == "__main__":
    main()
