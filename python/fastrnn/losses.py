"""Loss functions of the model layer: value and gradient in one pass.

Every loss reduces like Keras: the per-sample loss is averaged over the last
axis (regression) or summed over the class axis (cross-entropies), and the
result is averaged over all remaining axes (batch, and time when the model
returns sequences). ``value_and_grad`` returns the scalar and d(loss)/d(y_pred)
so the model needs no separate backward call.
"""

from __future__ import annotations

from typing import Callable, Dict, Tuple, Union

import numpy as np

__all__ = [
    "Loss",
    "MeanSquaredError",
    "MeanAbsoluteError",
    "BinaryCrossentropy",
    "CategoricalCrossentropy",
    "SparseCategoricalCrossentropy",
    "get",
]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # exp(-|z|) never overflows, so large logits of either sign stay finite.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype, copy=False)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


class Loss:
    """Base class: subclasses implement ``value_and_grad``.

    Args:
        name: Name used in configs and progress lines.
    """

    #: Whether targets are integer class ids rather than arrays shaped like y_pred.
    sparse_targets = False

    def __init__(self, name: str) -> None:
        self.name = name

    def value_and_grad(self, y_true: np.ndarray, y_pred: np.ndarray) -> Tuple[float, np.ndarray]:
        """Returns the mean loss and its gradient with respect to ``y_pred``.

        Args:
            y_true: Targets, shaped like ``y_pred`` (or its leading axes for
                sparse targets).
            y_pred: Model output, e.g. ``(B, out)`` or ``(B, T, out)``.

        Returns:
            ``(loss, dy_pred)``; ``dy_pred`` has the shape and dtype of ``y_pred``.
        """
        raise NotImplementedError

    def __call__(self, y_true, y_pred) -> float:
        """Returns the mean loss as a Python float."""
        y_pred = np.asarray(y_pred)
        if not np.issubdtype(y_pred.dtype, np.floating):
            y_pred = y_pred.astype(np.float64)
        y_true = np.asarray(y_true)
        if not self.sparse_targets:
            y_true = y_true.astype(y_pred.dtype, copy=False)
        return self.value_and_grad(y_true, y_pred)[0]

    def get_config(self) -> dict:
        """Returns the constructor arguments as a JSON-serialisable dict."""
        return {}

    def _check_shapes(self, y_true: np.ndarray, y_pred: np.ndarray) -> None:
        if y_true.shape != y_pred.shape:
            raise ValueError(
                f"{self.name}: y_true and y_pred must have the same shape, "
                f"got {y_true.shape} and {y_pred.shape}"
            )


class MeanSquaredError(Loss):
    """Mean of ``(y_true - y_pred) ** 2`` over all elements.

    Example:
        >>> MeanSquaredError()(np.zeros((2, 1)), np.ones((2, 1)))
        1.0
    """

    def __init__(self) -> None:
        super().__init__("mse")

    def value_and_grad(self, y_true, y_pred):
        self._check_shapes(y_true, y_pred)
        diff = y_pred - y_true
        value = float(np.vdot(diff, diff)) / diff.size
        diff *= 2.0 / diff.size
        return value, diff


class MeanAbsoluteError(Loss):
    """Mean of ``|y_true - y_pred|`` over all elements; gradient sign/size at 0 is 0.

    Example:
        >>> MeanAbsoluteError()(np.zeros((2, 1)), np.full((2, 1), -3.0))
        3.0
    """

    def __init__(self) -> None:
        super().__init__("mae")

    def value_and_grad(self, y_true, y_pred):
        self._check_shapes(y_true, y_pred)
        diff = y_pred - y_true
        value = float(np.abs(diff).sum()) / diff.size
        grad = np.sign(diff)
        grad *= 1.0 / diff.size
        return value, grad


class BinaryCrossentropy(Loss):
    """Binary cross-entropy, averaged over all elements.

    Args:
        from_logits: If True, ``y_pred`` are logits (a sigmoid is applied inside,
            in a numerically stable form); else probabilities in [0, 1], clipped
            to ``[eps, 1 - eps]`` like Keras.
        epsilon: Clipping bound for probabilities.

    Example:
        >>> round(BinaryCrossentropy(from_logits=True)(np.ones((1, 1)), np.zeros((1, 1))), 4)
        0.6931
    """

    def __init__(self, from_logits: bool = False, epsilon: float = 1e-7) -> None:
        super().__init__("binary_crossentropy")
        self.from_logits = bool(from_logits)
        self.epsilon = float(epsilon)

    def get_config(self):
        return {"from_logits": self.from_logits, "epsilon": self.epsilon}

    def value_and_grad(self, y_true, y_pred):
        self._check_shapes(y_true, y_pred)
        n = y_pred.size
        if self.from_logits:
            z = y_pred
            # log(1 + exp(-|z|)) + max(z, 0) - z*y is the overflow-free form.
            per = np.maximum(z, 0) - z * y_true + np.log1p(np.exp(-np.abs(z)))
            grad = (_sigmoid(z) - y_true) / n
        else:
            p = np.clip(y_pred, self.epsilon, 1.0 - self.epsilon)
            per = -(y_true * np.log(p) + (1.0 - y_true) * np.log1p(-p))
            grad = (p - y_true) / (p * (1.0 - p)) / n
            # Keras's clip has zero gradient outside the open interval.
            grad[(y_pred < self.epsilon) | (y_pred > 1.0 - self.epsilon)] = 0
        return float(per.sum()) / n, grad.astype(y_pred.dtype, copy=False)


