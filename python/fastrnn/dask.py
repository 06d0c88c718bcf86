"""Batch inference over Dask: a model mapped over a dask array chunked on the batch axis.

::

    import dask.array as da
    x = da.from_zarr(...)                         # (N, T, I), any chunking
    y = fastrnn.dask.predict(model, x)            # lazy (N, out)
    y.compute()                                   # threaded scheduler by default
    # or with a cluster:  Client(LocalCluster(...)); y.compute()

Each block is a run of whole sequences (the time and feature axes are never
split), so block results are exactly ``model.predict`` on those rows and the
assembled result equals ``model.predict(x)``. The model travels to workers as
one task that every block depends on, so a distributed cluster receives its
weights once per worker, not once per block. The kernels release the GIL, so
the threaded scheduler runs blocks in parallel; give each task one kernel
thread (``fastrnn.set_num_threads(1)``) when the scheduler already runs one
task per core (see the README's measurements).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

__all__ = ["predict"]

_INSTALL_HINT = "install it with: pip install '.[dask]'"
_DEFAULT_CHUNK = 1024


def _predict_block(block: np.ndarray, model, batch_size: Optional[int]) -> np.ndarray:
    return model.predict(block, batch_size=batch_size)


def predict(model, x, *, batch_size: Optional[int] = None, chunks: Optional[int] = None):
    """Lazily applies ``model.predict`` to a dask (or NumPy) array of sequences.

    Args:
        model: A built fastrnn model (``fastrnn.models.Sequential``, ``LSTM``, ``RNN``).
        x: ``(N, T, I)`` dask array, or anything ``np.asarray`` accepts (wrapped
            with ``dask.array.from_array``).
        batch_size: Samples per kernel call inside a block (``predict``'s default
            when None).
        chunks: Samples per block. None keeps a dask array's batch chunking
            (array-likes get 1024).

    Returns:
        A lazy dask array ``(N, out)``, or ``(N, T, out)`` for a model that
        returns sequences, in the model's dtype; call ``.compute()``.

    Raises:
        ImportError: If dask is not installed.
        TypeError: If ``model`` is not a fastrnn model.
        ValueError: If ``x`` is not 3-D with the model's feature count, or ``chunks``
            is not a positive integer.
    """
    try:
        import dask
        import dask.array as da
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(f"fastrnn.dask needs dask; {_INSTALL_HINT}") from e
    from .models import Sequential

    if not isinstance(model, Sequential):
        raise TypeError(f"`model` must be a fastrnn model, got {type(model).__name__}")
    if chunks is not None and (
        isinstance(chunks, bool) or not isinstance(chunks, (int, np.integer)) or chunks <= 0
    ):
        raise ValueError(f"`chunks` must be a positive integer or None, got {chunks!r}")
    if not isinstance(x, da.Array):
        x = np.asarray(x)
        if x.ndim == 3:
            x = da.from_array(x, chunks=(chunks or _DEFAULT_CHUNK, -1, -1))
    if x.ndim != 3:
        raise ValueError(f"`x` must be 3-D (batch, timesteps, features), got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise ValueError(f"`x` must hold real numbers, got dtype {x.dtype}")
    if 0 in x.shape:
        raise ValueError(f"`x` must not be empty, got shape {x.shape}")
    if not model.built:
        model.build((None, None, x.shape[2]))  # before any thread could race to build it
    if x.shape[2] != model.input_shape[-1]:
        raise ValueError(
            f"`x` must have {model.input_shape[-1]} features (last axis), got shape {x.shape}"
        )
    x = x.rechunk({0: chunks or x.chunks[0], 1: -1, 2: -1})

    out_tail = tuple(x.shape[1] if d is None else d for d in model.output_shape[1:])
    out_chunks = (x.chunks[0],) + tuple((d,) for d in out_tail)
    model_task = dask.delayed(model, pure=True)
    return da.map_blocks(
        _predict_block,
        x,
        model_task,
        batch_size,
        dtype=model.dtype,
        chunks=out_chunks,
        drop_axis=[] if len(out_tail) == 2 else [1],  # (N, T, I) -> (N, out): one axis fewer
        meta=np.empty((0,) * (1 + len(out_tail)), dtype=model.dtype),
    )
