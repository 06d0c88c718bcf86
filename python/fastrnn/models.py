"""Keras-style models: ``Sequential`` and the ready-made ``RNN`` / ``LSTM`` regressors.

Usage (the seed's example)::

    model = fastrnn.models.LSTM(input_dim=10, hidden_dim=50, output_dim=1)
    model.compile(optimizer="adam", loss="mse")
    model.fit(x_train, y_train, epochs=100, batch_size=32)
    preds = model.predict(x_test)

Training works on the C++ kernels through the layers; the Python side of a
step is a few array operations. All weights of a built model live in ONE flat
buffer (each layer's weights are reshaped views of it) and all gradients in
another, so the optimizer updates everything with a few vectorised calls.

``fit`` / ``predict`` / ``evaluate`` accept lists or arrays of any float dtype
and convert them once to the model's dtype; shapes are checked up front with
messages that say what was expected.

``save`` writes one ``.npz`` holding the weights and a JSON config (no pickle:
``load`` uses ``np.load(allow_pickle=False)``, so an untrusted file cannot run
code).
"""

from __future__ import annotations

import json
import math
import numbers
import os
import warnings
import weakref
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import callbacks as callbacks_module
from . import layers as L
from . import losses as losses_module
from . import metrics as metrics_module
from . import optimizers as optimizers_module
from ._training import SingleProcess

__all__ = ["Sequential", "RNN", "LSTM", "load"]

_FORMAT = "fastrnn.model"
_FORMAT_VERSION = 1
_DEFAULT_BATCH = 32
_PREDICT_BATCH = 256


