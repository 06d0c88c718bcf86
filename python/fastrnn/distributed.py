"""Data-parallel training over MPI, in Horovod's design.

Every rank runs the same script on the same full data::

    dist = fastrnn.distributed.MPI()
    model = fastrnn.models.LSTM(input_dim=10, hidden_dim=50, output_dim=1)
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, y, epochs=10, batch_size=64, distributed=dist)
    if dist.is_root:
        model.save("model.npz")

launched with ``mpiexec -n 4 python -m mpi4py train.py`` (``-m mpi4py`` turns an
uncaught exception on any rank into ``MPI_Abort``, so the whole job ends
instead of hanging in a collective).

What happens in ``fit``:

* Before the first step, the ranks check that they were given the same data
  (shapes and a CRC-32 of x and y, and of the validation data), settings and
  model; a mismatch raises the same ``ValueError`` on every rank. Then rank 0
  broadcasts its weights, its optimizer state and its shuffling state, so every
  rank starts identical and draws the same batch order.
* ``batch_size`` is the GLOBAL batch. Each global batch is cut into ``size``
  contiguous slices whose lengths differ by at most one; rank r trains on
  slice r. Nothing is padded or dropped: a short last batch is split the same
  way, and a rank whose slice is empty (a batch smaller than the number of
  ranks) contributes zero. Every rank therefore runs the same number of steps.
* After the backward, each rank scales its gradients by its slice length,
  writes its loss and metric sums behind them in the model's flat gradient
  buffer, and ONE in-place ``Allreduce`` sums the whole buffer; dividing by the
  global batch size gives exactly the gradient (and loss) of the whole batch.
  Every rank applies the same update, so the weights stay identical, and the
  result equals single-process training with the same global batch up to
  floating-point summation order.
* Progress output and ``ModelCheckpoint`` run on rank 0 only (callbacks with
  ``root_only = True``); other callbacks run everywhere on the same reduced
  logs, and stop decisions are combined across ranks so no rank is left
  waiting in a collective.
"""

from __future__ import annotations

import os
import zlib
from typing import Dict, List, Optional, Tuple

import numpy as np

from . import _core
from ._training import SingleProcess

__all__ = ["MPI"]

_INSTALL_HINT = "install it with: pip install '.[mpi]' (mpi4py and the MPICH library from PyPI)"


def _crc32(a: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(a).view(np.uint8).reshape(-1))


def _architecture(model) -> list:
    # Layer types and settings without names or seeds: ranks may seed differently,
    # rank 0's weights are broadcast anyway.
    return [
        (
            type(layer).__name__,
            {k: v for k, v in layer.get_config().items() if k not in ("name", "seed")},
        )
        for layer in model.layers
    ]


def _batch_count(idx) -> int:
    return idx.stop - idx.start if isinstance(idx, slice) else len(idx)


def _part(idx, lo: int, hi: int):
    """Positions lo..hi of a global batch given as a slice or an index array."""
    if isinstance(idx, slice):
        return slice(idx.start + lo, idx.start + hi)
    return idx[lo:hi]


