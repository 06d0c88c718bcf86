"""The functional API: RNN and LSTM forward and backward on NumPy arrays.

Every argument is checked once, in the C++ binding: a wrong dtype or a non-array is a
TypeError, a shape that disagrees is a ValueError naming the argument, the expected and
the given shape. Nothing is cast or copied: ``x`` (any NumPy view, batch-first or
time-major) is read where it lies. All arrays of a call share one dtype, float32 or
float64. Weights are C-contiguous: ``w_ih (G*H, I)``, ``w_hh (G*H, H)``, ``b (G*H,)`` with
gate order i, f, g, o, and ``peephole (3, H)`` with rows i, f, o.

Zero-sized inputs (T, B, I or H = 0) are a ValueError.

The cache of ``training=True`` keeps references to ``x``, ``h0``, ``c0``, the weights
and ``h_seq``; change none of them in place before calling backward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import _core
from ._results import LstmGrads, LstmOutput, RnnGrads, RnnOutput

__all__ = ["rnn_forward", "rnn_backward", "lstm_forward", "lstm_backward"]


@dataclass(frozen=True)
class RnnCache:
    """What ``rnn_backward`` needs from ``rnn_forward(..., training=True)``."""

    x: np.ndarray
    h0: Optional[np.ndarray]
    w_ih: np.ndarray
    w_hh: np.ndarray
    b: np.ndarray
    h_seq: np.ndarray
    nonlinearity: str
    batch_first: bool


@dataclass(frozen=True)
class LstmCache:
    """What ``lstm_backward`` needs from ``lstm_forward(..., training=True)``.

    ``gates`` (T, B, 4H) holds the activations i, f, g, o and ``c_seq`` (T, B, H) the
    cell states c_t, both time-major.
    """

    x: np.ndarray
    h0: Optional[np.ndarray]
    c0: Optional[np.ndarray]
    w_ih: np.ndarray
    w_hh: np.ndarray
    b: np.ndarray
    peephole: Optional[np.ndarray]
    h_seq: np.ndarray
    gates: np.ndarray
    c_seq: np.ndarray
    batch_first: bool


def _check_cache(cache, kind, forward):
    if cache is None:
        raise ValueError(
            f"cache is None: call {forward}(..., training=True) to keep what backward needs"
        )
    if not isinstance(cache, kind):
        raise TypeError(f"cache must be the {kind.__name__} of {forward}, got {type(cache).__name__}")


def rnn_forward(x, h0, w_ih, w_hh, b, *, nonlinearity="tanh", batch_first=True, training=False):
    """Elman RNN over a whole sequence: ``h_t = act(W_ih x_t + W_hh h_{t-1} + b)``.

    Args:
        x: (B, T, I) if ``batch_first`` else (T, B, I); any strides.
        h0: (B, H) initial state, or None for zeros.
        w_ih: (H, I). w_hh: (H, H). b: (H,).
        nonlinearity: "tanh" or "relu".
        batch_first: layout of ``x`` and of the returned ``h_seq``.
        training: keep a cache for ``rnn_backward``.

    Returns:
        RnnOutput(h_seq, h_n, cache): h_seq in the layout of x, h_n (B, H), cache or None.

    Raises:
        TypeError: an argument is not an ndarray or has another dtype than x.
        ValueError: shapes disagree, or nonlinearity is unknown.

    Example:
        >>> import numpy as np, fastrnn
        >>> x = np.ones((2, 5, 3), np.float32)
        >>> w_ih, w_hh, b = np.ones((4, 3), np.float32), np.eye(4, dtype=np.float32), np.zeros(4, np.float32)
        >>> fastrnn.rnn_forward(x, None, w_ih, w_hh, b).h_seq.shape
        (2, 5, 4)
    """
    h_seq, h_n = _core.rnn_forward(x, h0, w_ih, w_hh, b, str(nonlinearity), bool(batch_first))
    cache = None
    if training:
        cache = RnnCache(x, h0, w_ih, w_hh, b, h_seq, str(nonlinearity), bool(batch_first))
    return RnnOutput(h_seq, h_n, cache)


def rnn_backward(dh_seq, dh_n, cache):
    """Full BPTT through ``rnn_forward``.

    Args:
        dh_seq: dL/dh_seq, shaped like ``h_seq``, or None for zero.
        dh_n: dL/dh_n (B, H), or None for zero.
        cache: ``rnn_forward(..., training=True).cache``.

    Returns:
        RnnGrads(dx, dh0, dw_ih, dw_hh, db); dx has the shape and layout of x.

    Raises:
        ValueError: the cache is None (forward ran with training=False), or a shape
            disagrees.
        TypeError: a gradient has another dtype than the forward's arrays.
    """
    _check_cache(cache, RnnCache, "rnn_forward")
    c = cache
    return RnnGrads(
        *_core.rnn_backward(
            dh_seq, dh_n, c.x, c.h0, c.w_ih, c.w_hh, c.b, c.h_seq, c.nonlinearity, c.batch_first
        )
    )


def lstm_forward(x, h0, c0, w_ih, w_hh, b, peephole=None, *, batch_first=True, training=False):
    """LSTM over a whole sequence, gate order i, f, g, o, optional diagonal peepholes.

    Args:
        x: (B, T, I) if ``batch_first`` else (T, B, I); any strides.
        h0, c0: (B, H) initial states, or None for zeros.
        w_ih: (4H, I). w_hh: (4H, H). b: (4H,), one fused bias.
        peephole: (3, H), rows i, f, o, or None for the plain LSTM.
        batch_first: layout of ``x`` and of the returned ``h_seq``.
        training: keep a cache for ``lstm_backward``.

    Returns:
        LstmOutput(h_seq, h_n, c_n, cache).

    Raises:
        TypeError: an argument is not an ndarray or has another dtype than x.
        ValueError: shapes disagree.

    Example:
        >>> import numpy as np, fastrnn
        >>> rng = np.random.default_rng(0)
        >>> B, T, I, H = 2, 5, 3, 4
        >>> x = rng.standard_normal((B, T, I))
        >>> w_ih, w_hh, b = rng.standard_normal((4 * H, I)), rng.standard_normal((4 * H, H)), np.zeros(4 * H)
        >>> out = fastrnn.lstm_forward(x, None, None, w_ih, w_hh, b, training=True)
        >>> g = fastrnn.lstm_backward(np.ones_like(out.h_seq), None, None, out.cache)
        >>> g.dx.shape, g.dw_hh.shape
        ((2, 5, 3), (16, 4))
    """
    h_seq, h_n, c_n, gates, c_seq = _core.lstm_forward(
        x, h0, c0, w_ih, w_hh, b, peephole, bool(batch_first), bool(training)
    )
    cache = None
    if training:
        cache = LstmCache(x, h0, c0, w_ih, w_hh, b, peephole, h_seq, gates, c_seq, bool(batch_first))
    return LstmOutput(h_seq, h_n, c_n, cache)


def lstm_backward(dh_seq, dh_n, dc_n, cache):
    """Full BPTT through ``lstm_forward``.

    Args:
        dh_seq: dL/dh_seq, shaped like ``h_seq``, or None for zero.
        dh_n, dc_n: dL/dh_n and dL/dc_n (B, H), or None for zero.
        cache: ``lstm_forward(..., training=True).cache``.

    Returns:
        LstmGrads(dx, dh0, dc0, dw_ih, dw_hh, db, dpeephole); dpeephole is None without
        peepholes.

    Raises:
        ValueError: the cache is None (forward ran with training=False), or a shape
            disagrees.
        TypeError: a gradient has another dtype than the forward's arrays.
    """
    _check_cache(cache, LstmCache, "lstm_forward")
    c = cache
    return LstmGrads(
        *_core.lstm_backward(
            dh_seq, dh_n, dc_n, c.x, c.h0, c.c0, c.w_ih, c.w_hh, c.b, c.peephole,
            c.h_seq, c.gates, c.c_seq, c.batch_first,
        )
    )
