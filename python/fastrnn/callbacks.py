"""Training callbacks in Keras's shape: History, progress output, EarlyStopping,
TerminateOnNaN and ModelCheckpoint.

A callback sees the model as ``self.model`` (set by ``fit``) and may stop
training by setting ``self.model.stop_training = True``.
"""

from __future__ import annotations

import math
import numbers
import sys
import time
import warnings
from typing import Dict, List, Optional, Sequence

import numpy as np

__all__ = [
    "Callback",
    "CallbackList",
    "History",
    "ProgbarLogger",
    "EarlyStopping",
    "TerminateOnNaN",
    "ModelCheckpoint",
]


class Callback:
    """Base class; every hook is a no-op.

    Hooks: ``on_train_begin(logs)``, ``on_train_end(logs)``,
    ``on_epoch_begin(epoch, logs)``, ``on_epoch_end(epoch, logs)``,
    ``on_train_batch_end(batch, logs)``. ``epoch`` and ``batch`` count from 0;
    ``logs`` maps names (``'loss'``, ``'val_loss'``, metrics) to floats.

    In data-parallel training every rank runs every callback with the same
    (globally reduced) logs, except those whose class sets ``root_only = True``
    (progress output, checkpoints): they run on rank 0 only.
    """

    #: Run only on rank 0 in data-parallel training (output and files, not decisions).
    root_only = False

    def __init__(self) -> None:
        self.model = None
        self.params: Dict[str, object] = {}

    def set_model(self, model) -> None:
        self.model = model

    def set_params(self, params: Dict[str, object]) -> None:
        self.params = params

    def on_train_begin(self, logs=None) -> None:
        pass

    def on_train_end(self, logs=None) -> None:
        pass

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        pass

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        pass


class CallbackList:
    """Calls each hook on a list of callbacks, in order."""

    def __init__(self, callbacks: Sequence[Callback], model, params: Dict[str, object]) -> None:
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            cb.set_model(model)
            cb.set_params(params)
        # Only callbacks that override the per-batch hook are called per batch.
        self._batch_callbacks = [
            cb
            for cb in self.callbacks
            if type(cb).on_train_batch_end is not Callback.on_train_batch_end
        ]

    def on_train_begin(self, logs=None):
        for cb in self.callbacks:
            cb.on_train_begin(logs)

    def on_train_end(self, logs=None):
        for cb in self.callbacks:
            cb.on_train_end(logs)

    def on_epoch_begin(self, epoch, logs=None):
        for cb in self.callbacks:
            cb.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        for cb in self.callbacks:
            cb.on_epoch_end(epoch, logs)

    @property
    def wants_batch_logs(self) -> bool:
        return bool(self._batch_callbacks)

    def on_train_batch_end(self, batch, logs=None):
        for cb in self._batch_callbacks:
            cb.on_train_batch_end(batch, logs)


class History(Callback):
    """Records the epoch logs; ``fit`` returns it.

    Attributes:
        history: ``{'loss': [...], 'val_loss': [...], <metric>: [...]}``, one entry per epoch.
        epoch: Epoch indices that ran.
    """

    def __init__(self) -> None:
        super().__init__()
        self.history: Dict[str, List[float]] = {}
        self.epoch: List[int] = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)


def _format_logs(logs: Dict[str, float]) -> str:
    return " - ".join(f"{k}: {v:.4g}" for k, v in logs.items())


class ProgbarLogger(Callback):
    """Progress output of ``fit``: a live bar (verbose=1) or one line per epoch (verbose=2).

    Args:
        verbose: 1 for a bar redrawn at most every ``interval`` seconds, 2 for
            one line per epoch.
        stream: Output stream (default ``sys.stdout``).
        interval: Minimum seconds between bar redraws, so printing stays cheap.
    """

    root_only = True

    def __init__(self, verbose: int = 1, stream=None, interval: float = 0.1) -> None:
        super().__init__()
        self.verbose = verbose
        self.stream = stream
        self.interval = interval
        self._t0 = 0.0
        self._last = 0.0

    def _write(self, text: str) -> None:
        stream = self.stream or sys.stdout
        stream.write(text)
        stream.flush()

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = self._last = time.perf_counter()
        if self.verbose == 1:
            self._write(f"Epoch {epoch + 1}/{self.params.get('epochs')}\n")

    def on_train_batch_end(self, batch, logs=None):
        if self.verbose != 1:
            return
        now = time.perf_counter()
        steps = int(self.params.get("steps") or 1)
        if now - self._last < self.interval and batch + 1 < steps:
            return
        self._last = now
        width = 30
        done = (batch + 1) * width // steps
        bar = "=" * max(done - 1, 0) + (">" if done < width else "=") + "." * (width - done)
        self._write(
            f"\r{batch + 1}/{steps} [{bar}] - {now - self._t0:.1f}s - {_format_logs(logs or {})}"
        )

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.perf_counter() - self._t0
        text = f"{_format_logs(logs or {})} - {elapsed:.2f}s"
        if self.verbose == 1:
            steps = int(self.params.get("steps") or 1)
            self._write(f"\r{steps}/{steps} [{'=' * 30}] - {text}\n")
        elif self.verbose == 2:
            self._write(f"Epoch {epoch + 1}/{self.params.get('epochs')} - {text}\n")


