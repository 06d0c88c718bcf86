"""Side-by-side timing of one case: warm-up, a correctness check, interleaved reps.

Every implementation of a case is timed in the same run, round-robin, so that a slow
drift of the machine (frequency, a noisy neighbour) hits all of them alike; the medians
are reported. The order changes from round to round so that each implementation runs
right after each other one about equally often, and never right after itself (what
ran just before a short multi-thread call changes its time; see round_orders).
"""

from __future__ import annotations

import gc
import itertools
import math
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from cases import Case, make_data
from machine import blas_threads

# Max |peer - fastrnn| / max |fastrnn| per output: float32 with other summation orders
# stays far below this; a different function (gate order, bias, layout) lands far above.
CHECK_TOLERANCE = 2e-3


@dataclass
class RepPolicy:
    """How many interleaved rounds: enough to fill ``budget_s``, within [min, max]."""

    warmup: int = 2
    # 6: the fewest rounds for which every target of issue 3 gets an interval. The 1 -> 2
    # thread scaling compares two rows with no rounds in common, each median's interval
    # at 95% (targets.unpaired), and (min, max) of 5 rounds covers only 93.75%: a full
    # run left 10 of its 26 scaling rows unjudged, all the largest cases.
    min_reps: int = 6
    max_reps: int = 50
    budget_s: float = 2.0
    fixed: int | None = None  # --reps overrides the budget
    # --quick only: start no new round after this many seconds (one round at least), so
    # that a machine busy with other work cannot stretch the run past its time limit.
    cap_s: float | None = None

    def rounds(self, seconds_per_round: float) -> int:
        if self.fixed is not None:
            return self.fixed
        wanted = math.ceil(self.budget_s / max(seconds_per_round, 1e-9))
        return max(self.min_reps, min(self.max_reps, wanted))


@dataclass
class Result:
    """One implementation on one case and thread count."""

    status: str  # "ok" | "skipped" | "failed"
    reason: str = ""
    times: list = field(default_factory=list)
    check_err: float | None = None  # vs fastrnn; None for fastrnn itself
    checked: bool = True  # False: another function by design, never compared

    @property
    def ms(self) -> float | None:
        return 1e3 * statistics.median(self.times) if self.times else None

    @property
    def check_ok(self) -> bool | None:
        """None when the outputs were never compared (see ``checked``)."""
        if not self.checked:
            return None
        return self.check_err is None or self.check_err <= CHECK_TOLERANCE


def relative_error(actual: dict, expected: dict) -> float:
    """The worst, over the outputs both have, of max|a - e| / max|e|."""
    worst = 0.0
    for key, e in expected.items():
        if key not in actual:
            continue
        a = np.asarray(actual[key], dtype=np.float64)
        e = np.asarray(e, dtype=np.float64)
        if a.shape != e.shape:
            return float("inf")
        scale = max(float(np.max(np.abs(e))), 1e-30)
        worst = max(worst, float(np.max(np.abs(a - e))) / scale)
    return worst


def _prepare_all(peers, case, data, threads) -> tuple[dict, dict]:
    """Runners for the peers that can run this case; a Result for those that cannot."""
    runners, results = {}, {}
    for peer in peers:
        reason = peer.unsupported(case)
        if reason:
            results[peer.name] = Result("skipped", reason)
            continue
        try:
            peer.set_threads(threads)
            runners[peer.name] = peer.prepare(case, data, threads)
        except Exception as e:  # a broken peer loses its column for this case, nothing more
            results[peer.name] = Result("failed", f"{type(e).__name__}: {e}")
    return runners, results


def _run_guarded(name, runner, results) -> float | None:
    """One timed call; a peer that raises is dropped from the case instead of the run."""
    try:
        return runner.timed_run()
    except Exception as e:
        results[name] = Result("failed", f"{type(e).__name__}: {e}")
        return None


def _warm_up(runners, results, reps) -> dict:
    """First calls pay for lazy set-up (ORT's first run, oneDNN primitives, caches)."""
    fastest = {}
    for _ in range(reps):
        for name, runner in list(runners.items()):
            t = _run_guarded(name, runner, results)
            if t is None:
                del runners[name]
            else:
                fastest[name] = min(t, fastest.get(name, t))
    return fastest


