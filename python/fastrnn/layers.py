"""Keras-style layers (SimpleRNN, LSTM, Dense) whose forward and backward call ``fastrnn.functional``.

The recurrence over time runs in the C++ kernels (``F.rnn_forward`` and
friends): no layer loops over time steps in Python. Weights keep the
functional layout of DESIGN.md: ``w_ih (G*H, I)``, ``w_hh (G*H, H)``,
``b (G*H,)``, ``peephole (3, H)``, gates ordered i, f, g, o; a Dense layer
stores ``w (units, in)`` and ``b (units,)`` (PyTorch's ``Linear`` layout).

A layer builds lazily from the last dimension of its first input. Inside a
model, its weights and gradients become views into the model's two flat
buffers (see ``fastrnn.models``), so one optimizer call updates all of them.
"""

from __future__ import annotations

import itertools
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import functional as F

__all__ = ["Layer", "Dense", "SimpleRNN", "LSTM", "glorot_uniform", "orthogonal", "get"]

Shape = Tuple[Optional[int], ...]

_name_counters: Dict[str, itertools.count] = {}


def _unique_name(prefix: str) -> str:
    n = next(_name_counters.setdefault(prefix, itertools.count()))
    return prefix if n == 0 else f"{prefix}_{n}"


def _float_dtype(dtype) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise TypeError(f"`dtype` must be float32 or float64, got {dt}")
    return dt


def glorot_uniform(rng: np.random.Generator, shape: Tuple[int, int]) -> np.ndarray:
    """Glorot (Xavier) uniform for a weight stored ``(fan_out, fan_in)``.

    Args:
        rng: Random generator.
        shape: ``(fan_out, fan_in)``, e.g. ``w_ih (G*H, I)``.

    Returns:
        A float64 array drawn from U(-l, l), ``l = sqrt(6 / (fan_in + fan_out))``.
    """
    fan_out, fan_in = shape
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape)


def orthogonal(rng: np.random.Generator, shape: Tuple[int, int]) -> np.ndarray:
    """Orthogonal initialiser (Saxe et al.), as Keras's ``Orthogonal`` on the transposed kernel.

    Args:
        rng: Random generator.
        shape: ``(G*H, H)``; the result has orthonormal columns (rows when wider).

    Returns:
        A float64 array of ``shape``.
    """
    rows, cols = shape
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    # Multiplying by sign(diag(r)) makes the distribution uniform (Haar).
    q *= np.sign(np.diag(r))
    return q if rows >= cols else q.T


