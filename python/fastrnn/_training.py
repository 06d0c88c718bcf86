"""How ``fit`` runs a training step: in this process, or split across processes.

``Sequential.fit`` talks to a strategy object through the five methods below
and nothing else, so the single-process path and the data-parallel one
(``fastrnn.distributed.MPI``) share one training loop: same batching, same
shuffling, same callbacks and progress logs.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np

__all__ = ["SingleProcess"]


class SingleProcess:
    """The default strategy: the whole global batch is computed here."""

    rank = 0
    size = 1

    @property
    def is_root(self) -> bool:
        """True on the process that prints progress and writes checkpoints."""
        return self.rank == 0

    def runs_callback(self, callback) -> bool:
        """Whether ``callback`` runs in this process (``root_only`` ones run on rank 0 only)."""
        return self.is_root or not getattr(callback, "root_only", False)

    def begin_fit(
        self, model, x: np.ndarray, y: np.ndarray, validation: Optional[Tuple], params: Dict
    ) -> None:
        """Called once before the first step, with the training arrays, the validation
        pair ``(x_val, y_val)`` or None, and fit's settings."""

    def train_step(
        self, model, x: np.ndarray, y: np.ndarray, idx
    ) -> Tuple[float, List[float], Optional[str]]:
        """Trains on the global batch ``x[idx], y[idx]``.

        Returns:
            ``(loss, metric_values, problem)``: the batch's mean loss and ``batch_mean``s,
            and None or ``'loss'`` / ``'gradient'`` when the update was skipped.
        """
        xb, yb = x[idx], y[idx]
        loss, y_pred, problem = model._train_step(xb, yb)
        return loss, [m.batch_mean(yb, y_pred) for m in model.metrics], problem

    def evaluate(self, model, x: np.ndarray, y: np.ndarray, batch_size: int) -> Dict[str, float]:
        """Mean loss and metrics over ``x, y`` in inference mode."""
        return model._evaluate_arrays(x, y, batch_size)

    def any(self, flag: bool) -> bool:
        """True when ``flag`` is true in any process (keeps stop decisions in step)."""
        return bool(flag)