def _count(name: str, value, default: int, minimum: int = 1) -> int:
    """An integer argument (numpy's count) of at least ``minimum``; None gives ``default``.
    A float such as 2.9 used to be truncated silently, and epochs=-3 trained nothing."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _as_float_array(data, dtype: np.dtype, what: str) -> np.ndarray:
    """Converts lists / any real arrays to ``dtype`` in one step (no copy when it already is)."""
    arr = np.asarray(data)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(
            f"{what} must be numeric (a nested list or an array of numbers), got dtype {arr.dtype}"
        )
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{what} must be real, got dtype {arr.dtype}")
    return np.asarray(arr, dtype=dtype)


class Sequential:
    """A linear stack of layers trained with backpropagation through time.

    Args:
        layers: Layers, applied in order (more can be added with ``add``).
        name: Model name shown by ``summary``.
        dtype: ``'float32'`` (default) or ``'float64'``; every layer and all
            data use it.
        seed: Seed for weight initialisation and shuffling; the same seed gives
            a bit-identical training run. None draws fresh entropy.

    Example:
        >>> model = Sequential([fastrnn.layers.LSTM(16), fastrnn.layers.Dense(1)], seed=0)
        >>> model.compile(optimizer="adam", loss="mse")
        >>> history = model.fit(np.zeros((8, 5, 3)), np.zeros((8, 1)), epochs=1, verbose=0)
    """

    def __init__(
        self,
        layers: Optional[Sequence[L.Layer]] = None,
        *,
        name: Optional[str] = None,
        dtype="float32",
        seed: Optional[int] = None,
    ) -> None:
        self.name = name or "sequential"
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"`dtype` must be 'float32' or 'float64', got {dtype!r}")
        if seed is not None:
            # A plain int, so that save() can write it (a NumPy integer is no JSON).
            if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
                raise TypeError(f"`seed` must be a non-negative integer or None, got {seed!r}")
            seed = int(seed)
        self.seed = seed
        init_seq, shuffle_seq = np.random.SeedSequence(seed).spawn(2)
        self._init_rng = np.random.default_rng(init_seq)
        self._shuffle_rng = np.random.default_rng(shuffle_seq)
        self.layers: List[L.Layer] = []
        self.built = False
        self.input_shape: Optional[Tuple[Optional[int], ...]] = None
        self.output_shape: Optional[Tuple[Optional[int], ...]] = None
        self.optimizer: Optional[optimizers_module.Optimizer] = None
        self.loss: Optional[losses_module.Loss] = None
        self.metrics: List[metrics_module.Metric] = []
        self.stop_training = False
        self.history: Optional[callbacks_module.History] = None
        self._flat_weights: Optional[np.ndarray] = None
        self._flat_grads: Optional[np.ndarray] = None
        self._grad_buffer: Optional[np.ndarray] = None
        self._segments = None
        for layer in layers or []:
            self.add(layer)

    # -- structure ------------------------------------------------------------------

    def add(self, layer: L.Layer) -> None:
        """Appends a layer (only before the model is built).

        Raises:
            TypeError: If ``layer`` is not a ``fastrnn.layers.Layer``.
            ValueError: If the model is already built, or the layer returns states.
        """
        if not isinstance(layer, L.Layer):
            raise TypeError(
                f"Sequential takes fastrnn.layers.Layer instances, got {type(layer).__name__}"
            )
        if self.built:
            raise ValueError("cannot add layers to a built model")
        if getattr(layer, "return_state", False):
            raise ValueError(
                f"{layer.name}: return_state=True layers cannot be used in a Sequential model"
            )
        self.layers.append(layer)

    def _first_is_recurrent(self) -> bool:
        return bool(self.layers) and isinstance(self.layers[0], L._Recurrent)

    def build(self, input_shape: Sequence[Optional[int]]) -> None:
        """Creates all weights for inputs of shape ``input_shape``, e.g. ``(None, None, I)``.

        Raises:
            ValueError: If the model has no layers, or a recurrent layer follows
                a layer that does not return sequences.
        """
        if not self.layers:
            raise ValueError("the model has no layers; add some before building")
        for layer in self.layers:
            # A layer's weights are views of its model's one flat buffer, which that
            # model's optimizer updates: bound to a second model, the first one's training
            # would silently stop reaching them.
            owner = getattr(layer, "_owner", None)
            other = owner() if owner is not None else None
            if other is not None and other is not self:
                raise ValueError(
                    f"layer {layer.name!r} already belongs to another model, and models "
                    "cannot share layers; give this model its own layer (copy the weights "
                    "with set_weights)"
                )
        shape = tuple(None if d is None else int(d) for d in input_shape)
        if self._first_is_recurrent() and len(shape) != 3:
            raise ValueError(
                f"a model starting with a recurrent layer takes (batch, timesteps, features), got {shape}"
            )
        self.input_shape = (None,) + shape[1:]
        shape = self.input_shape
        for i, layer in enumerate(self.layers):
            if isinstance(layer, L._Recurrent) and len(shape) != 3:
                prev = self.layers[i - 1].name if i else "the input"
                raise ValueError(
                    f"{layer.name} needs 3-D input (batch, timesteps, features), but {prev} gives "
                    f"{shape}; set return_sequences=True on {prev}"
                )
            if layer.built:
                if layer.input_dim != shape[-1]:
                    raise ValueError(
                        f"{layer.name} was built for {layer.input_dim} input features, but gets {shape[-1]}"
                    )
            else:
                layer.dtype = self.dtype
                layer.build(shape, rng=self._init_rng)
            shape = layer.compute_output_shape(shape)
        self.output_shape = shape
        self._bind_flat_buffers()
        self.built = True

    def _layer_views(self, flat: np.ndarray) -> List[List[np.ndarray]]:
        """Per layer, views of ``flat`` shaped like its weights, in ``get_weights`` order."""
        views, offset = [], 0
        for layer in self.layers:
            views.append([])
            for shape in layer.weight_shapes():
                n = int(np.prod(shape))
                views[-1].append(flat[offset : offset + n].reshape(shape))
                offset += n
        return views

    def _bind_flat_buffers(self) -> None:
        sizes = [int(np.prod(s)) for layer in self.layers for s in layer.weight_shapes()]
        total = sum(sizes)
        self._flat_weights = np.empty(total, dtype=self.dtype)
        self._grad_buffer = np.zeros(total, dtype=self.dtype)
        self._flat_grads = self._grad_buffer
        weights, grads = self._layer_views(self._flat_weights), self._layer_views(self._flat_grads)
        for layer, w_views, g_views in zip(self.layers, weights, grads):
            layer._bind(w_views, g_views)
            layer._owner = weakref.ref(self)
        self._segments = optimizers_module._segment_index(sizes)

    def _grad_buffer_with_tail(self, tail: int) -> np.ndarray:
        """The flat gradient buffer followed by ``tail`` spare slots, as one array.

        Data-parallel training reduces the gradients together with the batch's
        loss and metric sums in ONE collective call; the spare slots hold those.
        The layers' gradient views are moved into the longer buffer when it grows.
        """
        total = self._flat_weights.size
        if self._grad_buffer.size < total + tail:
            self._grad_buffer = np.zeros(total + tail, dtype=self.dtype)
            self._flat_grads = self._grad_buffer[:total]
            for layer, g_views in zip(self.layers, self._layer_views(self._flat_grads)):
                layer._grad_views = dict(zip(layer._weight_names, g_views))
                layer.grads = dict(layer._grad_views)
        return self._grad_buffer[: total + tail]

    def __getstate__(self):
        # Pickle copies each layer's weight view separately; drop the flat buffers
        # and rebuild them on load so the weights are views of one buffer again.
        state = self.__dict__.copy()
        for key in ("_flat_weights", "_flat_grads", "_grad_buffer"):
            state[key] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self.optimizer is not None:
            self.optimizer._owner = weakref.ref(self)
        if self.built:
            self._bind_flat_buffers()

    def count_params(self) -> int:
        """Number of scalar weights (0 before build)."""
        return 0 if self._flat_weights is None else int(self._flat_weights.size)

    # -- weights --------------------------------------------------------------------

    def get_weights(self) -> List[np.ndarray]:
        """Returns copies of all weights, layer by layer, each in its layer's ``get_weights`` order."""
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Sets all weights from a list in ``get_weights`` order.

        Raises:
            ValueError: If the model is not built, or on a wrong count or shape.
        """
        if not self.built:
            raise ValueError("build the model (or call fit/predict once) before set_weights")
        weights = list(weights)
        expected = sum(len(layer.weights) for layer in self.layers)
        if len(weights) != expected:
            raise ValueError(f"expected {expected} weight arrays, got {len(weights)}")
        i = 0
        for layer in self.layers:
            n = len(layer.weights)
            layer.set_weights(weights[i : i + n])
            i += n

    # -- compile ----------------------------------------------------------------------

    def compile(self, optimizer="adam", loss="mse", metrics=None) -> None:
        """Sets the optimizer, loss and metrics.

        Args:
            optimizer: Name (``'adam'``, ``'sgd'``, ``'rmsprop'``) or an optimizer.
            loss: Name (``'mse'``, ``'mae'``, ``'binary_crossentropy'``,
                ``'categorical_crossentropy'``, ``'sparse_categorical_crossentropy'``)
                or a ``fastrnn.losses.Loss``.
            metrics: Names (``'mae'``, ``'accuracy'``, ...), ``Metric`` objects or
                functions ``fn(y_true, y_pred) -> float``.
        """
        optimizer = optimizers_module.get(optimizer)
        owner = getattr(optimizer, "_owner", None)
        if owner is not None and owner() is not self:
            # Its moments and iteration count are the other model's: a second model
            # trained on from them, silently (Keras refuses such variables too).
            raise ValueError(
                "this optimizer was compiled into another model, whose moments and "
                "iteration count it keeps; give each model its own optimizer (a new "
                f"{type(optimizer).__name__}(...), or a name such as 'adam')"
            )
        optimizer._owner = weakref.ref(self)
        self.optimizer = optimizer
        self.loss = losses_module.get(loss)
        if isinstance(metrics, (str, metrics_module.Metric)) or callable(metrics):
            metrics = [metrics]  # one metric; a string was taken letter by letter
        self.metrics = [metrics_module.get(m, self.loss) for m in (metrics or [])]

    def _require_compiled(self) -> None:
        if self.optimizer is None or self.loss is None:
            raise RuntimeError(
                "the model must be compiled before training or evaluation: call model.compile(...)"
            )

    # -- input checks -------------------------------------------------------------------

    def _prepare_x(self, x, what: str = "x") -> np.ndarray:
        x = _as_float_array(x, self.dtype, what)
        if self._first_is_recurrent():
            feat = self.layers[0].input_dim if self.layers[0].built else None
            if x.ndim != 3:
                expected = f"(batch, timesteps, {feat if feat else 'features'})"
                hint = (
                    "; for one feature per step, add an axis: x[..., None]" if x.ndim == 2 else ""
                )
                raise ValueError(
                    f"{what} must be 3-D {expected}, got {x.ndim}-D with shape {x.shape}{hint}"
                )
            if x.shape[1] == 0:
                raise ValueError(f"{what} must have at least one time step, got shape {x.shape}")
        elif x.ndim < 2:
            raise ValueError(f"{what} must be at least 2-D (batch, features), got shape {x.shape}")
        if x.shape[0] == 0:
            raise ValueError(f"{what} is empty (0 samples)")
        if not self.built:
            # The time axis stays free, as models.LSTM and RNN build it: a model first
            # called on one sequence length takes any other. (Built with T fixed, later
            # calls with another T were answered from the first T's output shape.)
            self.build((None, None, x.shape[2]) if x.ndim == 3 else x.shape)
        elif x.shape[-1] != self.input_shape[-1]:
            middle = "timesteps, " if len(self.input_shape) == 3 else ""
            raise ValueError(
                f"{what} must have {self.input_shape[-1]} features (last axis), i.e. shape "
                f"(batch, {middle}{self.input_shape[-1]}); got {x.shape}"
            )
        elif len(self.input_shape) != x.ndim:
            raise ValueError(f"{what} must be {len(self.input_shape)}-D, got shape {x.shape}")
        elif x.ndim == 3 and self.input_shape[1] not in (None, x.shape[1]):
            raise ValueError(
                f"{what} must have {self.input_shape[1]} time steps: the model was built for "
                f"input shape {self.input_shape}; got {x.shape}"
            )
        return x

    def _expected_y_shape(self, x: np.ndarray) -> Tuple[int, ...]:
        # Output shape with the batch and (for sequences) the time axis of x filled in.
        shape = [x.shape[0]] + list(self.output_shape[1:])
        for i, d in enumerate(shape):
            if d is None:
                shape[i] = x.shape[i]
        return tuple(shape)

    def _prepare_y(self, y, x: np.ndarray, what: str = "y") -> np.ndarray:
        expected = self._expected_y_shape(x)
        if self.loss is not None and self.loss.sparse_targets:
            arr = np.asarray(y)
            want = expected[:-1]
            if arr.shape == want + (1,):
                arr = arr.reshape(want)
            if arr.shape[:1] != want[:1]:
                got = arr.shape[0] if arr.ndim else "a scalar"
                raise ValueError(
                    f"x and {what} must have the same number of samples, got {x.shape[0]} and {got}"
                )
            if arr.shape != want:
                raise ValueError(f"{what} must hold class ids of shape {want}, got {arr.shape}")
            if not np.issubdtype(arr.dtype, np.integer):
                if not np.all(np.equal(np.mod(arr, 1), 0)):
                    raise ValueError(
                        f"{what} must hold integer class ids for sparse_categorical_crossentropy"
                    )
            return arr.astype(np.intp, copy=False)
        arr = _as_float_array(y, self.dtype, what)
        if arr.ndim == 0 or arr.shape[0] != x.shape[0]:
            got = "a scalar" if arr.ndim == 0 else arr.shape[0]
            raise ValueError(
                f"x and {what} must have the same number of samples, got {x.shape[0]} and {got}"
            )
        if arr.ndim == len(expected) - 1 and expected[-1] == 1:
            arr = arr.reshape(arr.shape + (1,))
        if arr.shape != expected:
            raise ValueError(
                f"{what} must have shape {expected} to match the model output, got {arr.shape}"
            )
        return arr

    # -- one step -------------------------------------------------------------------------

    def _forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x, training=training)
        return x

    def _compute_grads(
        self, x: np.ndarray, y: np.ndarray
    ) -> Tuple[float, np.ndarray, Optional[str]]:
        """Forward and backward on converted arrays; fills ``_flat_grads``, no update.

        Returns:
            ``(loss, y_pred, problem)``; ``problem`` is ``'loss'`` when the loss is
            not finite (then no backward ran and the gradients are stale), else None.
        """
        y_pred = self._forward(x, training=True)
        loss, dy = self.loss.value_and_grad(y, y_pred)
        if not math.isfinite(loss):
            for layer in self.layers:
                layer._cache = None
            return loss, y_pred, "loss"
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
        return loss, y_pred, None

    def _apply_grads(self) -> Optional[str]:
        """Updates the weights from ``_flat_grads``; returns ``'gradient'`` and skips
        the update when a gradient is NaN/inf."""
        g = self._flat_grads
        # One dot product catches NaN/inf anywhere in the gradients before they reach the weights.
        if not math.isfinite(float(np.dot(g, g))):
            return "gradient"
        self.optimizer._apply_flat(self._flat_weights, g, self._segments)
        return None

    def _train_step(self, x: np.ndarray, y: np.ndarray) -> Tuple[float, np.ndarray, Optional[str]]:
        """One forward/backward/update on converted arrays.

        Returns:
            ``(loss, y_pred, problem)``; ``problem`` is None, or ``'loss'`` /
            ``'gradient'`` when that was non-finite and the update was skipped.
        """
        loss, y_pred, problem = self._compute_grads(x, y)
        if problem is None:
            problem = self._apply_grads()
        return loss, y_pred, problem

    def train_on_batch(self, x, y) -> float:
        """Runs one training step on a single batch and returns its loss."""
        self._require_compiled()
        x = self._prepare_x(x)
        y = self._prepare_y(y, x)
        loss, _, problem = self._train_step(x, y)
        if problem:
            warnings.warn(
                f"train_on_batch: the {problem} is not finite; the update was skipped",
                RuntimeWarning,
                stacklevel=2,
            )
        return loss

    # -- fit / evaluate / predict ---------------------------------------------------------

    def fit(
        self,
        x,
        y,
        epochs: int = 1,
        batch_size: Optional[int] = None,
        validation_split: float = 0.0,
        validation_data: Optional[Tuple] = None,
        shuffle: bool = True,
        callbacks: Optional[Sequence[callbacks_module.Callback]] = None,
        verbose: int = 1,
        initial_epoch: int = 0,
        distributed: Optional[SingleProcess] = None,
    ) -> callbacks_module.History:
        """Trains the model.

        Args:
            x: Inputs ``(N, T, I)`` (lists or any float dtype; converted once).
            y: Targets ``(N, out)``, or ``(N, T, out)`` with ``return_sequences``;
                ``(N,)`` is accepted when ``out == 1``; class ids for sparse losses.
            epochs: Index of the last epoch (Keras semantics with ``initial_epoch``).
            batch_size: Samples per step (default 32).
            validation_split: Fraction of the data, taken from the END before
                shuffling, used only for validation.
            validation_data: ``(x_val, y_val)``; overrides ``validation_split``.
            shuffle: Reshuffle the training samples every epoch.
            callbacks: ``fastrnn.callbacks.Callback`` instances.
            verbose: 0 silent, 1 live progress bar, 2 one line per epoch.
            initial_epoch: Epoch to start from (for resuming).
            distributed: None trains in this process; ``fastrnn.distributed.MPI()``
                trains data-parallel over MPI: every rank passes the same full
                ``x, y``, ``batch_size`` is the global batch and each rank computes
                its slice of every batch (see ``fastrnn.distributed``).

        Returns:
            A ``History``; ``history.history['loss']`` (and ``'val_loss'``, metrics,
            ``'val_<metric>'``) hold one value per epoch.

        Raises:
            RuntimeError: If the model is not compiled.
            ValueError: On inputs of the wrong rank, feature count or length.

        A NaN or infinite batch loss (or gradient) stops training with a
        ``RuntimeWarning`` naming the epoch and batch; that step is not applied,
        so the weights are those of the last finite step.
        """
        self._require_compiled()
        if verbose not in (0, 1, 2):
            raise ValueError(f"`verbose` must be 0, 1 or 2, got {verbose!r}")
        if distributed is None:
            distributed = SingleProcess()
        elif not isinstance(distributed, SingleProcess):
            raise TypeError(
                "`distributed` must be None or a fastrnn.distributed strategy such as "
                f"fastrnn.distributed.MPI(), got {type(distributed).__name__}"
            )
        batch_size = _count("batch_size", batch_size, _DEFAULT_BATCH)
        epochs = _count("epochs", epochs, 1, minimum=0)
        initial_epoch = _count("initial_epoch", initial_epoch, 0, minimum=0)
        if not 0.0 <= validation_split < 1.0:
            raise ValueError(f"`validation_split` must be in [0, 1), got {validation_split}")
        x = self._prepare_x(x)
        y = self._prepare_y(y, x)
        x_val = y_val = None
        if validation_data is not None:
            if len(validation_data) != 2:
                raise ValueError("`validation_data` must be a tuple (x_val, y_val)")
            x_val = self._prepare_x(validation_data[0], "x_val")
            y_val = self._prepare_y(validation_data[1], x_val, "y_val")
        elif validation_split > 0.0:
            n_val = int(x.shape[0] * validation_split)
            if n_val == 0 or n_val == x.shape[0]:
                raise ValueError(
                    f"validation_split={validation_split} of {x.shape[0]} samples leaves an empty "
                    "training or validation set"
                )
            x, x_val = x[:-n_val], x[-n_val:]
            y, y_val = y[:-n_val], y[-n_val:]

        n = x.shape[0]
        steps = -(-n // batch_size)
        dist = distributed
        history = callbacks_module.History()
        if isinstance(callbacks, callbacks_module.Callback):
            callbacks = [callbacks]
        cbs = list(callbacks or [])
        for c in cbs:
            if not isinstance(c, callbacks_module.Callback):
                raise TypeError(
                    "`callbacks` must hold fastrnn.callbacks.Callback instances, got "
                    f"{type(c).__name__}"
                )
        if verbose:
            cbs.append(callbacks_module.ProgbarLogger(verbose))
        cbs = [c for c in cbs if dist.runs_callback(c)]
        cbs.append(history)
        params = {
            "epochs": epochs,
            "steps": steps,
            "batch_size": batch_size,
            "samples": n,
            "verbose": verbose,
        }
        cb = callbacks_module.CallbackList(cbs, self, params)
        dist.begin_fit(
            self,
            x,
            y,
            None if x_val is None else (x_val, y_val),
            {**params, "initial_epoch": initial_epoch, "shuffle": shuffle},
        )
        self.history = history
        self.stop_training = False
        batch_logs = cb.wants_batch_logs
        # A per-batch callback may stop training on one rank; then all ranks agree
        # after every batch, so none is left waiting in the next step's collective.
        sync_batches = dist.size > 1 and dist.any(batch_logs)
        cb.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            cb.on_epoch_begin(epoch)
            order = self._shuffle_rng.permutation(n) if shuffle else None
            loss_sum = 0.0
            metric_sums = [0.0] * len(self.metrics)
            seen = 0
            for step in range(steps):
                lo, hi = step * batch_size, min(n, (step + 1) * batch_size)
                idx = slice(lo, hi) if order is None else order[lo:hi]
                loss, metric_values, problem = dist.train_step(self, x, y, idx)
                bs = hi - lo
                seen += bs
                loss_sum += loss * bs
                for k, value in enumerate(metric_values):
                    metric_sums[k] += value * bs
                if batch_logs or problem:
                    logs = {"loss": loss_sum / seen}
                    logs.update(
                        (m.name, m.result(s / seen)) for m, s in zip(self.metrics, metric_sums)
                    )
                    cb.on_train_batch_end(step, logs)
                if sync_batches:
                    self.stop_training = dist.any(self.stop_training)
                if problem:
                    what = (
                        f"the loss became {loss}"
                        if problem == "loss"
                        else "the gradients became NaN/inf"
                    )
                    if dist.is_root:
                        warnings.warn(
                            f"fit: {what} at epoch {epoch + 1}, batch {step + 1}; training stopped "
                            "and that step was not applied. Lower the learning rate or clip the "
                            "gradients (e.g. optimizer=Adam(clipnorm=1.0)), and check the data for "
                            "NaN/inf.",
                            RuntimeWarning,
                            stacklevel=2,
                        )
                    self.stop_training = True
                    break
                if self.stop_training:
                    break
            logs = {"loss": loss_sum / seen}
            logs.update((m.name, m.result(s / seen)) for m, s in zip(self.metrics, metric_sums))
            if x_val is not None and math.isfinite(logs["loss"]):
                val = dist.evaluate(self, x_val, y_val, batch_size)
                logs.update((f"val_{k}", v) for k, v in val.items())
            cb.on_epoch_end(epoch, logs)
            self.stop_training = dist.any(self.stop_training) if dist.size > 1 else self.stop_training
            if self.stop_training:
                break
        cb.on_train_end()
        return history

    def _evaluate_sums(
        self, x: np.ndarray, y: np.ndarray, batch_size: int
    ) -> Tuple[float, List[float]]:
        """Sums over samples of the loss and of each metric (inference mode)."""
        loss_sum = 0.0
        metric_sums = [0.0] * len(self.metrics)
        for lo in range(0, x.shape[0], batch_size):
            hi = min(x.shape[0], lo + batch_size)
            y_pred = self._forward(x[lo:hi], training=False)
            loss_sum += self.loss.value_and_grad(y[lo:hi], y_pred)[0] * (hi - lo)
            for k, m in enumerate(self.metrics):
                metric_sums[k] += m.batch_mean(y[lo:hi], y_pred) * (hi - lo)
        return loss_sum, metric_sums

    def _evaluate_arrays(self, x: np.ndarray, y: np.ndarray, batch_size: int) -> Dict[str, float]:
        n = x.shape[0]
        loss_sum, metric_sums = self._evaluate_sums(x, y, batch_size)
        out = {"loss": loss_sum / n}
        out.update((m.name, m.result(s / n)) for m, s in zip(self.metrics, metric_sums))
        return out

    def evaluate(
        self, x, y, batch_size: Optional[int] = None, verbose: int = 0, return_dict: bool = False
    ):
        """Computes the loss (and metrics) on data, in inference mode.

        Args:
            x: Inputs, as in ``fit``.
            y: Targets, as in ``fit``.
            batch_size: Samples per forward call (default 32).
            verbose: 1 or 2 prints the result line.
            return_dict: Return ``{'loss': ..., <metric>: ...}``.

        Returns:
            The loss as a float when there are no metrics, else ``[loss, *metrics]``
            (or the dict).
        """
        self._require_compiled()
        batch_size = _count("batch_size", batch_size, _DEFAULT_BATCH)
        x = self._prepare_x(x)
        y = self._prepare_y(y, x)
        result = self._evaluate_arrays(x, y, batch_size)
        if verbose:
            print(callbacks_module._format_logs(result))
        if return_dict:
            return result
        values = list(result.values())
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size: Optional[int] = None, verbose: int = 0) -> np.ndarray:
        """Runs the model in inference mode (no cache kept).

        Args:
            x: Inputs ``(N, T, I)``; lists or any float dtype (converted once).
            batch_size: Samples per forward call (default 256).
            verbose: Unused; kept for Keras compatibility.

        Returns:
            ``(N, out)``, or ``(N, T, out)`` with ``return_sequences``, in the model's dtype.
            For a dask array ``x``, a lazy dask array (``fastrnn.dask.predict``).
        """
        if hasattr(x, "__dask_graph__") and hasattr(x, "chunks"):  # a dask array, without importing dask
            from . import dask as dask_module

            return dask_module.predict(self, x, batch_size=batch_size)
        batch_size = _count("batch_size", batch_size, _PREDICT_BATCH)
        x = self._prepare_x(x)
        n = x.shape[0]
        if n <= batch_size:
            return self._forward(x, training=False)
        out = np.empty(self._expected_y_shape(x), dtype=self.dtype)
        for lo in range(0, n, batch_size):
            hi = min(n, lo + batch_size)
            out[lo:hi] = self._forward(x[lo:hi], training=False)
        return out

    def __call__(self, x) -> np.ndarray:
        """Same as ``predict(x)``."""
        return self.predict(x)

    # -- summary ---------------------------------------------------------------------------

    def summary(self, print_fn=print) -> None:
        """Prints a table of layers, output shapes and parameter counts."""
        lines = [f'Model: "{self.name}"']
        if not self.built:
            lines.append("(not built yet: call build(input_shape), fit or predict first)")
            for layer in self.layers:
                lines.append(f"  {layer.name} ({type(layer).__name__})")
            print_fn("\n".join(lines))
            return
        rows = [("Layer (type)", "Output Shape", "Param #")]
        shape = self.input_shape
        for layer in self.layers:
            shape = layer.compute_output_shape(shape)
            rows.append(
                (f"{layer.name} ({type(layer).__name__})", str(shape), f"{layer.count_params():,}")
            )
        widths = [max(len(r[i]) for r in rows) + 2 for i in range(3)]
        rule = "-" * sum(widths)
        lines.append(rule)
        for i, r in enumerate(rows):
            lines.append("".join(c.ljust(w) for c, w in zip(r, widths)))
            if i == 0:
                lines.append("=" * sum(widths))
        lines.append(rule)
        lines.append(f"Total params: {self.count_params():,} ({self.dtype.name})")
        print_fn("\n".join(lines))

    # -- config and persistence ---------------------------------------------------------------

    def get_config(self) -> dict:
        """Returns a JSON-serialisable description of the architecture."""
        return {
            "name": self.name,
            "dtype": self.dtype.name,
            "seed": self.seed,
            "layers": [
                {"class_name": type(l).__name__, "config": l.get_config()} for l in self.layers
            ],
        }

    @classmethod
    def from_config(cls, config: dict) -> "Sequential":
        """Rebuilds an unbuilt model from ``get_config()``'s output."""
        layers = [
            L.get(spec["class_name"]).from_config(spec["config"]) for spec in config["layers"]
        ]
        return cls(
            layers,
            name=config.get("name"),
            dtype=config.get("dtype", "float32"),
            seed=config.get("seed"),
        )

    def _compile_config(self) -> Optional[dict]:
        if self.optimizer is None or self.loss is None:
            return None
        if type(self.loss).__module__ != losses_module.__name__:
            return None
        if type(self.optimizer).__module__ != optimizers_module.__name__:
            return None
        # Only metrics that load() rebuilds from their name are kept; one custom metric
        # used to drop the built-in ones too.
        kept = [m for m in self.metrics if self._restored_by_name(m)]
        dropped = [m.name for m in self.metrics if m not in kept]
        if dropped:
            warnings.warn(
                f"save: custom metric(s) {dropped} are not saved (a function cannot be "
                "stored); the loaded model is compiled with the others",
                stacklevel=3,
            )
        return {
            "optimizer": {
                "class_name": type(self.optimizer).__name__,
                "config": self.optimizer.get_config(),
            },
            "loss": {"class_name": type(self.loss).__name__, "config": self.loss.get_config()},
            "metrics": [m.name for m in kept],
        }

    def _restored_by_name(self, metric: metrics_module.Metric) -> bool:
        """Whether load() rebuilds this metric from its name (compile's get with the
        saved loss): a built-in, or the 'accuracy' picked for the loss."""
        try:
            again = metrics_module.get(metric.name, self.loss)
        except ValueError:  # a custom name
            return False
        return again.fn is metric.fn and again.finish is metric.finish

    def save(self, path: Union[str, os.PathLike]) -> None:
        """Writes architecture, compile settings and weights to one ``.npz`` file.

        The optimizer's moment estimates are not saved. ``.npz`` is appended to
        ``path`` when missing; the file is replaced atomically.

        Raises:
            ValueError: If the model is not built.
        """
        if not self.built:
            raise ValueError("cannot save a model that is not built (it has no weights yet)")
        path = os.fspath(path)
        if not path.endswith(".npz"):
            path += ".npz"
        meta = {
            "format": _FORMAT,
            "version": _FORMAT_VERSION,
            "class_name": type(self).__name__,
            "config": self.get_config(),
            "input_shape": list(self.input_shape),
            "compile": self._compile_config(),
        }
        arrays = {f"weight_{i}": w for i, w in enumerate(self.get_weights())}
        tmp = f"{path}.tmp-{os.getpid()}"
        try:
            with open(tmp, "wb") as f:
                np.savez(f, config=np.array(json.dumps(meta)), **arrays)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)


