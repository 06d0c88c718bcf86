"""The benchmark grid: which problems are timed, their GEMM work, and their inputs.

A case is one problem (cell, mode, shape, peephole); the thread count is not part of
it, because every case runs once per thread count. Inputs come from a seeded
generator so that a worker process (keras_worker.py) rebuilds bit-identical data from
the case alone, without shipping arrays through a pipe.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import numpy as np

GATES = {"lstm": 4, "rnn": 1}
MODES = ("infer", "train")
DTYPE = np.float32
SEED = 20261130

# (B, T, H) with I = H: the shapes of issue 3, then the latency shapes (T = 1).
MAIN_SHAPES = [
    (64, 100, 256),
    (64, 100, 512),
    (64, 500, 128),
    (256, 50, 64),
    (1, 100, 256),
    (16, 100, 256),
    (16, 1, 256),
    (1, 1, 256),
]
# Peephole LSTM cases; each also times the plain LSTM on its data (the peephole cost).
PEEPHOLE_SHAPES = [(64, 100, 256), (1, 100, 256)]

# B=16 stands in for the large batches: same per-step shape class, 4x less time.
QUICK_SHAPES = [(16, 100, 256), (1, 100, 256), (1, 1, 256)]
QUICK_PEEPHOLE_SHAPES = [(1, 100, 256)]


@dataclass(frozen=True)
class Case:
    cell: str  # "lstm" | "rnn"
    mode: str  # "infer" (forward only) | "train" (forward + full BPTT)
    B: int
    T: int
    I: int
    H: int
    peephole: bool = False

    @property
    def label(self) -> str:
        peep = " peep" if self.peephole else ""
        return f"{self.cell} {self.mode} B{self.B} T{self.T} I{self.I} H{self.H}{peep}"

    @property
    def gflop(self) -> float:
        """GEMM work only, as PERFORMANCE.md counts it: training = 3x forward."""
        forward = 2.0 * self.B * self.T * GATES[self.cell] * self.H * (self.I + self.H)
        return forward * (3 if self.mode == "train" else 1) / 1e9

    def to_dict(self) -> dict:
        return asdict(self)


def _grid(shapes, peephole_shapes, cells=("lstm", "rnn")) -> list[Case]:
    cases = []
    for cell in cells:
        for mode in MODES:
            for B, T, H in shapes:
                cases.append(Case(cell, mode, B, T, H, H))
                if cell == "lstm" and (B, T, H) in peephole_shapes:
                    cases.append(Case(cell, mode, B, T, H, H, peephole=True))
    return cases


def overhead_case() -> Case:
    """Issue 3's call-overhead case: so little work that its time is the Python call."""
    return Case("lstm", "infer", 1, 1, 32, 32)


def default_grid() -> list[Case]:
    return _grid(MAIN_SHAPES, PEEPHOLE_SHAPES) + [overhead_case()]


def quick_grid() -> list[Case]:
    return _grid(QUICK_SHAPES, QUICK_PEEPHOLE_SHAPES) + [overhead_case()]


def smoke_grid() -> list[Case]:
    """Tiny problems that exercise every code path (infer, train, peephole, rnn)."""
    return [
        Case("lstm", "infer", 2, 5, 8, 8),
        Case("lstm", "train", 2, 5, 8, 8, peephole=True),
        Case("rnn", "train", 2, 5, 8, 8),
    ]


def select(cases: list[Case], pattern: str | None) -> list[Case]:
    """Keeps the cases whose label matches the regular expression (None keeps all)."""
    if not pattern:
        return cases
    rx = re.compile(pattern)
    return [c for c in cases if rx.search(c.label)]


def make_data(case: Case, seed: int = SEED) -> dict:
    """Inputs, weights and the output gradient g (loss = sum(h_seq * g)), float32.

    Weights are uniform in +-1/sqrt(H) (torch's and Keras's default scale), so the
    gates stay in their sensitive range and no implementation hits denormals or
    saturates into a trivially cheap regime.
    """
    rng = np.random.default_rng(seed)
    G, H = GATES[case.cell], case.H
    scale = 1.0 / np.sqrt(H)

    def uniform(*shape):
        return rng.uniform(-scale, scale, shape).astype(DTYPE)

    data = {
        "x": rng.standard_normal((case.B, case.T, case.I)).astype(DTYPE),
        "w_ih": uniform(G * H, case.I),
        "w_hh": uniform(G * H, H),
        "b": uniform(G * H),
        "peephole": uniform(3, H) if case.peephole else None,
    }
    if case.mode == "train":
        data["g"] = rng.standard_normal((case.B, case.T, H)).astype(DTYPE)
    return data