class Layer:
    """Base class: weights, lazy build, gradients, config.

    Subclasses define ``_weight_names``, ``_create_weights``, ``forward``,
    ``backward`` and ``compute_output_shape``.

    Args:
        name: Layer name; unique default from the class name.
        dtype: ``'float32'`` or ``'float64'``; None takes the model's dtype, or the
            first input's when used alone (float32 for non-float input).
        seed: Seed of the initialisers when the layer is built outside a model.
    """

    _weight_names: Tuple[str, ...] = ()
    _prefix = "layer"

    def __init__(self, name: Optional[str] = None, dtype=None, seed: Optional[int] = None) -> None:
        self.name = name or _unique_name(self._prefix)
        self.dtype: Optional[np.dtype] = None if dtype is None else _float_dtype(dtype)
        self.seed = seed
        self.built = False
        self.input_dim: Optional[int] = None
        self.weights: Dict[str, np.ndarray] = {}
        self.grads: Dict[str, np.ndarray] = {}
        self._grad_views: Optional[Dict[str, np.ndarray]] = None

    # -- building -----------------------------------------------------------------

    def build(self, input_shape: Shape, rng: Optional[np.random.Generator] = None) -> None:
        """Creates the weights for inputs whose last axis is ``input_shape[-1]``.

        Args:
            input_shape: Input shape; only the last entry (features) matters.
            rng: Generator for the initialisers; default ``default_rng(self.seed)``.

        Raises:
            ValueError: If the feature count is not a positive integer.
        """
        input_dim = input_shape[-1]
        if input_dim is None or int(input_dim) <= 0:
            raise ValueError(
                f"{self.name}: the input feature count must be a positive integer, got {input_dim}"
            )
        if self.dtype is None:
            self.dtype = np.dtype(np.float32)
        rng = np.random.default_rng(self.seed) if rng is None else rng
        self.input_dim = int(input_dim)
        values = self._create_weights(rng, self.input_dim)
        self.weights = {
            k: np.ascontiguousarray(values[k], dtype=self.dtype) for k in self._weight_names
        }
        self.built = True

    def _create_weights(self, rng: np.random.Generator, input_dim: int) -> Dict[str, np.ndarray]:
        raise NotImplementedError

    def __getstate__(self):
        # A weak reference to the owning model cannot be pickled; the model binds its
        # layers again when it is unpickled (Sequential.__setstate__).
        state = self.__dict__.copy()
        state.pop("_owner", None)
        return state

    def _bind(self, weight_views: Sequence[np.ndarray], grad_views: Sequence[np.ndarray]) -> None:
        """Moves the weights into caller-owned views (the model's flat buffers)."""
        for k, view in zip(self._weight_names, weight_views):
            view[...] = self.weights[k]
            self.weights[k] = view
        self._grad_views = dict(zip(self._weight_names, grad_views))
        self.grads = dict(self._grad_views)
        self.dtype = weight_views[0].dtype if weight_views else self.dtype

    def _store_grad(self, name: str, value: np.ndarray) -> None:
        if self._grad_views is not None:
            np.copyto(self._grad_views[name], value)
        else:
            self.grads[name] = value

    def weight_shapes(self) -> List[Tuple[int, ...]]:
        """Shapes of the weights, in ``get_weights`` order (layer must be built)."""
        return [self.weights[k].shape for k in self._weight_names]

    def count_params(self) -> int:
        """Number of scalar weights (0 before the layer is built)."""
        return int(sum(w.size for w in self.weights.values()))

    # -- weights ------------------------------------------------------------------

    def get_weights(self) -> List[np.ndarray]:
        """Returns copies of the weights in the functional layout (see the class docstring)."""
        return [self.weights[k].copy() for k in self._weight_names]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Copies ``weights`` (same order and shapes as ``get_weights``) into the layer.

        Building is implied when the layer is not yet built: the input size is
        read from the first weight.

        Raises:
            ValueError: On a wrong count or shape.
        """
        weights = list(weights)
        if len(weights) != len(self._weight_names):
            raise ValueError(
                f"{self.name}: expected {len(self._weight_names)} weights "
                f"({', '.join(self._weight_names)}), got {len(weights)}"
            )
        if not self.built:
            self.build((None, np.shape(weights[0])[-1]))
        for k, w in zip(self._weight_names, weights):
            w = np.asarray(w)
            if w.shape != self.weights[k].shape:
                raise ValueError(
                    f"{self.name}: weight {k!r} must have shape {self.weights[k].shape}, got {w.shape}"
                )
            self.weights[k][...] = w

    # -- computation ---------------------------------------------------------------

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        """Returns the output shape for ``input_shape`` (None for unknown sizes)."""
        raise NotImplementedError

    def forward(self, x: np.ndarray, training: bool = False):
        """Computes the output; with ``training=True`` keeps what ``backward`` needs.

        ``x`` must already have the layer's dtype (``__call__`` converts).
        """
        raise NotImplementedError

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """Back-propagates ``dy`` through the last training forward.

        Stores the weight gradients in ``self.grads`` (same keys as
        ``self.weights``) and returns d(loss)/dx.
        """
        raise NotImplementedError

    def __call__(self, x, **kwargs):
        """Inference call: converts ``x`` to the layer's dtype, builds if needed, runs ``forward``."""
        x = np.asarray(x)
        if self.dtype is None:
            self.dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.dtype(np.float32)
        x = np.asarray(x, dtype=self.dtype)
        if not self.built:
            self.build(x.shape)
        self._check_input(x)
        return self.forward(x, **kwargs)

    def _check_input(self, x: np.ndarray) -> None:
        if x.shape[-1] != self.input_dim:
            raise ValueError(
                f"{self.name}: expected inputs with {self.input_dim} features (last axis), got shape {x.shape}"
            )

    # -- config -------------------------------------------------------------------

    def get_config(self) -> dict:
        """Returns the constructor arguments as a JSON-serialisable dict."""
        return {"name": self.name, "dtype": None if self.dtype is None else self.dtype.name}

    @classmethod
    def from_config(cls, config: dict) -> "Layer":
        """Creates an unbuilt layer from ``get_config()``'s output."""
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} built={self.built}>"


