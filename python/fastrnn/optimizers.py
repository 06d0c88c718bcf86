"""Optimizers (SGD with momentum, Adam, RMSprop) with Keras's update rules and clipping.

Every optimizer updates arrays in place. A model hands over all its weights as
ONE flat buffer plus one flat gradient buffer (``_apply_flat``), so an update
costs a handful of vectorised NumPy calls however many layers there are;
``apply_gradients`` is the Keras-style entry point for lists of arrays.

Clipping, applied to the gradients before the update, in this order:

1. ``clipvalue``: each element to ``[-clipvalue, clipvalue]``;
2. ``clipnorm``: each variable (weight array) rescaled to L2 norm <= ``clipnorm``;
3. ``global_clipnorm``: all gradients rescaled together so their joint
   L2 norm is <= ``global_clipnorm``.

``clipnorm`` and ``global_clipnorm`` are mutually exclusive, as in Keras.
"""

from __future__ import annotations

import math
import numbers
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = ["Optimizer", "SGD", "Adam", "RMSprop", "get"]


def _number(name: str, value, low: float, high: float = math.inf, *, low_open: bool = True,
            high_open: bool = True) -> float:
    """``value`` as a float inside the interval, or a TypeError / ValueError naming it.

    Hyperparameters become plain floats here, so a NumPy scalar cannot reach ``save``'s
    JSON (it raised there); out-of-range ones raised deep inside a step (beta_1 = 1:
    ZeroDivisionError), or trained silently on NaN or uphill (epsilon < 0, rho = 2).
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a number, got {value!r}")
    v = float(value)
    above = v > low if low_open else v >= low
    below = v < high if high_open else v <= high
    if not (math.isfinite(v) and above and below):
        lo, hi = "(" if low_open else "[", ")" if high_open else "]"
        raise ValueError(f"`{name}` must be in {lo}{low:g}, {high:g}{hi}, got {value!r}")
    return v


class Optimizer:
    """Base class: clipping, iteration count and per-variable state.

    Args:
        learning_rate: Step size.
        clipnorm: Per-variable gradient norm bound, or None.
        clipvalue: Per-element gradient bound, or None.
        global_clipnorm: Bound of the norm of all gradients together, or None.

    Raises:
        TypeError: A hyperparameter is not a number.
        ValueError: A non-positive or non-finite learning rate or clipping bound, a
            subclass's hyperparameter out of its range, or both ``clipnorm`` and
            ``global_clipnorm``.
    """

    def __init__(
        self,
        learning_rate: float,
        clipnorm: Optional[float] = None,
        clipvalue: Optional[float] = None,
        global_clipnorm: Optional[float] = None,
    ) -> None:
        self.learning_rate = _number("learning_rate", learning_rate, 0.0)
        clip = {}
        for name, value in (
            ("clipnorm", clipnorm),
            ("clipvalue", clipvalue),
            ("global_clipnorm", global_clipnorm),
        ):
            clip[name] = None if value is None else _number(name, value, 0.0)
        if clipnorm is not None and global_clipnorm is not None:
            raise ValueError("only one of `clipnorm` and `global_clipnorm` can be set")
        self.clipnorm = clip["clipnorm"]
        self.clipvalue = clip["clipvalue"]
        self.global_clipnorm = clip["global_clipnorm"]
        self.iterations = 0
        self._slots: Dict[int, Dict[str, np.ndarray]] = {}

    def get_config(self) -> dict:
        """Returns the constructor arguments as a JSON-serialisable dict."""
        return {
            "learning_rate": self.learning_rate,
            "clipnorm": self.clipnorm,
            "clipvalue": self.clipvalue,
            "global_clipnorm": self.global_clipnorm,
        }

    def _clip(
        self, grads: List[np.ndarray], segments: Optional[Tuple[np.ndarray, np.ndarray]] = None
    ) -> None:
        """Clips gradients in place.

        Args:
            grads: Gradient arrays (modified in place).
            segments: For a flat buffer holding several variables: ``(starts,
                segment_id_per_element)``, so per-variable norms need no loop.
        """
        if self.clipvalue is not None:
            for g in grads:
                np.clip(g, -self.clipvalue, self.clipvalue, out=g)
        if self.clipnorm is not None:
            if segments is not None:
                (g,) = grads
                starts, ids = segments
                norms = np.sqrt(np.add.reduceat(g * g, starts))
                scale = self.clipnorm / np.maximum(norms, self.clipnorm)
                g *= scale.astype(g.dtype, copy=False)[ids]
            else:
                for g in grads:
                    norm = math.sqrt(float(np.vdot(g, g)))
                    if norm > self.clipnorm:
                        g *= self.clipnorm / norm
        if self.global_clipnorm is not None:
            norm = math.sqrt(sum(float(np.vdot(g, g)) for g in grads))
            if norm > self.global_clipnorm:
                for g in grads:
                    g *= self.global_clipnorm / norm

    def _slot(self, key: int, name: str, like: np.ndarray) -> np.ndarray:
        slots = self._slots.setdefault(key, {})
        arr = slots.get(name)
        if arr is None or arr.shape != like.shape or arr.dtype != like.dtype:
            arr = np.zeros_like(like)
            slots[name] = arr
        return arr

    def _update(self, key: int, var: np.ndarray, grad: np.ndarray) -> None:
        raise NotImplementedError

    def apply_gradients(self, grads_and_vars: Iterable[Tuple[np.ndarray, np.ndarray]]) -> None:
        """Applies one update step to each variable, in place.

        Args:
            grads_and_vars: Pairs ``(gradient, variable)``; variables are
                writable float arrays, updated in place. The gradients are not
                modified (clipping works on copies).

        Example:
            >>> w = np.array([1.0, -2.0])
            >>> SGD(learning_rate=0.1).apply_gradients([(2 * w, w)])
            >>> w
            array([ 0.8, -1.6])
        """
        pairs = list(grads_and_vars)
        grads = [np.array(g, dtype=v.dtype) for g, v in pairs]
        for g, (_, v) in zip(grads, pairs):
            if g.shape != v.shape:
                raise ValueError(
                    f"gradient shape {g.shape} does not match variable shape {v.shape}"
                )
        self._clip(grads)
        self.iterations += 1
        for k, (g, (_, v)) in enumerate(zip(grads, pairs)):
            self._update(k, v, g)

    def _apply_flat(self, flat_vars: np.ndarray, flat_grads: np.ndarray, segments) -> None:
        """Model fast path: one flat weight buffer, one flat gradient buffer (clipped in place)."""
        self._clip([flat_grads], segments)
        self.iterations += 1
        self._update(0, flat_vars, flat_grads)

    def __getstate__(self):
        # The weak reference to the model this optimizer trains (Sequential.compile)
        # cannot be pickled; an unpickled model binds its copy again.
        state = self.__dict__.copy()
        state.pop("_owner", None)
        return state

    def reset(self) -> None:
        """Forgets the iteration count and all moment estimates."""
        self.iterations = 0
        self._slots.clear()


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum, as Keras.

    Update: ``m = momentum * m - lr * g``; then ``w += m`` or, with Nesterov,
    ``w += momentum * m - lr * g``. Without momentum, ``w -= lr * g``.

    Args:
        learning_rate: Step size.
        momentum: In [0, 1).
        nesterov: Use Nesterov momentum.
        **clipping: ``clipnorm``, ``clipvalue``, ``global_clipnorm``.

    Example:
        >>> opt = SGD(learning_rate=0.01, momentum=0.9, clipnorm=1.0)
    """

    def __init__(
        self, learning_rate: float = 0.01, momentum: float = 0.0, nesterov: bool = False, **clipping
    ) -> None:
        super().__init__(learning_rate, **clipping)
        self.momentum = _number("momentum", momentum, 0.0, 1.0, low_open=False)
        self.nesterov = bool(nesterov)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}

    def _update(self, key, var, grad):
        lr = self.learning_rate
        if self.momentum == 0.0:
            grad *= lr
            var -= grad
            return
        m = self._slot(key, "momentum", var)
        m *= self.momentum
        grad *= lr
        m -= grad
        if self.nesterov:
            var += self.momentum * m
            var -= grad
        else:
            var += m