class CategoricalCrossentropy(Loss):
    """Cross-entropy with one-hot (or soft) targets over the last axis.

    Args:
        from_logits: If True, ``y_pred`` are logits (log-softmax inside); else
            probabilities, renormalised over the last axis and clipped like Keras.
        epsilon: Clipping bound for probabilities.

    Example:
        >>> round(CategoricalCrossentropy()([[0.0, 1.0]], np.array([[0.5, 0.5]])), 4)
        0.6931
    """

    def __init__(self, from_logits: bool = False, epsilon: float = 1e-7) -> None:
        super().__init__("categorical_crossentropy")
        self.from_logits = bool(from_logits)
        self.epsilon = float(epsilon)

    def get_config(self):
        return {"from_logits": self.from_logits, "epsilon": self.epsilon}

    def _value_and_grad_dense(self, y_true, y_pred):
        m = y_pred[..., 0].size
        if self.from_logits:
            logp = _log_softmax(y_pred)
            value = -float((y_true * logp).sum()) / m
            grad = (np.exp(logp) * y_true.sum(axis=-1, keepdims=True) - y_true) / m
        else:
            s = y_pred.sum(axis=-1, keepdims=True)
            q = y_pred / s
            qc = np.clip(q, self.epsilon, 1.0 - self.epsilon)
            value = -float((y_true * np.log(qc)).sum()) / m
            dq = -y_true / qc
            dq[(q < self.epsilon) | (q > 1.0 - self.epsilon)] = 0
            # Back through the renormalisation q = p / sum(p).
            grad = (dq - (dq * q).sum(axis=-1, keepdims=True)) / s / m
        return value, grad.astype(y_pred.dtype, copy=False)

    def value_and_grad(self, y_true, y_pred):
        self._check_shapes(y_true, y_pred)
        return self._value_and_grad_dense(y_true, y_pred)


class SparseCategoricalCrossentropy(CategoricalCrossentropy):
    """Cross-entropy with integer class ids as targets.

    ``y_true`` has the shape of ``y_pred`` without its last (class) axis.

    Args:
        from_logits: As in ``CategoricalCrossentropy``.
        epsilon: As in ``CategoricalCrossentropy``.

    Example:
        >>> round(SparseCategoricalCrossentropy(from_logits=True)([1], np.zeros((1, 2))), 4)
        0.6931
    """

    sparse_targets = True

    def __init__(self, from_logits: bool = False, epsilon: float = 1e-7) -> None:
        super().__init__(from_logits, epsilon)
        self.name = "sparse_categorical_crossentropy"

    def value_and_grad(self, y_true, y_pred):
        if y_true.shape != y_pred.shape[:-1]:
            raise ValueError(
                f"{self.name}: y_true must have shape {y_pred.shape[:-1]} (class ids), "
                f"got {y_true.shape}"
            )
        k = y_pred.shape[-1]
        labels = y_true.astype(np.intp, copy=False)
        if labels.size and not np.array_equal(labels, y_true):
            # A label of 1.7 was truncated to class 1, silently.
            bad = y_true.ravel()[labels.ravel() != y_true.ravel()]
            raise ValueError(f"{self.name}: class ids must be integers, got {bad[0].item()!r}")
        if labels.size and (labels.min() < 0 or labels.max() >= k):
            raise ValueError(
                f"{self.name}: class ids must be in [0, {k}), got {labels.min()}..{labels.max()}"
            )
        one_hot = np.zeros(y_pred.shape, dtype=y_pred.dtype)
        np.put_along_axis(one_hot, labels[..., None], 1.0, axis=-1)
        return self._value_and_grad_dense(one_hot, y_pred)


_ALIASES: Dict[str, Callable[[], Loss]] = {
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "binary_crossentropy": BinaryCrossentropy,
    "bce": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
}


def get(identifier: Union[str, Loss]) -> Loss:
    """Returns a ``Loss`` from a name (``'mse'``, ``'mae'``, ...) or passes one through.

    Raises:
        ValueError: If the name is unknown.
    """
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        if key in _ALIASES:
            return _ALIASES[key]()
        raise ValueError(
            f"unknown loss {identifier!r}; expected one of {sorted(_ALIASES)} or a Loss instance"
        )
    raise TypeError(
        f"loss must be a name or a fastrnn.losses.Loss, got {type(identifier).__name__}"
    )


def from_config(class_name: str, config: dict) -> Loss:
    """Rebuilds a loss saved with ``Model.save``."""
    classes = {
        c.__name__: c
        for c in (
            MeanSquaredError,
            MeanAbsoluteError,
            BinaryCrossentropy,
            CategoricalCrossentropy,
            SparseCategoricalCrossentropy,
        )
    }
    if class_name not in classes:
        raise ValueError(f"unknown loss class {class_name!r}")
    return classes[class_name](**config)
