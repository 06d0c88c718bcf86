"""Issue 3's speed targets, judged on the rows of one run.

Each target reads one value per row from the run's raw times:
- "torch": torch's time over fastrnn's in the same round (both ran in every round, side
  by side), the median over the rounds;
- "threads": fastrnn's 1-thread median over its median at the most threads of the run;
- "peephole": the peephole call over the plain one of the same round (fastrnn-plain);
- "time": fastrnn's median time in ms.
A seeded bootstrap over the rounds gives the value a 95% interval. A row is "met" when
the whole interval clears the need, "short" when none of it does and "unresolved" when
the need lies inside it: the noise of this run cannot tell, and a longer run (--budget)
may. The table's /fast is another statistic, a ratio of two medians with no interval:
a row can clear a need there and still read "unresolved" here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

BOOTSTRAP_SAMPLES = 2000
PLAIN = "fastrnn-plain"  # peers.FastrnnPlainPeer.name, without importing the peers

# The target the bench does not measure, and where it is checked instead.
ELSEWHERE = "results bitwise identical for 1, 2, 3 threads (tests/test_parity_*, test_properties)"


@dataclass(frozen=True)
class Target:
    """One line of issue 3's target list, restricted to the rows it speaks of."""

    name: str
    kind: str  # "torch" | "threads" | "peephole" | "time"
    need: float
    applies: Callable[[dict, int], bool]  # (case dict, threads) -> whether the row counts
    at_most: bool = False  # the value must not exceed `need` (times, costs)

    def verdict(self, low: float, high: float) -> str:
        lo, hi = (-high, -low) if self.at_most else (low, high)
        need = -self.need if self.at_most else self.need
        return "met" if lo >= need else "short" if hi < need else "unresolved"

    def need_label(self) -> str:
        unit = " ms" if self.kind == "time" else "x"
        return f"{'<=' if self.at_most else '>='}{self.need:g}{unit}"


def _lstm(c: dict) -> bool:
    return c["cell"] == "lstm" and not c["peephole"]


def _big_lstm(c: dict, mode: str) -> bool:
    return _lstm(c) and c["mode"] == mode and c["B"] >= 16 and c["H"] >= 256


def _b1_lstm(c: dict, mode: str, H: int = 256) -> bool:
    return _lstm(c) and c["mode"] == mode and c["B"] == 1 and c["H"] == H


# In issue 3's order. "2 threads" there is every core of its 2-core machine: here, any
# run with more than one thread.
TARGETS = [
    Target("LSTM B>=16 H>=256 infer vs torch, 1 thread", "torch", 1.0,
           lambda c, n: _big_lstm(c, "infer") and n == 1),
    Target("LSTM B>=16 H>=256 train vs torch, 1 thread", "torch", 1.1,
           lambda c, n: _big_lstm(c, "train") and n == 1),
    Target("LSTM B>=16 H>=256 infer vs torch, 2 threads", "torch", 1.1,
           lambda c, n: _big_lstm(c, "infer") and n > 1),
    Target("LSTM B>=16 H>=256 train vs torch, 2 threads", "torch", 1.2,
           lambda c, n: _big_lstm(c, "train") and n > 1),
    Target("LSTM B=1 H=256 infer vs torch", "torch", 1.5, lambda c, n: _b1_lstm(c, "infer")),
    Target("LSTM B=1 H=256 train vs torch", "torch", 2.0, lambda c, n: _b1_lstm(c, "train")),
    Target("LSTM H=64, H=128 train vs torch", "torch", 1.5,
           lambda c, n: _lstm(c) and c["mode"] == "train" and c["H"] in (64, 128)),
    Target("RNN infer vs torch", "torch", 1.5,
           lambda c, n: c["cell"] == "rnn" and c["mode"] == "infer"),
    Target("RNN train vs torch (B>1)", "torch", 1.5,
           lambda c, n: c["cell"] == "rnn" and c["mode"] == "train" and c["B"] > 1),
    Target("RNN train B=1 vs torch", "torch", 2.0,
           lambda c, n: c["cell"] == "rnn" and c["mode"] == "train" and c["B"] == 1),
    Target("1 -> 2 threads at B>=16 (fastrnn)", "threads", 1.8,
           lambda c, n: c["B"] >= 16 and n == 1),
    Target("LSTM B=1 H=256 T=100 infer, 1 thread", "time", 1.0,
           lambda c, n: _b1_lstm(c, "infer") and c["T"] == 100 and n == 1, at_most=True),
    Target("LSTM B=1 H=256 one step (T=1) infer", "time", 0.015,
           lambda c, n: _b1_lstm(c, "infer") and c["T"] == 1, at_most=True),
    Target("peephole LSTM over the plain one", "peephole", 1.1,
           lambda c, n: c["cell"] == "lstm" and c["peephole"], at_most=True),
    Target("Python call overhead (LSTM B=1 T=1 H=32 infer)", "time", 0.010,
           lambda c, n: _b1_lstm(c, "infer", 32) and c["T"] == 1, at_most=True),
]


def _times(entry: dict | None) -> np.ndarray | None:
    if not entry or entry.get("status") != "ok" or not entry.get("times_ms"):
        return None
    return np.asarray(entry["times_ms"], dtype=np.float64)