class MPI(SingleProcess):
    """Data-parallel strategy over an MPI communicator (pass it to ``fit(distributed=...)``).

    Args:
        comm: An ``mpi4py`` intracommunicator; default ``MPI.COMM_WORLD``.
        threads: Kernel threads per rank. None (default) divides the cores this
            process may run on by the number of ranks on this machine, unless
            ``OMP_NUM_THREADS`` is set; ranks that each spin up all cores would
            fight over them at every time step.

    Attributes:
        rank, size: This process's rank and the number of ranks.
        is_root: ``rank == 0``: the rank that prints and should save files.

    Raises:
        ImportError: If mpi4py (or an MPI library) is not installed.
        TypeError: If ``comm`` is not an mpi4py intracommunicator.
    """

    def __init__(self, comm=None, *, threads: Optional[int] = None) -> None:
        try:
            from mpi4py import MPI as mpi
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError(f"fastrnn.distributed.MPI needs mpi4py; {_INSTALL_HINT}") from e
        self._mpi = mpi
        comm = mpi.COMM_WORLD if comm is None else comm
        if not isinstance(comm, mpi.Intracomm):
            raise TypeError(
                "`comm` must be an mpi4py Intracomm (e.g. MPI.COMM_WORLD), got "
                f"{type(comm).__name__}"
            )
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        if threads is not None:
            if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
                raise ValueError(f"`threads` must be a positive integer or None, got {threads!r}")
            _core.set_num_threads(threads)
        elif "OMP_NUM_THREADS" not in os.environ:
            local = comm.Split_type(mpi.COMM_TYPE_SHARED)
            ranks_here = local.Get_size()
            local.Free()
            _core.set_num_threads(max(1, len(os.sched_getaffinity(0)) // ranks_here))
        self._buffer: Optional[np.ndarray] = None

    def __repr__(self) -> str:
        return f"fastrnn.distributed.MPI(rank={self.rank}, size={self.size})"

    # -- collectives -------------------------------------------------------------------

    def barrier(self) -> None:
        """Waits until every rank gets here."""
        self.comm.Barrier()

    def any(self, flag: bool) -> bool:
        return bool(self.comm.allreduce(bool(flag), op=self._mpi.LOR))

    def _slice(self, count: int) -> Tuple[int, int]:
        # Contiguous, lengths differ by at most one, empty when count < size.
        return count * self.rank // self.size, count * (self.rank + 1) // self.size

    # -- fit protocol ------------------------------------------------------------------

    def begin_fit(self, model, x, y, validation, params) -> None:
        x_val, y_val = validation if validation is not None else (None, None)
        mine = {
            "x shape": x.shape,
            "y shape": y.shape,
            "x dtype": str(x.dtype),
            "x CRC-32": _crc32(x),
            "y CRC-32": _crc32(y),
            # Each rank evaluates a slice of the validation data: it must be the same too.
            "validation data": None
            if x_val is None
            else (x_val.shape, y_val.shape, _crc32(x_val), _crc32(y_val)),
            # verbose may differ: only rank 0 prints anyway.
            "fit settings": sorted((k, v) for k, v in params.items() if k != "verbose"),
            "model": _architecture(model),
            "optimizer": (type(model.optimizer).__name__, model.optimizer.get_config()),
            "loss": type(model.loss).__name__,
            "metrics": [m.name for m in model.metrics],
        }
        everyone = self.comm.allgather(mine)
        differ = sorted({k for other in everyone for k in mine if other[k] != everyone[0][k]})
        if differ:
            ranks = [r for r, other in enumerate(everyone) if other != everyone[0]]
            raise ValueError(
                "fit(distributed=MPI()): every rank must pass the same x, y, fit arguments and "
                f"model; rank(s) {ranks} differ from rank 0 in: {', '.join(differ)}"
            )
        self.comm.Bcast(model._flat_weights, root=0)
        self._broadcast_optimizer(model.optimizer)
        rng = model._shuffle_rng.bit_generator
        rng.state = self.comm.bcast(rng.state, root=0)
        self._n_params = model._flat_weights.size
        self._buffer = model._grad_buffer_with_tail(1 + len(model.metrics))

    def _broadcast_optimizer(self, opt) -> None:
        layout = None
        if self.rank == 0:
            layout = (
                opt.iterations,
                [
                    (key, name, arr.shape, arr.dtype.str)
                    for key, slots in sorted(opt._slots.items())
                    for name, arr in sorted(slots.items())
                ],
            )
        opt.iterations, slots = self.comm.bcast(layout, root=0)
        if self.rank != 0:
            opt._slots.clear()
            for key, name, shape, dtype in slots:
                opt._slots.setdefault(key, {})[name] = np.empty(shape, dtype=dtype)
        for key, name, _, _ in slots:
            self.comm.Bcast(opt._slots[key][name], root=0)

    def train_step(self, model, x, y, idx) -> Tuple[float, List[float], Optional[str]]:
        count = _batch_count(idx)
        lo, hi = self._slice(count)
        buf, n_params = self._buffer, self._n_params
        grads, tail = buf[:n_params], buf[n_params:]
        mine = hi - lo
        if mine:
            part = _part(idx, lo, hi)
            xb, yb = x[part], y[part]
            loss, y_pred, problem = model._compute_grads(xb, yb)
            if problem:
                grads[...] = 0  # the NaN/inf loss in the tail stops every rank
            else:
                grads *= mine
            tail[0] = loss * mine
            tail[1:] = [m.batch_mean(yb, y_pred) * mine for m in model.metrics]
        else:
            buf[...] = 0
        self.comm.Allreduce(self._mpi.IN_PLACE, buf, op=self._mpi.SUM)
        buf /= count
        loss = float(tail[0])
        metric_values = tail[1:].tolist()
        if not np.isfinite(loss):
            return loss, metric_values, "loss"
        return loss, metric_values, model._apply_grads()

    def evaluate(self, model, x, y, batch_size) -> Dict[str, float]:
        lo, hi = self._slice(x.shape[0])
        sums = np.zeros(1 + len(model.metrics))
        if hi > lo:
            loss_sum, metric_sums = model._evaluate_sums(x[lo:hi], y[lo:hi], batch_size)
            sums[:] = [loss_sum, *metric_sums]
        self.comm.Allreduce(self._mpi.IN_PLACE, sums, op=self._mpi.SUM)
        sums /= x.shape[0]
        out = {"loss": float(sums[0])}
        out.update((m.name, m.result(float(s))) for m, s in zip(model.metrics, sums[1:]))
        return out
