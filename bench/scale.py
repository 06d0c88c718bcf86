#!/usr/bin/env python
"""Scale-out measurements: MPI data-parallel training and Dask batch inference.

    python bench/scale.py            # needs the mpi and dask extras: pip install ".[mpi,dask]"
    python bench/scale.py --rounds 5

Training: the same global batch on 1 process (1 and all threads) and on R ranks of
one thread each, in samples/s (medians of interleaved rounds), with the time of one
Allreduce of the gradient buffer next to the time of one training step.
Inference: ``model.predict`` on 1 and all threads against ``fastrnn.dask.predict``
with the threaded scheduler and with a LocalCluster of one-thread worker processes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

import fastrnn

HERE = Path(__file__).parent
# (name, I, H, T, global batch, samples, epochs)
TRAIN_CASES = [
    ("seed model  I10 H50 T20", 10, 50, 20, 64, 8192, 2),
    ("LSTM I64 H256 T50", 64, 256, 50, 64, 1024, 1),
]


def mpiexec() -> str | None:
    here = str(Path(sys.executable).parent)
    return shutil.which("mpiexec", path=os.pathsep.join([here, os.environ.get("PATH", "")]))


def run_training(exe, ranks, threads, case) -> dict:
    _, i, h, t, batch, samples, epochs = case
    cmd = [exe, "-n", str(ranks), sys.executable, "-m", "mpi4py", str(HERE / "scale_worker.py")]
    cmd += [str(v) for v in (i, h, t, batch, samples, epochs, threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def training(rounds: int, cores: int) -> None:
    exe = mpiexec()
    if exe is None:
        print("training: skipped, no mpiexec (pip install '.[mpi]')\n")
        return
    setups = [(1, 1), (1, cores), (cores, 1)]  # (ranks, threads per rank)
    print(
        "MPI data-parallel training (fit, float32, Adam; samples/s, median of "
        f"{rounds} interleaved rounds)"
    )
    head = f"{'case':26s} {'batch':>5s} " + " ".join(f"{f'{r}r x {t}t':>10s}" for r, t in setups)
    print(head + f" {'speed-up':>9s} {'step ms':>8s} {'allreduce':>10s}")
    for case in TRAIN_CASES:
        runs = {s: [] for s in setups}
        for _ in range(rounds):
            for s in setups:
                runs[s].append(run_training(exe, *s, case))
        rate = {s: statistics.median(r["samples_per_s"] for r in runs[s]) for s in setups}
        last = runs[setups[-1]]
        step = statistics.median(r["step_ms"] for r in last)
        comm = statistics.median(r["allreduce_ms"] for r in last)
        cells = " ".join(f"{rate[s]:10.0f}" for s in setups)
        print(
            f"{case[0]:26s} {case[4]:5d} {cells} {rate[setups[-1]] / rate[setups[0]]:8.2f}x "
            f"{step:8.2f} {comm * 1e3:7.0f} us  ({last[0]['params']:,} params)"
        )
    print(
        f"speed-up: {cores} ranks against 1 rank with 1 thread; step ms and allreduce: "
        f"{cores} ranks\n"
    )


def inference(rounds: int, cores: int) -> None:
    try:
        import dask.array as da
        from distributed import Client, LocalCluster
    except ImportError:
        print("inference: skipped, dask/distributed not installed (pip install '.[dask]')")
        return
    import fastrnn.dask as fdask

    n, t, i, h, chunk = 2048, 50, 64, 256, 256
    x = np.random.default_rng(0).standard_normal((n, t, i)).astype(np.float32)
    model = fastrnn.models.LSTM(input_dim=i, hidden_dim=h, output_dim=1, seed=0)
    xd = da.from_array(x, chunks=(chunk, t, i))

    def local(threads):
        def run():
            fastrnn.set_num_threads(threads)
            model.predict(x, batch_size=chunk)

        return run

    def threaded():
        fastrnn.set_num_threads(1)
        fdask.predict(model, xd).compute(scheduler="threads", num_workers=cores)

    with (
        LocalCluster(
            n_workers=cores,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",  # a free loopback port: None still took 8787
        ) as cluster,
        Client(cluster) as client,
    ):
        from distributed import wait

        # The input lives on the workers (as data loaded there would), so the timing is
        # the inference, not shipping 30 MB of input from this process.
        with warnings.catch_warnings():  # "Sending large graph": the input, sent once
            warnings.simplefilter("ignore", UserWarning)
            x_on_cluster = client.persist(xd)
        wait(x_on_cluster)

        def cluster_run():
            client.compute(fdask.predict(model, x_on_cluster)).result()

        setups = [
            ("predict, 1 thread", local(1)),
            (f"predict, {cores} threads", local(cores)),
            (f"dask threads, {cores} x 1 thread", threaded),
            (f"dask LocalCluster, {cores} x 1 proc", cluster_run),
        ]
        times = {name: [] for name, _ in setups}
        for name, fn in setups:
            fn()  # warm-up
        for _ in range(rounds):
            for name, fn in setups:
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    fastrnn.set_num_threads(0)
    base = statistics.median(times[setups[0][0]])
    print(
        f"Batch inference, LSTM I{i} H{h} T{t}, {n} sequences in blocks of {chunk} "
        f"(sequences/s, median of {rounds} rounds)"
    )
    for name, _ in setups:
        sec = statistics.median(times[name])
        print(f"  {name:34s} {n / sec:9.0f} seq/s  {base / sec:5.2f}x")


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    cores = len(os.sched_getaffinity(0))
    info = fastrnn.build_info()
    print(f"fastrnn {info['version']} ({info['isa']}, {info['compiler']}), {cores} cores\n")
    training(args.rounds, cores)
    inference(args.rounds, cores)


if __name__ == "__main__":
    main()
