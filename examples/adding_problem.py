"""The adding problem (Hochreiter & Schmidhuber, 1997): LSTM vs plain RNN.

Each input step carries a value in [0, 1) and a marker; exactly two steps are
marked, one in each half of the sequence, and the target is the sum of the two
marked values. Predicting the mean (1.0) gives MSE ~0.167; solving the task
needs information carried over T/2 steps or more, which an LSTM learns and a
plain tanh RNN does not.

Run:  python examples/adding_problem.py [--steps 50] [--epochs 30]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import fastrnn.callbacks
import fastrnn.models
import fastrnn.optimizers


def adding_problem(n: int, steps: int, rng: np.random.Generator):
    """Returns x (n, steps, 2) float32 and y (n, 1)."""
    values = rng.uniform(0.0, 1.0, size=(n, steps))
    markers = np.zeros((n, steps))
    first = rng.integers(0, steps // 2, size=n)
    second = rng.integers(steps // 2, steps, size=n)
    markers[np.arange(n), first] = 1.0
    markers[np.arange(n), second] = 1.0
    x = np.stack([values, markers], axis=-1).astype(np.float32)
    y = (values * markers).sum(axis=1, keepdims=True).astype(np.float32)
    return x, y


def train(cls, x, y, x_test, y_test, args, **kwargs):
    model = cls(input_dim=2, hidden_dim=args.hidden, output_dim=1, seed=args.seed, **kwargs)
    model.compile(optimizer=fastrnn.optimizers.Adam(args.lr, clipnorm=1.0), loss="mse")
    stop = fastrnn.callbacks.EarlyStopping(
        monitor="val_loss", patience=args.patience, restore_best_weights=True
    )
    start = time.perf_counter()
    history = model.fit(
        x,
        y,
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_split=0.1,
        callbacks=[stop],
        verbose=args.verbose,
    )
    seconds = time.perf_counter() - start
    mse = model.evaluate(x_test, y_test, batch_size=256)
    return mse, seconds, len(history.epoch)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50, help="sequence length T")
    parser.add_argument("--train", type=int, default=10000, help="training sequences")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=2)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    x, y = adding_problem(args.train, args.steps, rng)
    x_test, y_test = adding_problem(2000, args.steps, rng)
    print(
        f"adding problem, T={args.steps}; predicting the mean gives test MSE {np.var(y_test):.4f}"
    )

    results = {}
    for name, cls in (("LSTM", fastrnn.models.LSTM), ("RNN", fastrnn.models.RNN)):
        print(f"--- {name}")
        results[name] = train(cls, x, y, x_test, y_test, args)
    print()
    for name, (mse, seconds, epochs) in results.items():
        print(f"{name:5s} test MSE {mse:.5f}  ({epochs} epochs, {seconds:.1f} s)")
    lstm_mse = results["LSTM"][0]
    print("LSTM reaches MSE < 0.01:", "yes" if lstm_mse < 0.01 else "no")


if __name__ == "__main__":
    main()
