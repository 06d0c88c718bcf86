"""The seed's example, as written, on a small synthetic task.

Task: each sequence has 10 features per step; the target is the mean of
feature 0 over the last five steps plus a little noise. Both ready models run
the same four lines.

Run:  python examples/seed_example.py
"""

from __future__ import annotations

import numpy as np

import fastrnn


def make_data(n: int, rng: np.random.Generator):
    x = rng.standard_normal((n, 20, 10))
    y = x[:, -5:, 0].mean(axis=1, keepdims=True) + 0.01 * rng.standard_normal((n, 1))
    return x, y


def main() -> None:
    rng = np.random.default_rng(0)
    x_train, y_train = make_data(600, rng)
    x_test, y_test = make_data(200, rng)
    print(f"predicting 0 gives test MSE {np.mean(y_test**2):.4f}")

    for cls in (fastrnn.models.LSTM, fastrnn.models.RNN):
        model = cls(input_dim=10, hidden_dim=50, output_dim=1)
        model.compile(optimizer="adam", loss="mse")
        model.fit(x_train, y_train, epochs=100, batch_size=32, verbose=0)
        preds = model.predict(x_test)
        print(f"{cls.__name__:5s} test MSE {np.mean((preds - y_test) ** 2):.5f}")


if __name__ == "__main__":
    main()