class _ReadyModel(Sequential):
    """The seed's ready models: recurrent layer(s) plus a Dense head, built at construction."""

    _cell = ""
    _cell_args: Tuple[str, ...] = ()  # the keyword arguments the cell takes

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int,
        output_dim: int,
        *,
        num_layers: int = 1,
        return_sequences: bool = False,
        dtype="float32",
        seed: Optional[int] = None,
        name: Optional[str] = None,
        **cell_kwargs,
    ) -> None:
        unknown = sorted(set(cell_kwargs) - set(self._cell_args))
        if unknown:
            # A misspelt return_sequences, or an LSTM option given to the RNN, used to
            # be dropped silently (and saved in the config).
            raise TypeError(
                f"{type(self).__name__}() got unexpected keyword argument(s) {unknown}; "
                f"it takes {sorted(self._cell_args)} besides input_dim, hidden_dim, "
                "output_dim, num_layers, return_sequences, dtype, seed and name"
            )
        for arg, value in (
            ("input_dim", input_dim),
            ("hidden_dim", hidden_dim),
            ("output_dim", output_dim),
            ("num_layers", num_layers),
        ):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"`{arg}` must be a positive integer, got {value!r}")
        super().__init__(name=name or self._cell.lower(), dtype=dtype, seed=seed)
        self.input_dim, self.hidden_dim, self.output_dim = (
            int(input_dim),
            int(hidden_dim),
            int(output_dim),
        )
        self.num_layers = int(num_layers)
        self.return_sequences = bool(return_sequences)
        self._cell_kwargs = cell_kwargs
        for i in range(self.num_layers):
            last = i == self.num_layers - 1
            self.add(
                self._make_cell(self.hidden_dim, return_sequences=self.return_sequences or not last)
            )
        self.add(L.Dense(self.output_dim))
        self.build((None, None, self.input_dim))

    def _make_cell(self, units: int, return_sequences: bool) -> L.Layer:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {
            "input_dim": self.input_dim,
            "hidden_dim": self.hidden_dim,
            "output_dim": self.output_dim,
            "num_layers": self.num_layers,
            "return_sequences": self.return_sequences,
            "dtype": self.dtype.name,
            "seed": self.seed,
            "name": self.name,
            **self._cell_kwargs,
        }

    @classmethod
    def from_config(cls, config: dict) -> "_ReadyModel":
        return cls(**config)