def _boot_medians(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Medians of BOOTSTRAP_SAMPLES resamplings of x (with replacement, x's length)."""
    return np.median(x[rng.integers(0, len(x), (BOOTSTRAP_SAMPLES, len(x)))], axis=1)


def _with_interval(value: float, boot: np.ndarray) -> tuple:
    low, high = np.percentile(boot, [2.5, 97.5])
    return float(value), float(low), float(high)


# Each returns (value, low, high). The generator is seeded, so a record reads the same
# on every machine.
def paired(num: np.ndarray, den: np.ndarray) -> tuple:
    """Median of num[i] / den[i] over the rounds both ran."""
    n = min(len(num), len(den))
    r = num[:n] / den[:n]
    return _with_interval(np.median(r), _boot_medians(r, np.random.default_rng(0)))


def unpaired(num: np.ndarray, den: np.ndarray) -> tuple:
    """median(num) / median(den), each resampled on its own (no shared rounds)."""
    rng = np.random.default_rng(0)
    boot = _boot_medians(num, rng) / _boot_medians(den, rng)
    return _with_interval(np.median(num) / np.median(den), boot)


def median_of(x: np.ndarray) -> tuple:
    return _with_interval(np.median(x), _boot_medians(x, np.random.default_rng(0)))


def _most_threads(rows: list[dict], row: dict) -> dict | None:
    same = [r for r in rows if r["case"]["label"] == row["case"]["label"] and r["threads"] > 1]
    return max(same, key=lambda r: r["threads"]) if same else None


def _judge_row(target: Target, row: dict, rows: list[dict]) -> dict:
    """One row's value under one target: a dict for judge()'s list."""
    res = row["results"]
    fast = _times(res.get("fastrnn"))
    out = {"target": target.name, "need": target.need_label(), "label": row["case"]["label"],
           "threads": row["threads"], "value": None, "low": None, "high": None}

    def missing(why: str) -> dict:
        return {**out, "verdict": "not measured", "why": why}

    if fast is None:
        return missing("fastrnn did not run")
    if target.kind == "torch":
        torch = res.get("torch")
        if _times(torch) is None:
            return missing("torch not in this run" if not torch else f"torch {torch['status']}")
        if torch.get("check_ok") is False:
            return missing("torch's outputs differ from fastrnn's")
        value = paired(_times(torch), fast)
    elif target.kind == "peephole":
        plain = _times(res.get(PLAIN))
        if plain is None:
            return missing("no plain-LSTM times")
        value = paired(fast, plain)
    elif target.kind == "threads":
        wide = _most_threads(rows, row)
        if wide is None or _times(wide["results"].get("fastrnn")) is None:
            return missing("no multi-thread row")
        out["threads"] = f"1/{wide['threads']}"
        value = unpaired(fast, _times(wide["results"]["fastrnn"]))
    else:
        value = median_of(fast)
    v, low, high = value
    return {**out, "value": v, "low": low, "high": high, "verdict": target.verdict(low, high)}


def judge(rows: list[dict], targets: list[Target] = TARGETS) -> list[dict]:
    """Every (target, row) pair of the run that a target speaks of, in target order."""
    found = []
    for target in targets:
        for row in rows:
            if target.applies(row["case"], row["threads"]):
                found.append(_judge_row(target, row, rows))
    return found


def _fmt(v: float, kind_ms: bool) -> str:
    return f"{v:.3f}" if kind_ms else f"{v:.2f}"


def _row_line(j: dict, width: int) -> str:
    where = f"    {j['label']:<{width}}  thr {j['threads']!s:<4}"
    if j["value"] is None:
        return f"{where} {'not measured':<12} ({j['why']})"
    ms = j["need"].endswith("ms")
    unit = " ms" if ms else "x"
    return (
        f"{where} {j['verdict']:<12} {_fmt(j['value'], ms)}{unit} "
        f"[{_fmt(j['low'], ms)}, {_fmt(j['high'], ms)}]"
    )


def format_targets(judged: list[dict]) -> str:
    """The printed section: one line per judged row, grouped by target, then the counts."""
    if not judged:
        return ""
    head = (
        "issue 3 targets (value: median over the rounds [95% bootstrap interval]; "
        "unresolved: the need lies inside the interval):"
    )
    lines = [head]
    width = max(len(j["label"]) for j in judged)
    groups: dict[str, list[dict]] = {}
    for j in judged:
        groups.setdefault(j["target"], []).append(j)
    for name, group in groups.items():
        reasons = {j.get("why") for j in group}
        if all(j["value"] is None for j in group) and len(reasons) == 1:
            # Without torch, one line per target instead of one per row.
            lines.append(f"  {name}, need {group[0]['need']}: not measured ({reasons.pop()})")
            continue
        lines.append(f"  {name}, need {group[0]['need']}:")
        lines.extend(_row_line(j, width) for j in group)
    counts = {}
    for j in judged:
        counts[j["verdict"]] = counts.get(j["verdict"], 0) + 1
    order = ("met", "short", "unresolved", "not measured")
    lines.append("  rows: " + ", ".join(f"{counts[k]} {k}" for k in order if k in counts))
    lines.append(f"  not judged here: {ELSEWHERE}")
    return "\n".join(lines)