class Adam(Optimizer):
    """Adam (Kingma & Ba) in Keras's form.

    ``m = b1*m + (1-b1)*g``, ``v = b2*v + (1-b2)*g**2``,
    ``w -= lr * sqrt(1-b2**t) / (1-b1**t) * m / (sqrt(v) + epsilon)``.

    Args:
        learning_rate: Step size.
        beta_1: Decay of the first moment.
        beta_2: Decay of the second moment.
        epsilon: Added to ``sqrt(v)``.
        **clipping: ``clipnorm``, ``clipvalue``, ``global_clipnorm``.

    Example:
        >>> opt = Adam(learning_rate=1e-3, global_clipnorm=1.0)
    """

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        **clipping,
    ) -> None:
        super().__init__(learning_rate, **clipping)
        self.beta_1 = _number("beta_1", beta_1, 0.0, 1.0, low_open=False)
        self.beta_2 = _number("beta_2", beta_2, 0.0, 1.0, low_open=False)
        self.epsilon = _number("epsilon", epsilon, 0.0)

    def get_config(self):
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
        }

    def _update(self, key, var, grad):
        t = self.iterations
        b1, b2 = self.beta_1, self.beta_2
        m = self._slot(key, "m", var)
        v = self._slot(key, "v", var)
        tmp = self._slot(key, "tmp", var)
        alpha = self.learning_rate * math.sqrt(1.0 - b2**t) / (1.0 - b1**t)
        m *= b1
        np.multiply(grad, 1.0 - b1, out=tmp)
        m += tmp
        v *= b2
        grad *= grad
        grad *= 1.0 - b2
        v += grad
        np.sqrt(v, out=tmp)
        tmp += self.epsilon
        np.divide(m, tmp, out=tmp)
        tmp *= alpha
        var -= tmp