class RNN(_ReadyModel):
    """Elman RNN regressor: ``num_layers`` SimpleRNN layers and a Dense head.

    Args:
        input_dim: Features per time step I.
        hidden_dim: Hidden units H of each recurrent layer.
        output_dim: Outputs of the Dense head.
        num_layers: Stacked recurrent layers.
        activation: ``'tanh'`` or ``'relu'``.
        return_sequences: Apply the head to every step (output ``(B, T, out)``)
            instead of the last one (``(B, out)``).
        dtype: ``'float32'`` or ``'float64'``.
        seed: Seed for initialisation and shuffling (None: random).
        name: Model name.

    Example:
        >>> model = RNN(input_dim=3, hidden_dim=8, output_dim=1, seed=0)
        >>> model.predict(np.zeros((2, 5, 3))).shape
        (2, 1)
    """

    _cell = "RNN"
    _cell_args = ("activation",)

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int,
        output_dim: int,
        *,
        activation: str = "tanh",
        **kwargs,
    ) -> None:
        super().__init__(input_dim, hidden_dim, output_dim, activation=activation, **kwargs)

    def _make_cell(self, units, return_sequences):
        return L.SimpleRNN(
            units, activation=self._cell_kwargs["activation"], return_sequences=return_sequences
        )


class LSTM(_ReadyModel):
    """LSTM regressor: ``num_layers`` LSTM layers and a Dense head (the seed's model).

    Args:
        input_dim: Features per time step I.
        hidden_dim: Hidden units H of each recurrent layer.
        output_dim: Outputs of the Dense head.
        num_layers: Stacked recurrent layers.
        peephole: Use peephole connections.
        return_sequences: Apply the head to every step (output ``(B, T, out)``)
            instead of the last one (``(B, out)``).
        dtype: ``'float32'`` or ``'float64'``.
        seed: Seed for initialisation and shuffling (None: random).
        name: Model name.

    Example:
        >>> model = LSTM(input_dim=10, hidden_dim=50, output_dim=1, seed=0)
        >>> model.compile(optimizer="adam", loss="mse")
        >>> model.predict(np.zeros((4, 7, 10))).shape
        (4, 1)
    """

    _cell = "LSTM"
    _cell_args = ("peephole",)

    def __init__(
        self, input_dim: int, hidden_dim: int, output_dim: int, *, peephole: bool = False, **kwargs
    ) -> None:
        super().__init__(input_dim, hidden_dim, output_dim, peephole=peephole, **kwargs)

    def _make_cell(self, units, return_sequences):
        return L.LSTM(
            units, peephole=self._cell_kwargs["peephole"], return_sequences=return_sequences
        )