_ACTIVATIONS = ("linear", "relu", "tanh", "sigmoid", "softmax")


def _check_activation(activation: Optional[str]) -> str:
    act = "linear" if activation is None else str(activation).lower()
    if act not in _ACTIVATIONS:
        raise ValueError(f"`activation` must be one of {_ACTIVATIONS} or None, got {activation!r}")
    return act


class Dense(Layer):
    """Fully connected layer ``y = act(x @ w.T + b)`` on the last axis.

    Applied to a sequence ``(B, T, in)`` it acts on every step.

    Args:
        units: Output size.
        activation: None/``'linear'``, ``'relu'``, ``'tanh'``, ``'sigmoid'`` or ``'softmax'``.
        name, dtype, seed: See ``Layer``.

    Weights: ``w (units, in)`` (glorot uniform), ``b (units,)`` (zeros).

    Example:
        >>> layer = Dense(3, seed=0)
        >>> layer(np.ones((2, 5))).shape
        (2, 3)
    """

    _weight_names = ("w", "b")
    _prefix = "dense"

    def __init__(self, units: int, activation: Optional[str] = None, **kwargs) -> None:
        if not isinstance(units, (int, np.integer)) or isinstance(units, bool) or units <= 0:
            raise ValueError(f"`units` must be a positive integer, got {units!r}")
        super().__init__(**kwargs)
        self.units = int(units)
        self.activation = _check_activation(activation)
        self._x2: Optional[np.ndarray] = None
        self._y: Optional[np.ndarray] = None

    def _create_weights(self, rng, input_dim):
        return {"w": glorot_uniform(rng, (self.units, input_dim)), "b": np.zeros(self.units)}

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def forward(self, x, training=False):
        x2 = x.reshape(-1, x.shape[-1])
        z = x2 @ self.weights["w"].T
        z += self.weights["b"]
        act = self.activation
        if act == "relu":
            np.maximum(z, 0, out=z)
        elif act == "tanh":
            np.tanh(z, out=z)
        elif act == "sigmoid":
            # exp(-z) may overflow to inf for very negative z; 1/inf = 0 is the right limit.
            with np.errstate(over="ignore"):
                np.negative(z, out=z)
                np.exp(z, out=z)
            z += 1
            np.reciprocal(z, out=z)
        elif act == "softmax":
            z -= z.max(axis=1, keepdims=True)
            np.exp(z, out=z)
            z /= z.sum(axis=1, keepdims=True)
        y = z.reshape(x.shape[:-1] + (self.units,))
        if training:
            self._x2, self._y = x2, z
        return y

    def backward(self, dy):
        if self._x2 is None:
            raise RuntimeError(f"{self.name}: backward needs a forward with training=True first")
        dz = dy.reshape(-1, self.units)
        y = self._y
        act = self.activation
        if act == "relu":
            dz = dz * (y > 0)
        elif act == "tanh":
            dz = dz * (1 - y * y)
        elif act == "sigmoid":
            dz = dz * (y * (1 - y))
        elif act == "softmax":
            dz = y * (dz - (dz * y).sum(axis=1, keepdims=True))
        self._store_grad("w", dz.T @ self._x2)
        self._store_grad("b", dz.sum(axis=0))
        dx = dz @ self.weights["w"]
        shape = dy.shape[:-1] + (self.input_dim,)
        self._x2 = self._y = None
        return dx.reshape(shape)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": self.activation}


