"""Run under mpiexec by tests/test_distributed.py: ``python -m mpi4py worker.py MODE OUT [ARGS]``.

Modes:
  train DTYPE N BATCH EPOCHS  trains data-parallel and writes rank 0's weights and
                              history plus whether all ranks ended bit-identical.
  raise                       rank 1 raises in the middle of training.
  mismatch                    rank 1 passes different data; each rank records its error.
  valmismatch                 the same with different validation data.
  callbacks                   counts per rank how often a root_only and a normal callback ran.
"""

import json
import sys

import numpy as np

import fastrnn
from fastrnn.callbacks import Callback


def make_model(dtype: str, seed: int):
    model = fastrnn.models.Sequential(
        [
            fastrnn.layers.LSTM(8, peephole=True, return_sequences=True),
            fastrnn.layers.SimpleRNN(6),
            fastrnn.layers.Dense(2),
        ],
        dtype=dtype,
        seed=seed,
    )
    model.compile(fastrnn.optimizers.Adam(1e-2), "mse", metrics=["mae", "rmse"])
    return model


def make_data(n: int):
    rng = np.random.default_rng(42)
    x = rng.standard_normal((n, 9, 3))
    y = np.stack([x[:, -3:, 0].mean(axis=1), x[:, :, 1].std(axis=1)], axis=1)
    return x, y


class Count(Callback):
    def __init__(self):
        super().__init__()
        self.batches = 0
        self.epochs = 0

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1

    def on_epoch_end(self, epoch, logs=None):
        self.epochs += 1


class RootCount(Count):
    root_only = True


class RaiseOnRank1(Callback):
    def __init__(self, rank):
        super().__init__()
        self.rank = rank

    def on_epoch_end(self, epoch, logs=None):
        if self.rank == 1 and epoch == 1:
            raise RuntimeError("rank 1 fails on purpose")


def main() -> None:
    mode, out = sys.argv[1], sys.argv[2]
    dist = fastrnn.distributed.MPI()
    # Every rank seeds differently on purpose: rank 0's weights and shuffling must win.
    if mode == "train":
        dtype, n, batch, epochs = sys.argv[3], *map(int, sys.argv[4:7])
        x, y = make_data(n)
        model = make_model(dtype, seed=dist.rank)
        hist = model.fit(
            x,
            y,
            epochs=epochs,
            batch_size=batch,
            distributed=dist,
            verbose=0,
            validation_split=0.2,
        )
        weights = dist.comm.gather(model._flat_weights.copy(), root=0)
        if dist.is_root:
            same = all(np.array_equal(weights[0], w) for w in weights)
            np.savez(
                out,
                weights=weights[0],
                identical=same,
                threads=fastrnn.get_num_threads(),
                **{k: np.array(v) for k, v in hist.history.items()},
            )
    elif mode == "raise":
        x, y = make_data(64)
        model = make_model("float32", seed=0)
        model.fit(
            x,
            y,
            epochs=1000,
            batch_size=8,
            distributed=dist,
            verbose=0,
            callbacks=[RaiseOnRank1(dist.rank)],
        )
    elif mode in ("mismatch", "valmismatch"):
        # Rank 1 gets one more training (or validation) sample than rank 0.
        x, y = make_data(64 + (dist.rank if mode == "mismatch" else 0))
        val = make_data(16 + dist.rank) if mode == "valmismatch" else None
        model = make_model("float32", seed=0)
        try:
            model.fit(
                x, y, epochs=1, batch_size=8, distributed=dist, verbose=0, validation_data=val
            )
            message = "no error"
        except ValueError as e:
            message = str(e)
        with open(f"{out}.{dist.rank}", "w") as f:
            f.write(message)
    elif mode == "callbacks":
        x, y = make_data(40)
        model = make_model("float32", seed=0)
        counts = [Count(), RootCount()]
        model.fit(x, y, epochs=2, batch_size=16, distributed=dist, verbose=2, callbacks=counts)
        with open(f"{out}.{dist.rank}", "w") as f:
            json.dump(
                {
                    "normal": [counts[0].batches, counts[0].epochs],
                    "root_only": [counts[1].batches, counts[1].epochs],
                },
                f,
            )
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
