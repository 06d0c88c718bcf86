"""Sine-wave forecasting with an LSTM; saves a PNG of prediction vs truth when
matplotlib is installed.

The model reads a window of 40 noisy samples of a sum of two sines and
predicts the next sample. At test time it forecasts one step ahead over an
unseen stretch of the signal.

Run:  python examples/sine_forecast.py [--png sine_forecast.png]
"""

from __future__ import annotations

import argparse

import numpy as np

import fastrnn.models


def signal(t: np.ndarray) -> np.ndarray:
    return np.sin(0.1 * t) + 0.5 * np.sin(0.037 * t + 1.0)


def windows(series: np.ndarray, width: int):
    """(N, width, 1) inputs and (N, 1) next values from a 1-D series."""
    idx = np.arange(width)[None, :] + np.arange(len(series) - width)[:, None]
    return series[idx][..., None], series[width:, None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--png", default="sine_forecast.png", help="plot path ('' to skip)")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    t = np.arange(3000, dtype=np.float64)
    series = signal(t) + 0.05 * rng.standard_normal(t.shape)
    split = 2400
    x_train, y_train = windows(series[:split], args.window)
    x_test, _ = windows(series[split - args.window :], args.window)
    truth = signal(t[split:])

    model = fastrnn.models.LSTM(input_dim=1, hidden_dim=32, output_dim=1, seed=0)
    model.compile(optimizer="adam", loss="mse")
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=32, validation_split=0.1, verbose=2)
    pred = model.predict(x_test)[:, 0]
    mse = float(np.mean((pred - truth) ** 2))
    print(f"one-step-ahead test MSE vs the clean signal: {mse:.5f} (noise variance 0.0025)")

    if not args.png:
        return
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed; skipping the plot")
        return
    fig, ax = plt.subplots(figsize=(9, 3.5))
    ax.plot(t[split:], truth, label="truth (clean signal)", lw=2)
    ax.plot(t[split:], pred, label="LSTM forecast", lw=1.2, ls="--")
    ax.set_xlabel("t")
    ax.set_title(f"fastrnn LSTM one-step forecast, test MSE {mse:.4f}")
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(args.png, dpi=100)
    print(f"saved {args.png}")


if __name__ == "__main__":
    main()
