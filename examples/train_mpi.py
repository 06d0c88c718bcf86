"""The seed's model trained data-parallel over MPI.

    pip install ".[mpi]"
    mpiexec -n 2 python -m mpi4py examples/train_mpi.py

Every rank builds the same data and model and calls the same ``fit``; ``batch_size`` is
the global batch (each of the n ranks computes 1/n of every batch). Only rank 0 prints
and saves. ``python -m mpi4py`` aborts the whole job when any rank raises, so a failure
never leaves the other ranks waiting.
"""

from __future__ import annotations

import time

import numpy as np

import fastrnn
from seed_example import make_data


def main() -> None:
    dist = fastrnn.distributed.MPI()
    rng = np.random.default_rng(0)  # the same data on every rank
    x_train, y_train = make_data(600, rng)
    x_test, y_test = make_data(200, rng)

    model = fastrnn.models.LSTM(input_dim=10, hidden_dim=50, output_dim=1, seed=0)
    model.compile(optimizer="adam", loss="mse")
    start = time.perf_counter()
    model.fit(x_train, y_train, epochs=100, batch_size=32, verbose=0, distributed=dist)
    seconds = time.perf_counter() - start
    if dist.is_root:
        preds = model.predict(x_test)
        print(
            f"{dist.size} rank(s), {fastrnn.get_num_threads()} thread(s) each: "
            f"{seconds:.1f} s, {600 * 100 / seconds:.0f} samples/s; "
            f"test MSE {np.mean((preds - y_test) ** 2):.5f} "
            f"(predicting 0: {np.mean(y_test**2):.4f})"
        )
        model.save("lstm_mpi.npz")


if __name__ == "__main__":
    main()
