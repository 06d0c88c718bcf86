"""One data-parallel training measurement, run by bench/scale.py under mpiexec.

    mpiexec -n R python -m mpi4py bench/scale_worker.py I H T BATCH SAMPLES EPOCHS THREADS

Rank 0 prints one JSON line: samples/s of ``fit`` (after a warm-up epoch) and the
median time of one Allreduce of the model's gradient buffer.
"""

import json
import statistics
import sys
import time

import numpy as np

import fastrnn


def main() -> None:
    i, h, t, batch, samples, epochs, threads = map(int, sys.argv[1:8])
    dist = fastrnn.distributed.MPI(threads=threads)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((samples, t, i)).astype(np.float32)
    y = x[:, -5:, 0].mean(axis=1, keepdims=True)
    model = fastrnn.models.LSTM(input_dim=i, hidden_dim=h, output_dim=1, seed=0)
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, epochs=1, batch_size=batch, verbose=0, distributed=dist)  # warm-up
    dist.barrier()
    start = time.perf_counter()
    model.fit(x, y, epochs=epochs, batch_size=batch, verbose=0, distributed=dist)
    dist.barrier()
    seconds = time.perf_counter() - start

    from mpi4py import MPI

    buf = np.zeros(model.count_params() + 1, dtype=np.float32)
    times = []
    for _ in range(30):
        dist.barrier()
        t0 = time.perf_counter()
        dist.comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        times.append(time.perf_counter() - t0)
    if dist.is_root:
        steps = epochs * -(-samples // batch)
        print(
            json.dumps(
                {
                    "samples_per_s": samples * epochs / seconds,
                    "step_ms": 1e3 * seconds / steps,
                    "allreduce_ms": 1e3 * statistics.median(times),
                    "params": model.count_params(),
                }
            )
        )


if __name__ == "__main__":
    main()