_MODELS = {"Sequential": Sequential, "RNN": RNN, "LSTM": LSTM}


def load(path: Union[str, os.PathLike]):
    """Loads a model written by ``save``.

    Reads with ``np.load(allow_pickle=False)``: no code from the file runs.

    Args:
        path: File written by ``save`` (``.npz`` is appended when missing and
            the bare path does not exist).

    Returns:
        A built model of the saved class with the saved weights, compiled when
        it was saved compiled with built-in optimizer and loss.

    Raises:
        ValueError: If the file is not a fastrnn model or its weights do not match.
    """
    path = os.fspath(path)
    if not os.path.exists(path) and os.path.exists(path + ".npz"):
        path += ".npz"
    with np.load(path, allow_pickle=False) as data:
        if "config" not in data.files:
            raise ValueError(f"{path} is not a fastrnn model file (no 'config' entry)")
        meta = json.loads(str(data["config"]))
        if meta.get("format") != _FORMAT:
            raise ValueError(f"{path} is not a fastrnn model file (format {meta.get('format')!r})")
        if meta.get("version", 0) > _FORMAT_VERSION:
            raise ValueError(
                f"{path} has format version {meta['version']}; this fastrnn reads up to {_FORMAT_VERSION}"
            )
        n_weights = sum(1 for k in data.files if k.startswith("weight_"))
        weights = [data[f"weight_{i}"] for i in range(n_weights)]
    cls = _MODELS.get(meta["class_name"])
    if cls is None:
        raise ValueError(f"{path}: unknown model class {meta['class_name']!r}")
    model = cls.from_config(meta["config"])
    if not model.built:
        model.build(tuple(meta["input_shape"]))
    model.set_weights(weights)
    comp = meta.get("compile")
    if comp:
        model.compile(
            optimizer=optimizers_module.from_config(
                comp["optimizer"]["class_name"], comp["optimizer"]["config"]
            ),
            loss=losses_module.from_config(comp["loss"]["class_name"], comp["loss"]["config"]),
            metrics=comp["metrics"],
        )
    return model
