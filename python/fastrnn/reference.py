"""Plain NumPy forward and full BPTT backward of the Elman RNN and the LSTM.

This module is the oracle every C++ kernel is tested against, and the "NumPy"
peer in the benchmarks. It implements the math of DESIGN.md exactly:

    RNN:   h_t = act(W_ih x_t + W_hh h_{t-1} + b)            act = tanh | relu
    LSTM:  i_t = σ(W_i x_t + U_i h_{t-1} + b_i + p_i ⊙ c_{t-1})
           f_t = σ(W_f x_t + U_f h_{t-1} + b_f + p_f ⊙ c_{t-1})
           g_t = tanh(W_g x_t + U_g h_{t-1} + b_g)
           c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
           o_t = σ(W_o x_t + U_o h_{t-1} + b_o + p_o ⊙ c_t)
           h_t = o_t ⊙ tanh(c_t)

It favours clarity over speed, with two exceptions taken from the kernels: the
input projection of all steps is one matmul before the recurrence, and dx and the
weight gradients are one matmul each over all steps after the reverse loop.
Internally every sequence is time-major, (T, B, ...), so step t is ``a[t]``.
Everything is computed in the dtype of the inputs (float32 or float64).
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from ._results import LstmGrads, LstmOutput, RnnGrads, RnnOutput

# The gate order of every weight, bias and gate buffer, shared with csrc/fastrnn/dims.h.
LSTM_GATES = ("i", "f", "g", "o")
# Rows of the (3, H) peephole array.
PEEPHOLE_ROWS = ("i", "f", "o")


@dataclasses.dataclass(frozen=True)
class _RnnCache:
    """What rnn_backward needs; every sequence is time-major."""

    x: np.ndarray  # (T, B, I) view of the caller's x
    h0: np.ndarray  # (B, H)
    w_ih: np.ndarray  # (H, I)
    w_hh: np.ndarray  # (H, H)
    h: np.ndarray  # (T, B, H) post-activation, private copy
    nonlinearity: str
    batch_first: bool


@dataclasses.dataclass(frozen=True)
class _LstmCache:
    """What lstm_backward needs; every sequence is time-major."""

    x: np.ndarray  # (T, B, I) view of the caller's x
    h0: np.ndarray  # (B, H)
    c0: np.ndarray  # (B, H)
    w_ih: np.ndarray  # (4H, I)
    w_hh: np.ndarray  # (4H, H)
    peephole: Optional[np.ndarray]  # (3, H) or None
    gates: np.ndarray  # (T, B, 4H) post-activation i, f, g, o
    c: np.ndarray  # (T, B, H)
    h: np.ndarray  # (T, B, H) private copy
    batch_first: bool


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # exp only ever sees -|z|, so nothing overflows and both tails stay accurate.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1, e) / (1 + e)


def _relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0)


# Each activation with its derivative written in terms of its output y.
_ACTIVATIONS = {
    "tanh": (np.tanh, lambda y: 1 - y * y),
    "relu": (_relu, lambda y: (y > 0).astype(y.dtype)),  # relu'(0) = 0
}


def _time_major(a: np.ndarray, batch_first: bool) -> np.ndarray:
    return a.swapaxes(0, 1) if batch_first else a


def _user_layout(a: np.ndarray, batch_first: bool) -> np.ndarray:
    # Always a fresh array, so the caller may modify outputs without touching the cache.
    return np.ascontiguousarray(a.swapaxes(0, 1)) if batch_first else a.copy()


def _previous(seq: np.ndarray, first: np.ndarray) -> np.ndarray:
    """The state entering every step: (first, seq[0], ..., seq[T-2]), shape of seq."""
    return np.concatenate([first[None], seq])[:-1]


def _check(name: str, a: Optional[np.ndarray], shape: tuple, dtype: np.dtype) -> None:
    if a is None:
        return
    if a.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype}, got {a.dtype}")
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {a.shape}")


def _check_inputs(x: np.ndarray, batch_first: bool, gates: int, **arrays):
    """Validates the forward arguments; returns x time-major and (T, B, I, H)."""
    if x.ndim != 3:
        layout = "(B, T, I)" if batch_first else "(T, B, I)"
        raise ValueError(f"x must be 3-D {layout}, got shape {x.shape}")
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"x must be float32 or float64, got {x.dtype}")
    xt = _time_major(x, batch_first)
    T, B, I = xt.shape
    H = arrays["w_hh"].shape[0] // gates
    expected = {
        "w_hh": (gates * H, H),
        "w_ih": (gates * H, I),
        "b": (gates * H,),
        "h0": (B, H),
        "c0": (B, H),
        "peephole": (len(PEEPHOLE_ROWS), H),
    }
    # w_hh first: it defines H, so a wrong w_hh is reported as itself.
    for name, shape in expected.items():
        if name in arrays:
            _check(name, arrays[name], shape, x.dtype)
    return xt, (T, B, I, H)


def _state_or_zeros(a: Optional[np.ndarray], B: int, H: int, dtype) -> np.ndarray:
    return np.zeros((B, H), dtype) if a is None else a


def _output_grads(cache, **grads) -> list:
    """Validates dh_seq / dh_n / dc_n; returns them time-major, None as zeros."""
    T, B, H = cache.h.shape
    seq_shape = (B, T, H) if cache.batch_first else (T, B, H)
    shapes = {"dh_seq": seq_shape, "dh_n": (B, H), "dc_n": (B, H)}
    result = []
    for name, g in grads.items():
        _check(name, g, shapes[name], cache.h.dtype)
        g = np.zeros(shapes[name], cache.h.dtype) if g is None else g
        result.append(_time_major(g, cache.batch_first) if name == "dh_seq" else g)
    return result


def _matmul_grads(cache, dz: np.ndarray):
    """dx, dw_ih, dw_hh and db from dz (T, B, G*H), one matmul each over all steps."""
    dz2 = dz.reshape(-1, dz.shape[-1])
    dx = _user_layout(dz @ cache.w_ih, cache.batch_first)
    dw_ih = dz2.T @ cache.x.reshape(-1, cache.x.shape[-1])
    dw_hh = dz2.T @ _previous(cache.h, cache.h0).reshape(-1, cache.h.shape[-1])
    return dx, dw_ih, dw_hh, dz2.sum(axis=0)


def rnn_forward(
    x: np.ndarray,
    h0: Optional[np.ndarray],
    w_ih: np.ndarray,
    w_hh: np.ndarray,
    b: np.ndarray,
    *,
    nonlinearity: str = "tanh",
    batch_first: bool = True,
    training: bool = False,
) -> RnnOutput:
    """Runs an Elman RNN over a sequence.

    Args:
        x: Inputs, (B, T, I) if `batch_first` else (T, B, I).
        h0: Initial hidden state (B, H), or None for zeros.
        w_ih: Input weights (H, I).
        w_hh: Recurrent weights (H, H).
        b: Bias (H,).
        nonlinearity: "tanh" or "relu".
        batch_first: Layout of `x` and of the returned `h_seq`.
        training: Keep the cache that `rnn_backward` needs.

    Returns:
        RnnOutput(h_seq, h_n, cache): `h_seq` (B, T, H) or (T, B, H), `h_n` (B, H),
        `cache` None unless `training`.

    Raises:
        ValueError: A shape does not match, or `nonlinearity` is unknown.
        TypeError: The arrays do not share one float32 or float64 dtype.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.standard_normal((2, 5, 3))
        >>> w_ih, w_hh = rng.standard_normal((4, 3)), rng.standard_normal((4, 4))
        >>> out = rnn_forward(x, None, w_ih, w_hh, np.zeros(4), training=True)
        >>> out.h_seq.shape, out.h_n.shape
        ((2, 5, 4), (2, 4))
        >>> rnn_backward(np.ones_like(out.h_seq), None, out.cache).dx.shape
        (2, 5, 3)
    """
    if nonlinearity not in _ACTIVATIONS:
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    act, _ = _ACTIVATIONS[nonlinearity]
    xt, (T, B, _, H) = _check_inputs(x, batch_first, 1, h0=h0, w_ih=w_ih, w_hh=w_hh, b=b)
    h0 = _state_or_zeros(h0, B, H, x.dtype)

    z_x = xt @ w_ih.T + b  # (T, B, H)
    h = np.empty((T, B, H), x.dtype)
    h_prev = h0
    for t in range(T):
        h[t] = act(z_x[t] + h_prev @ w_hh.T)
        h_prev = h[t]

    cache = _RnnCache(xt, h0, w_ih, w_hh, h, nonlinearity, batch_first) if training else None
    return RnnOutput(_user_layout(h, batch_first), h_prev.copy(), cache)


def rnn_backward(
    dh_seq: Optional[np.ndarray], dh_n: Optional[np.ndarray], cache: Optional[_RnnCache]
) -> RnnGrads:
    """Backpropagates through every step of an `rnn_forward(..., training=True)` call.

    Args:
        dh_seq: Gradient of the loss w.r.t. `h_seq`, same shape and layout, or None.
        dh_n: Gradient w.r.t. `h_n` (B, H), or None.
        cache: `cache` of the forward output.

    Returns:
        RnnGrads(dx, dh0, dw_ih, dw_hh, db), shaped like x, h0, w_ih, w_hh, b.

    Raises:
        ValueError: `cache` is None, or a gradient has the wrong shape.
        TypeError: A gradient's dtype differs from the forward's.
    """
    if cache is None:
        raise ValueError(
            "rnn_backward: cache is None: call rnn_forward(..., training=True) to keep it"
        )
    _, d_act = _ACTIVATIONS[cache.nonlinearity]
    dh_seq, dh_n = _output_grads(cache, dh_seq=dh_seq, dh_n=dh_n)

    dz = np.empty_like(cache.h)  # (T, B, H) gradient w.r.t. the pre-activation
    dh_next = dh_n  # gradient reaching h_t from step t+1
    for t in reversed(range(len(dz))):
        dz[t] = (dh_seq[t] + dh_next) * d_act(cache.h[t])
        dh_next = dz[t] @ cache.w_hh

    dx, dw_ih, dw_hh, db = _matmul_grads(cache, dz)
    return RnnGrads(dx, dh_next, dw_ih, dw_hh, db)


def lstm_forward(
    x: np.ndarray,
    h0: Optional[np.ndarray],
    c0: Optional[np.ndarray],
    w_ih: np.ndarray,
    w_hh: np.ndarray,
    b: np.ndarray,
    peephole: Optional[np.ndarray] = None,
    *,
    batch_first: bool = True,
    training: bool = False,
) -> LstmOutput:
    """Runs an LSTM, optionally with diagonal peepholes, over a sequence.

    Args:
        x: Inputs, (B, T, I) if `batch_first` else (T, B, I).
        h0: Initial hidden state (B, H), or None for zeros.
        c0: Initial cell state (B, H), or None for zeros.
        w_ih: Input weights (4H, I), gate blocks in order i, f, g, o.
        w_hh: Recurrent weights (4H, H), same gate order.
        b: Fused bias (4H,), same gate order.
        peephole: Peephole weights (3, H), rows i, f, o; None for none.
        batch_first: Layout of `x` and of the returned `h_seq`.
        training: Keep the cache that `lstm_backward` needs.

    Returns:
        LstmOutput(h_seq, h_n, c_n, cache): `h_seq` (B, T, H) or (T, B, H), `h_n`
        and `c_n` (B, H), `cache` None unless `training`.

    Raises:
        ValueError: A shape does not match.
        TypeError: The arrays do not share one float32 or float64 dtype.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.standard_normal((2, 5, 3))
        >>> w_ih, w_hh = rng.standard_normal((16, 3)), rng.standard_normal((16, 4))
        >>> out = lstm_forward(x, None, None, w_ih, w_hh, np.zeros(16), training=True)
        >>> out.h_seq.shape, out.c_n.shape
        ((2, 5, 4), (2, 4))
        >>> lstm_backward(None, None, np.ones_like(out.c_n), out.cache).dw_hh.shape
        (16, 4)
    """
    xt, (T, B, _, H) = _check_inputs(
        x,
        batch_first,
        len(LSTM_GATES),
        h0=h0,
        c0=c0,
        w_ih=w_ih,
        w_hh=w_hh,
        b=b,
        peephole=peephole,
    )
    h0 = _state_or_zeros(h0, B, H, x.dtype)
    c0 = _state_or_zeros(c0, B, H, x.dtype)
    # Zero peepholes add exact zeros, so one code path serves both variants.
    p_i, p_f, p_o = np.zeros((3, H), x.dtype) if peephole is None else peephole

    z_x = xt @ w_ih.T + b  # (T, B, 4H)
    gates = np.empty((T, B, 4 * H), x.dtype)
    c = np.empty((T, B, H), x.dtype)
    h = np.empty((T, B, H), x.dtype)
    h_prev, c_prev = h0, c0
    for t in range(T):
        z_i, z_f, z_g, z_o = np.split(z_x[t] + h_prev @ w_hh.T, 4, axis=1)
        i = _sigmoid(z_i + p_i * c_prev)
        f = _sigmoid(z_f + p_f * c_prev)
        g = np.tanh(z_g)
        c[t] = f * c_prev + i * g
        o = _sigmoid(z_o + p_o * c[t])
        h[t] = o * np.tanh(c[t])
        gates[t] = np.concatenate([i, f, g, o], axis=1)
        h_prev, c_prev = h[t], c[t]

    cache = None
    if training:
        cache = _LstmCache(xt, h0, c0, w_ih, w_hh, peephole, gates, c, h, batch_first)
    return LstmOutput(_user_layout(h, batch_first), h_prev.copy(), c_prev.copy(), cache)


def lstm_backward(
    dh_seq: Optional[np.ndarray],
    dh_n: Optional[np.ndarray],
    dc_n: Optional[np.ndarray],
    cache: Optional[_LstmCache],
) -> LstmGrads:
    """Backpropagates through every step of an `lstm_forward(..., training=True)` call.

    Args:
        dh_seq: Gradient of the loss w.r.t. `h_seq`, same shape and layout, or None.
        dh_n: Gradient w.r.t. `h_n` (B, H), or None.
        dc_n: Gradient w.r.t. `c_n` (B, H), or None.
        cache: `cache` of the forward output.

    Returns:
        LstmGrads(dx, dh0, dc0, dw_ih, dw_hh, db, dpeephole), shaped like the
        forward's arguments; `dpeephole` is None when the forward had no peepholes.

    Raises:
        ValueError: `cache` is None, or a gradient has the wrong shape.
        TypeError: A gradient's dtype differs from the forward's.
    """
    if cache is None:
        raise ValueError(
            "lstm_backward: cache is None: call lstm_forward(..., training=True) to keep it"
        )
    dh_seq, dh_n, dc_n = _output_grads(cache, dh_seq=dh_seq, dh_n=dh_n, dc_n=dc_n)
    peephole = cache.peephole
    if peephole is None:
        peephole = np.zeros((3, cache.h.shape[-1]), cache.h.dtype)
    p_i, p_f, p_o = peephole
    c_prev = _previous(cache.c, cache.c0)

    dz = np.empty_like(cache.gates)  # (T, B, 4H) gradient w.r.t. the gate pre-activations
    dh_next, dc_next = dh_n, dc_n  # gradients reaching h_t and c_t from step t+1
    for t in reversed(range(len(dz))):
        i, f, g, o = np.split(cache.gates[t], 4, axis=1)
        tanh_c = np.tanh(cache.c[t])
        dh = dh_seq[t] + dh_next
        dz_o = dh * tanh_c * o * (1 - o)
        # c_t reaches the loss through h_t, through c_{t+1}, and through o_t's peephole.
        dc = dc_next + dh * o * (1 - tanh_c * tanh_c) + dz_o * p_o
        dz_i = dc * g * i * (1 - i)
        dz_f = dc * c_prev[t] * f * (1 - f)
        dz_g = dc * i * (1 - g * g)
        dz[t] = np.concatenate([dz_i, dz_f, dz_g, dz_o], axis=1)
        dh_next = dz[t] @ cache.w_hh
        dc_next = dc * f + dz_i * p_i + dz_f * p_f

    dx, dw_ih, dw_hh, db = _matmul_grads(cache, dz)
    dpeephole = None
    if cache.peephole is not None:
        dz_i, dz_f, _, dz_o = np.split(dz, 4, axis=2)
        # Rows i, f, o: each peephole multiplies the cell state its gate sees.
        dpeephole = np.stack([dz_i * c_prev, dz_f * c_prev, dz_o * cache.c]).sum(axis=(1, 2))
    return LstmGrads(dx, dh_next, dc_next, dw_ih, dw_hh, db, dpeephole)