class _Recurrent(Layer):
    """Shared parts of the recurrent layers: return_sequences/return_state, state handling."""

    _gates = 1

    def __init__(
        self, units: int, return_sequences: bool = False, return_state: bool = False, **kwargs
    ) -> None:
        if not isinstance(units, (int, np.integer)) or isinstance(units, bool) or units <= 0:
            raise ValueError(f"`units` must be a positive integer, got {units!r}")
        super().__init__(**kwargs)
        self.units = int(units)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self._cache = None
        self._has_initial_state = False
        self.d_initial_state: Optional[List[np.ndarray]] = None

    def _create_weights(self, rng, input_dim):
        gh = self._gates * self.units
        return {
            "w_ih": glorot_uniform(rng, (gh, input_dim)),
            "w_hh": orthogonal(rng, (gh, self.units)),
            "b": np.zeros(gh),
        }

    def compute_output_shape(self, input_shape):
        if self.return_sequences:
            return (input_shape[0], input_shape[1], self.units)
        return (input_shape[0], self.units)

    def _check_input(self, x):
        if x.ndim != 3:
            raise ValueError(
                f"{self.name}: expected a 3-D input (batch, timesteps, {self.input_dim}), "
                f"got {x.ndim}-D with shape {x.shape}"
            )
        super()._check_input(x)

    def _initial_states(self, initial_state, batch: int, count: int) -> List[Optional[np.ndarray]]:
        if initial_state is None:
            self._has_initial_state = False
            return [None] * count
        states = [initial_state] if isinstance(initial_state, np.ndarray) else list(initial_state)
        if len(states) != count:
            raise ValueError(
                f"{self.name}: expected {count} initial state array(s), got {len(states)}"
            )
        out = []
        for s in states:
            s = np.asarray(s, dtype=self.dtype)
            if s.shape != (batch, self.units):
                raise ValueError(
                    f"{self.name}: each initial state must have shape {(batch, self.units)}, got {s.shape}"
                )
            out.append(s)
        self._has_initial_state = True
        return out

    def _outputs(self, h_seq, states):
        y = h_seq if self.return_sequences else states[0]
        return [y, *states] if self.return_state else y

    def _split_dy(self, dy, n_states):
        """Maps the output gradient(s) to ``(dh_seq, dh_n[, dc_n])`` for the functional backward."""
        if self.return_state:
            dy = list(dy)
            if len(dy) != 1 + n_states:
                raise ValueError(
                    f"{self.name}: expected {1 + n_states} gradients (output and states), got {len(dy)}"
                )
            dout, dstates = (
                dy[0],
                [None if d is None else np.asarray(d, dtype=self.dtype) for d in dy[1:]],
            )
        else:
            dout, dstates = dy, [None] * n_states
        dout = None if dout is None else np.asarray(dout, dtype=self.dtype)
        if self.return_sequences:
            return dout, dstates
        # Without sequences the output is h_n itself: its gradient adds to dh_n.
        if dstates[0] is None:
            dstates[0] = dout
        elif dout is not None:
            dstates[0] = dstates[0] + dout
        return None, dstates

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
        }


class SimpleRNN(_Recurrent):
    """Elman RNN ``h_t = act(W_ih x_t + W_hh h_{t-1} + b)``, on the C++ kernels.

    Args:
        units: Hidden size H.
        activation: ``'tanh'`` or ``'relu'``.
        return_sequences: Return ``h_seq (B, T, H)`` instead of ``h_n (B, H)``.
        return_state: Also return the final state: ``[output, h_n]``.
        name, dtype, seed: See ``Layer``.

    Input: ``(B, T, I)``. Weights: ``w_ih (H, I)`` glorot uniform, ``w_hh (H, H)``
    orthogonal, ``b (H,)`` zeros.

    Example:
        >>> rnn = SimpleRNN(4, return_sequences=True, seed=0)
        >>> rnn(np.zeros((2, 7, 3), np.float32)).shape
        (2, 7, 4)
    """

    _weight_names = ("w_ih", "w_hh", "b")
    _prefix = "simple_rnn"

    def __init__(self, units: int, activation: str = "tanh", **kwargs) -> None:
        if activation not in ("tanh", "relu"):
            raise ValueError(f"`activation` must be 'tanh' or 'relu', got {activation!r}")
        super().__init__(units, **kwargs)
        self.activation = activation

    def forward(self, x, training=False, initial_state=None):
        (h0,) = self._initial_states(initial_state, x.shape[0], 1)
        w = self.weights
        out = F.rnn_forward(
            x, h0, w["w_ih"], w["w_hh"], w["b"], nonlinearity=self.activation, training=training
        )
        self._cache = out.cache
        return self._outputs(out.h_seq, [out.h_n])

    def backward(self, dy):
        if self._cache is None:
            raise RuntimeError(f"{self.name}: backward needs a forward with training=True first")
        dh_seq, (dh_n,) = self._split_dy(dy, 1)
        g = F.rnn_backward(dh_seq, dh_n, self._cache)
        self._cache = None
        self._store_grad("w_ih", g.dw_ih)
        self._store_grad("w_hh", g.dw_hh)
        self._store_grad("b", g.db)
        self.d_initial_state = [g.dh0] if self._has_initial_state else None
        return g.dx

    def get_config(self):
        return {**super().get_config(), "activation": self.activation}


