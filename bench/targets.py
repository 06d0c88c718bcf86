"""Issue 3's speed targets, judged on the rows of one run.

Each target reads one value per row from the run's raw times:
- "torch": torch's time over fastrnn's in the same round (both ran in every round, side
  by side), the median over the rounds;
- "threads": fastrnn's 1-thread median over its median on 2 threads (else the most);
- "peephole": the peephole call over the plain one of the same round (fastrnn-plain);
- "time": fastrnn's median time in ms.
Each value comes with a distribution-free interval of at least 90% coverage for the
median (order statistics of the rounds; median_interval). A row is "met" when the whole
interval clears the need, "short" when none of it does and "unresolved" when the need
lies inside it, or when the case ran fewer rounds than any such interval needs (5;
the thread-scaling ratio, whose two rows share no rounds, needs 6 of each): the noise
of this run cannot tell, and more rounds (--reps N, or --budget S up to the 50-round
cap) may. The table's /fast is another statistic, a ratio of two medians with no
interval: a row can clear a need there and still read "unresolved" here.

With the run's peak per thread count, a judged row also says what meeting its need would
take: fastrnn's GEMM GFLOP/s at the need, as a % of that peak ("take"), next to what it
runs at ("now"), from the medians. A short row whose need takes more than numpy's own
sgemm reaches on this machine is a row where the FMAs, not the code, set the limit; a
B=1 row is bound by reading w_hh instead (README, "Where the hardware sets the limit").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

COVERAGE = 0.9  # of each row's interval, at least
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


def _issue_case(c: dict) -> bool:
    """The cases the LSTM targets name, which the RNN targets take over ("at every case
    above"): B>=16 with H>=256, B=1 with H=256, and training at H=64 or 128."""
    return ((c["B"] >= 16 and c["H"] >= 256) or (c["B"] == 1 and c["H"] == 256)
            or (c["mode"] == "train" and c["H"] in (64, 128)))


def _rnn(c: dict, mode: str) -> bool:
    return c["cell"] == "rnn" and c["mode"] == mode and _issue_case(c)


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
    Target("RNN infer vs torch", "torch", 1.5, lambda c, n: _rnn(c, "infer")),
    Target("RNN train vs torch (B>1)", "torch", 1.5, lambda c, n: _rnn(c, "train") and c["B"] > 1),
    Target("RNN train B=1 vs torch", "torch", 2.0, lambda c, n: _rnn(c, "train") and c["B"] == 1),
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


def median_interval(x: np.ndarray, coverage: float) -> tuple | None:
    """A distribution-free interval for the median of x: the order statistics x(k) and
    x(n+1-k) for the largest k whose coverage, 1 - 2 P(Binomial(n, 1/2) < k), is at least
    `coverage`. None when even (min, max) covers less (at 90%: fewer than 5 values)."""
    xs, n = np.sort(x), len(x)
    k, tail = 0, 0.0
    while k < (n + 1) // 2:
        tail += math.comb(n, k) / 2.0**n  # P(Binomial(n, 1/2) <= k)
        if 1 - 2 * tail < coverage:
            break
        k += 1
    return (float(xs[k - 1]), float(xs[n - k])) if k else None


# Each returns (value, low, high), low = high = None when there are too few rounds.
def paired(num: np.ndarray, den: np.ndarray) -> tuple:
    """Median of num[i] / den[i] over the rounds, which both ran, side by side."""
    if len(num) != len(den):
        raise ValueError(f"paired rounds: {len(num)} against {len(den)} times")
    return median_of(num / den)


def unpaired(num: np.ndarray, den: np.ndarray) -> tuple:
    """median(num) / median(den) from two runs with no shared rounds: the interval joins
    each median's, at half the miss rate each, so drift between the two runs is not in it."""
    value = float(np.median(num) / np.median(den))
    a = median_interval(num, 1 - (1 - COVERAGE) / 2)
    b = median_interval(den, 1 - (1 - COVERAGE) / 2)
    if a is None or b is None:
        return value, None, None
    return value, a[0] / b[1], a[1] / b[0]


def median_of(x: np.ndarray) -> tuple:
    ci = median_interval(x, COVERAGE)
    return (float(np.median(x)), *(ci or (None, None)))


def _wide_row(rows: list[dict], row: dict) -> dict | None:
    """The same case on 2 threads (issue 3's machine has 2 cores), else on the most."""
    same = [r for r in rows if r["case"]["label"] == row["case"]["label"] and r["threads"] > 1]
    return min(same, key=lambda r: (r["threads"] != 2, -r["threads"])) if same else None


def _pct(gflop: float | None, ms: float, peak: dict | None, threads: int) -> float | None:
    """GEMM GFLOP/s of `gflop` in `ms`, as a % of the peak on `threads` threads."""
    if not gflop or not peak or threads not in peak or ms <= 0:
        return None
    return 100.0 * gflop / (ms / 1e3) / peak[threads]


def _at_need(target: Target, row: dict, fast: np.ndarray, torch: np.ndarray | None,
             wide: dict | None, peak: dict | None) -> dict:
    """% of the peak that fastrnn would run at if it just met the need ("take"), and runs
    at now, from the medians; {} for a target whose need is no speed (the peephole cost)."""
    gflop, n = row["case"].get("gflop"), row["threads"]
    if row["case"].get("T") == 1:
        # The count includes the product with the initial state, which is zero here (no
        # h0) and skipped: up to twice the work done, so a % of the peak would mislead.
        return {}
    if target.kind == "torch":
        take = _pct(gflop, float(np.median(torch)) / target.need, peak, n)
        now = _pct(gflop, float(np.median(fast)), peak, n)
    elif target.kind == "time":
        take, now = _pct(gflop, target.need, peak, n), _pct(gflop, float(np.median(fast)), peak, n)
    elif target.kind == "threads":
        wide_fast, n = _times(wide["results"]["fastrnn"]), wide["threads"]
        take = _pct(gflop, float(np.median(fast)) / target.need, peak, n)
        now = _pct(gflop, float(np.median(wide_fast)), peak, n)
    else:
        return {}
    return {"take_pct": take, "now_pct": now} if take is not None and now is not None else {}


def _judge_row(target: Target, row: dict, rows: list[dict], peak: dict | None = None) -> dict:
    """One row's value under one target: a dict for judge()'s list."""
    res = row["results"]
    fast = _times(res.get("fastrnn"))
    out = {"target": target.name, "need": target.need_label(), "label": row["case"]["label"],
           "threads": row["threads"], "value": None, "low": None, "high": None}
    wide = None

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
        wide = _wide_row(rows, row)
        if wide is None or _times(wide["results"].get("fastrnn")) is None:
            return missing("no multi-thread row")
        out["threads"] = f"1/{wide['threads']}"
        value = unpaired(fast, _times(wide["results"]["fastrnn"]))
    else:
        value = median_of(fast)
    out.update(_at_need(target, row, fast, _times(res.get("torch")), wide, peak))
    placed = {row.get("placement"), (wide or {}).get("placement")}
    if placed & {"apart", "shared"}:
        out["placement"] = "shared" if "shared" in placed else "apart"
    v, low, high = value
    if low is None:
        return {**out, "value": v, "verdict": "unresolved",
                "why": f"{len(fast)} rounds: too few for an interval"}
    return {**out, "value": v, "low": low, "high": high, "verdict": target.verdict(low, high)}


def judge(rows: list[dict], targets: list[Target] = TARGETS,
          peak: dict | None = None) -> list[dict]:
    """Every (target, row) pair of the run that a target speaks of, in target order.
    peak: {threads: GFLOP/s}, the run's %-of-peak denominator, for "take" and "now"."""
    found = []
    for target in targets:
        for row in rows:
            if target.applies(row["case"], row["threads"]):
                found.append(_judge_row(target, row, rows, peak))
    return found


def _fmt(v: float, kind_ms: bool) -> str:
    return f"{v:.3f}" if kind_ms else f"{v:.2f}"


def _row_line(j: dict, width: int) -> str:
    where = f"    {j['label']:<{width}}  thr {j['threads']!s:<4}"
    if j["value"] is None:
        return f"{where} {'not measured':<12} ({j['why']})"
    ms = j["need"].endswith("ms")
    value = f"{where} {j['verdict']:<12} {_fmt(j['value'], ms)}{' ms' if ms else 'x'}"
    if j["low"] is None:
        value = f"{value} ({j['why']})"
    else:
        value = f"{value} [{_fmt(j['low'], ms)}, {_fmt(j['high'], ms)}]"
    if j["verdict"] != "met" and j.get("take_pct") is not None:
        value += f"  takes {j['take_pct']:.0f}%, now {j['now_pct']:.0f}%"
    if j.get("placement"):
        value += "  (cores apart)" if j["placement"] == "apart" else "  (one core shared)"
    return value


def format_targets(judged: list[dict], ceiling: dict | None = None, peak_label: str = "") -> str:
    """The printed section: one line per judged row, grouped by target, then the counts.
    ceiling: {threads: % of the peak} that numpy's sgemm reaches, printed for scale."""
    if not judged:
        return ""
    head = (
        "issue 3 targets (value: median over the rounds [interval of >= 90% coverage]; "
        "unresolved: the need lies inside the interval, or too few rounds for one; "
        f"takes: the {peak_label or '% peak'} fastrnn would run at just meeting the need, "
        "now: what it runs at):"
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
    if ceiling:
        reach = ", ".join(f"{v:.0f}% on {n} thr" for n, v in sorted(ceiling.items()))
        lines.append(f"  for scale: numpy's sgemm reaches {reach} ({peak_label or '% peak'})")
    lines.append(f"  not judged here: {ELSEWHERE}")
    return "\n".join(lines)
