"""Metrics reported by ``fit`` / ``evaluate``: means over the samples, per epoch.

A metric is the mean over samples of a per-batch quantity (``batch_mean``), with an
optional ``finish`` applied to that mean: ``rmse`` is the square root of the mean squared
error. The model weights each batch's mean by its number of samples and finishes the
epoch's mean once, so the epoch value equals the metric over the whole data set (a mean
of per-batch square roots would not: it depended on the batch size).
"""

from __future__ import annotations

import math
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
    """A named metric.

    Args:
        fn: ``fn(y_true, y_pred) -> float``, the batch mean of the metric's quantity.
        name: Key in ``History.history`` and in progress lines.
        finish: Applied to a mean of ``fn`` (over a batch, or over an epoch's samples)
            to give the metric, e.g. ``math.sqrt`` for a root mean squared error.
        check: Called with both arrays first; raises ``ValueError`` on shapes the metric
            cannot compare (NumPy would broadcast them silently).
    """

    def __init__(
        self,
        fn: Callable[[np.ndarray, np.ndarray], float],
        name: str,
        finish: Optional[Callable[[float], float]] = None,
        check: Optional[Callable[[str, np.ndarray, np.ndarray], None]] = None,
    ) -> None:
        self.fn = fn
        self.name = name
        self.finish = finish
        self.check = check

    def batch_mean(self, y_true, y_pred) -> float:
        """The mean of the metric's quantity over one batch (what epochs average)."""
        y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
        if self.check is not None:
            self.check(self.name, y_true, y_pred)
        return float(self.fn(y_true, y_pred))

    def result(self, mean: float) -> float:
        """The metric from a mean of ``batch_mean`` values."""
        return float(self.finish(mean)) if self.finish is not None else float(mean)

    def __call__(self, y_true, y_pred) -> float:
        return self.result(self.batch_mean(y_true, y_pred))

    def __repr__(self) -> str:
        return f"Metric({self.name!r})"


def _same_shape(name: str, y_true: np.ndarray, y_pred: np.ndarray) -> None:
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"{name}: y_true and y_pred must have the same shape, got {y_true.shape} and "
            f"{y_pred.shape}"
        )


def _sparse_shapes(name: str, y_true: np.ndarray, y_pred: np.ndarray) -> None:
    if y_pred.ndim < 1 or y_true.size != int(np.prod(y_pred.shape[:-1])):
        raise ValueError(
            f"{name}: y_true must hold one class id per row of y_pred, i.e. shape "
            f"{y_pred.shape[:-1]}; got {y_true.shape} for y_pred {y_pred.shape}"
        )


def _mae(y_true, y_pred):
    return np.abs(y_pred - y_true).mean()


def _mse(y_true, y_pred):
    d = y_pred - y_true
    return np.vdot(d, d) / d.size


def _binary_accuracy(y_true, y_pred, threshold=0.5):
    return ((y_pred > threshold) == (y_true > 0.5)).mean()


def _binary_accuracy_logits(y_true, y_pred):
    return ((y_pred > 0) == (y_true > 0.5)).mean()


def _categorical_accuracy(y_true, y_pred):
    return (y_pred.argmax(axis=-1) == y_true.argmax(axis=-1)).mean()


def _sparse_categorical_accuracy(y_true, y_pred):
    labels = y_true.reshape(y_pred.shape[:-1])
    return (y_pred.argmax(axis=-1) == labels).mean()


mae = Metric(_mae, "mae", check=_same_shape)
mse = Metric(_mse, "mse", check=_same_shape)
rmse = Metric(_mse, "rmse", finish=math.sqrt, check=_same_shape)
binary_accuracy = Metric(_binary_accuracy, "binary_accuracy", check=_same_shape)
categorical_accuracy = Metric(_categorical_accuracy, "categorical_accuracy", check=_same_shape)
sparse_categorical_accuracy = Metric(
    _sparse_categorical_accuracy, "sparse_categorical_accuracy", check=_sparse_shapes
)

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
                return Metric(_sparse_categorical_accuracy, "accuracy", check=_sparse_shapes)
            if loss_name == "categorical_crossentropy":
                return Metric(_categorical_accuracy, "accuracy", check=_same_shape)
            if getattr(loss, "from_logits", False):
                return Metric(_binary_accuracy_logits, "accuracy", check=_same_shape)
            return Metric(_binary_accuracy, "accuracy", check=_same_shape)
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