def _check(runners, results) -> dict:
    """Each peer's outputs against fastrnn's (after warm-up, so all have run once)."""
    if "fastrnn" not in runners:
        return {}
    expected = runners["fastrnn"].outputs()
    errors = {}
    for name, runner in runners.items():
        if name == "fastrnn" or not runner.checked:
            continue
        try:
            errors[name] = relative_error(runner.outputs(), expected)
        except Exception as e:
            results[name] = Result("failed", f"check: {type(e).__name__}: {e}")
    return errors


# Calls shorter than this are timed in bursts of back-to-back calls lasting about this
# long, and the time per call is reported: one short call after a pause measures a cold
# machine (caches, idle cores, sleeping threads) more than the library.
BURST_S = 0.005


def _burst_sizes(fastest: dict) -> dict:
    return {name: max(1, min(1000, math.ceil(BURST_S / max(t, 1e-9)))) for name, t in fastest.items()}


def _run_burst(name, runner, results, calls: int) -> float | None:
    total = 0.0
    for _ in range(calls):
        t = _run_guarded(name, runner, results)
        if t is None:
            return None
        total += t
    return total / calls


def round_orders(names: list, rounds: int) -> list[list]:
    """The call order of each round. Each round takes the order whose calls (counting the
    one across the round boundary) repeat the who-ran-just-before-whom pairs used least
    so far, and never put a peer right after itself; ties go to the peer that has gone
    first least often. A plain rotation keeps neighbours in order (with A, B, C, D, B
    runs right after A in 3 rounds of 4 and A never right after B), so B mostly starts
    on the cores, caches and threads A has just used."""
    # Every order is scored: the bench has at most 6 runners, 720 orders (<0.1 s a case).
    candidates = [list(p) for p in itertools.permutations(names)]
    follows, firsts, orders, last = Counter(), Counter(), [], None

    def pairs(order):
        return ([(last, order[0])] if last is not None else []) + list(zip(order, order[1:]))

    def cost(order):
        p = pairs(order)
        return (sum(a == b for a, b in p), sum(follows[e] for e in p), firsts[order[0]])

    for _ in range(rounds):
        best = min(candidates, key=cost)
        follows.update(pairs(best))
        firsts[best[0]] += 1
        last = best[-1]
        orders.append(best)
    return orders


def _interleave(runners, results, rounds: int, settle_s: float, cap_s: float | None,
                bursts: dict) -> dict:
    times = {name: [] for name in runners}
    start = time.perf_counter()
    for k, order in enumerate(round_orders(list(runners), rounds)):
        if k > 0 and cap_s is not None and time.perf_counter() - start > cap_s:
            break
        for name in order:
            if name not in runners:
                continue
            t = _run_burst(name, runners[name], results, bursts.get(name, 1))
            if t is None:
                del runners[name]
                continue
            times[name].append(t)
            # Let the last runtime's spinning worker threads (OpenMP, ORT) go idle, so
            # they do not steal the cores of the next implementation.
            time.sleep(settle_s)
    return times


def measure_case(case: Case, threads: int, peers, policy: RepPolicy, settle_s: float) -> dict:
    """Times every peer on one case at one thread count; returns {peer name: Result}."""
    data = make_data(case)
    with blas_threads(threads):
        runners, results = _prepare_all(peers, case, data, threads)
        fastest = _warm_up(runners, results, policy.warmup)
        errors = _check(runners, results)
        bursts = _burst_sizes({n: fastest[n] for n in runners})
        rounds = policy.rounds(sum(fastest[n] * bursts[n] for n in runners))
        gc.collect()
        gc.disable()  # a collection inside a timed call would be charged to one peer
        try:
            times = _interleave(runners, results, rounds, settle_s, policy.cap_s, bursts)
        finally:
            gc.enable()
    for name, runner in runners.items():
        runner.close()
        if name not in results:
            results[name] = Result(
                "ok", times=times[name], check_err=errors.get(name), checked=runner.checked
            )
    return results
