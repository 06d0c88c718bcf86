"""Times fastrnn calls on normal inputs against inputs full of denormals and prints the
ratio (issue #5: denormals must not slow a call by more than 2x; the core flushes them to
zero inside each call).

    python tools/denormal_bench.py [--repeats 15] [--threads 1] [--check]

Denormal inputs: x, h0 and c0 (and, in the "all" rows, the weights too) filled with
1e-39 (float32) or 1e-310 (float64), so every product the kernels form is subnormal
unless it is flushed. With --check the exit code is 1 when a ratio exceeds 2.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import fastrnn

TINY = {np.float32: 1e-39, np.float64: 1e-310}


def median_time(fn, repeats):
    fn()  # warm-up: scratch buffers, thread pool
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def lstm_case(B, T, I, H, dtype, denormal):
    rng = np.random.default_rng(0)

    def r(*s, k=0.5):
        return (rng.standard_normal(s) * k).astype(dtype)

    case = dict(x=r(B, T, I), h0=r(B, H), c0=r(B, H), w_ih=r(4 * H, I),
                w_hh=r(4 * H, H, k=0.5 / np.sqrt(H)), b=r(4 * H), peephole=r(3, H))
    tiny = dtype(TINY[dtype])
    assert tiny != 0 and np.abs(tiny) < np.finfo(dtype).tiny, "not a denormal"
    if denormal in ("inputs", "all"):
        for k in ("x", "h0", "c0"):
            case[k] = np.full_like(case[k], tiny)
    if denormal == "all":
        for k in ("w_ih", "w_hh", "b", "peephole"):
            case[k] = np.full_like(case[k], tiny)
    dh = np.full((B, T, H), tiny if denormal != "none" else 0.5, dtype)
    return case, dh


def rnn_case(B, T, I, H, dtype, denormal):
    case, dh = lstm_case(B, T, I, H, dtype, denormal)
    return dict(x=case["x"], h0=case["h0"], w_ih=np.ascontiguousarray(case["w_ih"][:H]),
                w_hh=np.ascontiguousarray(case["w_hh"][:H]),
                b=np.ascontiguousarray(case["b"][:H])), dh


def bench(cell, shape, dtype, denormal, repeats):
    if cell == "lstm":
        case, dh = lstm_case(*shape, dtype, denormal)
        out = fastrnn.lstm_forward(**case, training=True)
        fwd = median_time(lambda: fastrnn.lstm_forward(**case, training=True), repeats)
        bwd = median_time(lambda: fastrnn.lstm_backward(dh, None, None, out.cache), repeats)
    else:
        case, dh = rnn_case(*shape, dtype, denormal)
        out = fastrnn.rnn_forward(**case, training=True)
        fwd = median_time(lambda: fastrnn.rnn_forward(**case, training=True), repeats)
        bwd = median_time(lambda: fastrnn.rnn_backward(dh, None, out.cache), repeats)
    return fwd, bwd


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--check", action="store_true", help="exit 1 if a ratio exceeds 2")
    args = ap.parse_args(argv)
    fastrnn.set_num_threads(args.threads)
    info = fastrnn.build_info()
    print(f"fastrnn {info['version']}  isa={info['isa']}  threads={args.threads}  "
          f"compiler={info['compiler']}  build={info['build_type']}  repeats={args.repeats} "
          "(medians)")
    shape = (16, 100, 64, 128)  # B, T, I, H
    print(f"shape B, T, I, H = {shape}")
    print(f"{'cell':5} {'dtype':8} {'denormals':9} {'fwd ms':>8} {'ratio':>6} "
          f"{'bwd ms':>8} {'ratio':>6}")
    worst = 0.0
    for cell in ("lstm", "rnn"):
        for dtype in (np.float32, np.float64):
            base_f, base_b = bench(cell, shape, dtype, "none", args.repeats)
            print(f"{cell:5} {np.dtype(dtype).name:8} {'none':9} {base_f * 1e3:8.2f} "
                  f"{'':>6} {base_b * 1e3:8.2f}")
            for denormal in ("inputs", "all"):
                f, b = bench(cell, shape, dtype, denormal, args.repeats)
                rf, rb = f / base_f, b / base_b
                worst = max(worst, rf, rb)
                print(f"{cell:5} {np.dtype(dtype).name:8} {denormal:9} {f * 1e3:8.2f} "
                      f"{rf:6.2f} {b * 1e3:8.2f} {rb:6.2f}")
    print(f"worst ratio denormal / normal: {worst:.2f} (limit 2.00)")
    fastrnn.set_num_threads(0)
    return 1 if args.check and worst > 2.0 else 0


if __name__ == "__main__":
    sys.exit(main())
