"""Result types of the functional API, shared by functional.py and reference.py.

Field names are part of the stable API (DESIGN.md, "Functional API").
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import numpy as np


class RnnOutput(NamedTuple):
    h_seq: np.ndarray  # (B, T, H) batch-first, or (T, B, H) time-major
    h_n: np.ndarray  # (B, H)
    cache: Optional[Any]  # None unless training=True


class LstmOutput(NamedTuple):
    h_seq: np.ndarray  # (B, T, H) batch-first, or (T, B, H) time-major
    h_n: np.ndarray  # (B, H)
    c_n: np.ndarray  # (B, H)
    cache: Optional[Any]  # None unless training=True


class RnnGrads(NamedTuple):
    dx: np.ndarray  # same shape and layout as x
    dh0: np.ndarray  # (B, H)
    dw_ih: np.ndarray  # (H, I)
    dw_hh: np.ndarray  # (H, H)
    db: np.ndarray  # (H,)


class LstmGrads(NamedTuple):
    dx: np.ndarray  # same shape and layout as x
    dh0: np.ndarray  # (B, H)
    dc0: np.ndarray  # (B, H)
    dw_ih: np.ndarray  # (4H, I)
    dw_hh: np.ndarray  # (4H, H)
    db: np.ndarray  # (4H,)
    dpeephole: Optional[np.ndarray]  # (3, H), None without peepholes