class LSTM(_Recurrent):
    """Long short-term memory layer (gates i, f, g, o; optional diagonal peepholes).

    Args:
        units: Hidden size H.
        peephole: Add peephole weights ``(3, H)`` (rows i, f, o), initialised to 0.
        return_sequences: Return ``h_seq (B, T, H)`` instead of ``h_n (B, H)``.
        return_state: Also return the final states: ``[output, h_n, c_n]``.
        unit_forget_bias: Initialise the forget-gate bias to 1 (Keras default).
        name, dtype, seed: See ``Layer``.

    Input: ``(B, T, I)``. Weights: ``w_ih (4H, I)`` glorot uniform, ``w_hh (4H, H)``
    orthogonal, ``b (4H,)`` zeros except the forget block, then ``peephole``.

    Example:
        >>> lstm = LSTM(8, seed=0)
        >>> lstm(np.zeros((2, 5, 3))).shape
        (2, 8)
    """

    _gates = 4
    _prefix = "lstm"

    def __init__(
        self, units: int, peephole: bool = False, unit_forget_bias: bool = True, **kwargs
    ) -> None:
        super().__init__(units, **kwargs)
        self.peephole = bool(peephole)
        self.unit_forget_bias = bool(unit_forget_bias)
        self._weight_names = (
            ("w_ih", "w_hh", "b", "peephole") if self.peephole else ("w_ih", "w_hh", "b")
        )

    def _create_weights(self, rng, input_dim):
        values = super()._create_weights(rng, input_dim)
        if self.unit_forget_bias:
            values["b"][self.units : 2 * self.units] = 1.0
        if self.peephole:
            values["peephole"] = np.zeros((3, self.units))
        return values

    def forward(self, x, training=False, initial_state=None):
        h0, c0 = self._initial_states(initial_state, x.shape[0], 2)
        w = self.weights
        out = F.lstm_forward(
            x, h0, c0, w["w_ih"], w["w_hh"], w["b"], w.get("peephole"), training=training
        )
        self._cache = out.cache
        return self._outputs(out.h_seq, [out.h_n, out.c_n])

    def backward(self, dy):
        if self._cache is None:
            raise RuntimeError(f"{self.name}: backward needs a forward with training=True first")
        dh_seq, (dh_n, dc_n) = self._split_dy(dy, 2)
        g = F.lstm_backward(dh_seq, dh_n, dc_n, self._cache)
        self._cache = None
        self._store_grad("w_ih", g.dw_ih)
        self._store_grad("w_hh", g.dw_hh)
        self._store_grad("b", g.db)
        if self.peephole:
            self._store_grad("peephole", g.dpeephole)
        self.d_initial_state = [g.dh0, g.dc0] if self._has_initial_state else None
        return g.dx

    def get_config(self):
        return {
            **super().get_config(),
            "peephole": self.peephole,
            "unit_forget_bias": self.unit_forget_bias,
        }


_LAYERS = {"Dense": Dense, "SimpleRNN": SimpleRNN, "LSTM": LSTM}


def get(class_name: str) -> type:
    """Returns the layer class registered under ``class_name`` (used by ``models.load``).

    Raises:
        ValueError: If the class is unknown.
    """
    if class_name not in _LAYERS:
        raise ValueError(f"unknown layer class {class_name!r}; expected one of {sorted(_LAYERS)}")
    return _LAYERS[class_name]