class RMSprop(Optimizer):
    """RMSprop in Keras's form (optionally centred, with momentum).

    ``v = rho*v + (1-rho)*g**2``; ``step = lr * g / sqrt(v - mg**2 + epsilon)``
    (``mg``, the mean gradient, only when centred); then ``w -= step``, or with
    momentum ``mom = momentum*mom + step; w -= mom``.

    Args:
        learning_rate: Step size.
        rho: Decay of the squared-gradient average.
        momentum: In [0, 1).
        epsilon: Added under the square root.
        centered: Normalise by the variance instead of the second moment.
        **clipping: ``clipnorm``, ``clipvalue``, ``global_clipnorm``.

    Example:
        >>> opt = RMSprop(learning_rate=1e-3, clipvalue=0.5)
    """

    def __init__(
        self,
        learning_rate: float = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
        **clipping,
    ) -> None:
        super().__init__(learning_rate, **clipping)
        self.rho = _number("rho", rho, 0.0, 1.0, low_open=False)
        self.momentum = _number("momentum", momentum, 0.0, 1.0, low_open=False)
        self.epsilon = _number("epsilon", epsilon, 0.0)
        self.centered = bool(centered)

    def get_config(self):
        return {
            **super().get_config(),
            "rho": self.rho,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "centered": self.centered,
        }

    def _update(self, key, var, grad):
        rho = self.rho
        v = self._slot(key, "v", var)
        tmp = self._slot(key, "tmp", var)
        v *= rho
        np.multiply(grad, grad, out=tmp)
        tmp *= 1.0 - rho
        v += tmp
        if self.centered:
            mg = self._slot(key, "mg", var)
            mg *= rho
            mg += (1.0 - rho) * grad
            np.multiply(mg, mg, out=tmp)
            np.subtract(v, tmp, out=tmp)
            tmp += self.epsilon
        else:
            np.add(v, self.epsilon, out=tmp)
        np.sqrt(tmp, out=tmp)
        np.divide(grad, tmp, out=tmp)
        tmp *= self.learning_rate
        if self.momentum > 0.0:
            mom = self._slot(key, "mom", var)
            mom *= self.momentum
            mom += tmp
            var -= mom
        else:
            var -= tmp


_BY_NAME = {"sgd": SGD, "adam": Adam, "rmsprop": RMSprop}


def get(identifier: Union[str, Optimizer]) -> Optimizer:
    """Returns an optimizer from a name (``'adam'``, ``'sgd'``, ``'rmsprop'``) or passes one through.

    Raises:
        ValueError: If the name is unknown.
    """
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower())
        if cls is None:
            raise ValueError(
                f"unknown optimizer {identifier!r}; expected one of {sorted(_BY_NAME)} or an Optimizer"
            )
        return cls()
    raise TypeError(
        f"optimizer must be a name or a fastrnn.optimizers.Optimizer, got {type(identifier).__name__}"
    )


def from_config(class_name: str, config: dict) -> Optimizer:
    """Rebuilds an optimizer saved with ``Model.save`` (without its moment estimates)."""
    classes = {"SGD": SGD, "Adam": Adam, "RMSprop": RMSprop}
    if class_name not in classes:
        raise ValueError(f"unknown optimizer class {class_name!r}")
    return classes[class_name](**config)


def _segment_index(sizes: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
    """Precomputes ``(starts, segment id per element)`` for per-variable clipnorm on a flat buffer."""
    sizes = np.asarray(sizes, dtype=np.intp)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
    ids = np.repeat(np.arange(len(sizes), dtype=np.intp), sizes)
    return starts, ids
