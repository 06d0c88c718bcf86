"""Metrics reported by ``fit`` / ``evaluate``: batch means, averaged over an epoch.

A metric is a function ``(y_true, y_pred) -> float`` (the batch mean) with a
``name``. The model weights each batch by its number of samples, so the epoch
value equals the mean over the whole data set.
"""

from __future__ import annotations

from typing import Callable, Optional, Union

import numpy as np

__all__ = [
    "Metric",
    "mae",
    "mse",
    "rmse",
    "binary_accuracy",
    "categorical_accuracy",
    "sparse_categorical_accuracy",
    "get",
]


class Metric:
    """A named batch-mean metric.

    Args:
        fn: ``fn(y_true, y_pred) -> float``, the mean over the batch.
        name: Key in ``History.history`` and in progress lines.
    """

    def __init__(self, fn: Callable[[np.ndarray, np.ndarray], float], name: str) -> None:
        self.fn = fn
        self.name = name

    def __call__(self, y_true, y_pred) -> float:
        return float(self.fn(np.asarray(y_true), np.asarray(y_pred)))

    def __repr__(self) -> str:
        return f"Metric({self.name!r})"


def _mae(y_true, y_pred):
    return np.abs(y_pred - y_true).mean()


def _mse(y_true, y_pred):
    d = y_pred - y_true
    return np.vdot(d, d) / d.size


def _rmse(y_true, y_pred):
    return np.sqrt(_mse(y_true, y_pred))


def _binary_accuracy(y_true, y_pred, threshold=0.5):
    return ((y_pred > threshold) == (y_true > 0.5)).mean()


def _binary_accuracy_logits(y_true, y_pred):
    return ((y_pred > 0) == (y_true > 0.5)).mean()


def _categorical_accuracy(y_true, y_pred):
    return (y_pred.argmax(axis=-1) == y_true.argmax(axis=-1)).mean()


def _sparse_categorical_accuracy(y_true, y_pred):
    labels = y_true.reshape(y_pred.shape[:-1])
    return (y_pred.argmax(axis=-1) == labels).mean()


mae = Metric(_mae, "mae")
mse = Metric(_mse, "mse")
rmse = Metric(_rmse, "rmse")
binary_accuracy = Metric(_binary_accuracy, "binary_accuracy")
categorical_accuracy = Metric(_categorical_accuracy, "categorical_accuracy")
sparse_categorical_accuracy = Metric(_sparse_categorical_accuracy, "sparse_categorical_accuracy")

_BY_NAME = {
    "mae": mae,
    "mean_absolute_error": mae,
    "mse": mse,
    "mean_squared_error": mse,
    "rmse": rmse,
    "root_mean_squared_error": rmse,
    "binary_accuracy": binary_accuracy,
    "categorical_accuracy": categorical_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
}


def get(identifier: Union[str, Metric, Callable], loss: Optional[object] = None) -> Metric:
    """Returns a ``Metric`` from a name, a ``Metric`` or a plain function.

    ``'accuracy'`` / ``'acc'`` pick the variant that fits the loss, as Keras does:
    sparse ids for sparse categorical cross-entropy, argmax for categorical
    cross-entropy, a threshold (0 on logits, 0.5 on probabilities) otherwise.

    Args:
        identifier: Name, ``Metric`` or ``fn(y_true, y_pred) -> float``.
        loss: The compiled ``fastrnn.losses.Loss``, used to resolve ``'accuracy'``.

    Raises:
        ValueError: If the name is unknown.
    """
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        if key in ("accuracy", "acc"):
            loss_name = getattr(loss, "name", "")
            if loss_name == "sparse_categorical_crossentropy":
                return Metric(_sparse_categorical_accuracy, "accuracy")
            if loss_name == "categorical_crossentropy":
                return Metric(_categorical_accuracy, "accuracy")
            if getattr(loss, "from_logits", False):
                return Metric(_binary_accuracy_logits, "accuracy")
            return Metric(_binary_accuracy, "accuracy")
        if key in _BY_NAME:
            return _BY_NAME[key]
        raise ValueError(
            f"unknown metric {identifier!r}; expected 'accuracy' or one of {sorted(_BY_NAME)}"
        )
    if callable(identifier):
        return Metric(identifier, getattr(identifier, "__name__", "metric"))
    raise TypeError(
        f"metric must be a name, a Metric or a function, got {type(identifier).__name__}"
    )