def _resolve_mode(mode: str, monitor: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"`mode` must be 'auto', 'min' or 'max', got {mode!r}")
    if mode != "auto":
        return mode
    return "max" if ("acc" in monitor or monitor.endswith("auc")) else "min"


class EarlyStopping(Callback):
    """Stops training when a monitored value has stopped improving.

    Args:
        monitor: Log key, e.g. ``'val_loss'`` (default) or ``'loss'``.
        min_delta: Smallest change counted as an improvement.
        patience: Epochs without improvement before stopping.
        mode: ``'min'``, ``'max'`` or ``'auto'`` (max for accuracies).
        restore_best_weights: At the end of training, put back the weights of
            the best epoch (whether or not training stopped early).
        baseline: Value the monitor must beat (training stops after
            ``patience`` epochs that do not beat it).
        start_from_epoch: Epochs to wait before monitoring.
        verbose: 1 prints a line when stopping.

    Example:
        >>> stop = EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        mode: str = "auto",
        restore_best_weights: bool = False,
        baseline: Optional[float] = None,
        start_from_epoch: int = 0,
        verbose: int = 0,
    ) -> None:
        super().__init__()
        self.monitor = monitor
        self.min_delta = abs(float(min_delta))
        if isinstance(patience, bool) or not isinstance(patience, numbers.Integral) or patience < 0:
            raise ValueError(f"`patience` must be an integer >= 0, got {patience!r}")
        self.patience = int(patience)
        self.mode = _resolve_mode(mode, monitor)
        self.restore_best_weights = bool(restore_best_weights)
        self.baseline = baseline
        self.start_from_epoch = int(start_from_epoch)
        self.verbose = verbose
        self.best: float = math.inf
        self.best_epoch = 0
        self.best_weights: Optional[List[np.ndarray]] = None
        self.wait = 0
        self.stopped_epoch = 0

    def _improved(self, value: float, reference: float) -> bool:
        if self.mode == "min":
            return value < reference - self.min_delta
        return value > reference + self.min_delta

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            warnings.warn(
                f"EarlyStopping: monitored value {self.monitor!r} is not available; "
                f"available keys: {sorted(logs)}",
                RuntimeWarning,
                stacklevel=2,
            )
            return
        if epoch < self.start_from_epoch:
            return
        value = float(logs[self.monitor])
        self.wait += 1
        if self._improved(value, self.best):
            self.best = value
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            # Only a value that beats the baseline too restarts the patience count.
            if self.baseline is None or self._improved(value, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            self.model.set_weights(self.best_weights)
            if self.verbose:
                print(f"EarlyStopping: restored the weights of epoch {self.best_epoch + 1}")
        if self.stopped_epoch and self.verbose:
            print(f"EarlyStopping: stopped after epoch {self.stopped_epoch + 1}")


class TerminateOnNaN(Callback):
    """Stops training as soon as a batch loss is NaN or infinite, with a message.

    ``fit`` stops on a non-finite loss even without this callback; it exists for
    Keras-compatible code that passes it explicitly.
    """

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"TerminateOnNaN: batch {batch}: invalid loss {loss}, terminating training")
            self.model.stop_training = True


class ModelCheckpoint(Callback):
    """Saves the model (``Model.save``, one ``.npz``) after epochs.

    Args:
        filepath: Target path; may use ``{epoch}`` and log keys as format fields,
            e.g. ``'ckpt-{epoch:02d}-{val_loss:.3f}.npz'`` (epochs count from 1).
        monitor: Log key compared when ``save_best_only``.
        save_best_only: Save only when ``monitor`` improves.
        mode: ``'min'``, ``'max'`` or ``'auto'``.
        verbose: 1 prints a line per save.

    Example:
        >>> ckpt = ModelCheckpoint("best.npz", save_best_only=True)
    """

    root_only = True

    def __init__(
        self,
        filepath: str,
        monitor: str = "val_loss",
        save_best_only: bool = False,
        mode: str = "auto",
        verbose: int = 0,
    ) -> None:
        super().__init__()
        self.filepath = str(filepath)
        self.monitor = monitor
        self.save_best_only = bool(save_best_only)
        self.mode = _resolve_mode(mode, monitor)
        self.verbose = verbose
        self.best = math.inf if self.mode == "min" else -math.inf

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_best_only:
            if self.monitor not in logs:
                warnings.warn(
                    f"ModelCheckpoint: monitored value {self.monitor!r} is not available; "
                    f"available keys: {sorted(logs)}",
                    RuntimeWarning,
                    stacklevel=2,
                )
                return
            value = float(logs[self.monitor])
            better = value < self.best if self.mode == "min" else value > self.best
            if not better:
                return
            self.best = value
        self.model.save(path)
        if self.verbose:
            print(f"ModelCheckpoint: saved {path}")
