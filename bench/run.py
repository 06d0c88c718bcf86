#!/usr/bin/env python
"""fastrnn's benchmark suite: fastrnn against NumPy, torch, ONNX Runtime and Keras/TF.

    python bench/run.py                      # the default grid, threads 1 and all
    python bench/run.py --quick              # a reduced grid, under 2 minutes
    python bench/run.py --cases "lstm train" --threads 2 --json out.json --plot out.png

Every case is measured for all implementations side by side (interleaved reps,
medians; see measure.py) and checked once against fastrnn's output. Peers that are
not installed lose their columns, with a one-line note. bench/README.md explains the
columns.
"""

from __future__ import annotations

import os

# OpenBLAS's idle worker spins for about 2^28 cycles (~70 ms) after each numpy matmul, so
# with 2 threads the numpy peer left a spinning thread on the second core through the
# next peer's 2-thread calls. 2^4 cycles lets it sleep at once; this must be set before
# numpy loads OpenBLAS. (Only the idle spin changes, not how OpenBLAS computes.)
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import cases as grid  # noqa: E402
import fastrnn  # noqa: E402
import machine
import report
import targets
from keras_peer import KerasPeer
from measure import RepPolicy, measure_case
from peers import FastrnnPeer, FastrnnPlainPeer, NumpyPeer, OrtPeer, TorchPeer

PEER_NAMES = ("fastrnn", "numpy", "torch", "onnxruntime", "keras")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="reduced grid and fewer reps (< 2 min)")
    size.add_argument(
        "--smoke", action="store_true", help="tiny grid, 2 reps, fastrnn + numpy (CI)"
    )
    p.add_argument(
        "--threads", default="1,all", help="comma list of thread counts; 'all' = every core"
    )
    p.add_argument(
        "--cases", help="regular expression on the case label, e.g. 'lstm (infer|train) B64'"
    )
    p.add_argument(
        "--peers",
        help=f"comma list out of {','.join(PEER_NAMES)} (fastrnn always runs, and in "
        "peephole cases also its plain-LSTM baseline)",
    )
    p.add_argument(
        "--reps", type=int, help="interleaved rounds per case (default: fill a time budget)"
    )
    p.add_argument("--budget", type=float, help="seconds of timing per case and thread count")
    p.add_argument(
        "--settle-ms", type=float, default=2.0, help="pause between two timed calls (ms)"
    )
    p.add_argument("--json", metavar="PATH", help="write every measurement to a JSON file")
    p.add_argument("--plot", metavar="PATH", help="write a %%-of-peak bar chart (needs matplotlib)")
    return p.parse_args(argv)


def thread_counts(spec: str) -> list[int]:
    counts = []
    for item in spec.split(","):
        n = machine.all_threads() if item.strip() == "all" else int(item)
        if n < 1:
            raise SystemExit(f"--threads: thread counts must be >= 1, got {n}")
        if n not in counts:
            counts.append(n)
    return counts


def settings(args) -> tuple[list, RepPolicy, int, tuple]:
    """Grid, repetition policy, sgemm size for the peak, and default peers per preset."""
    if args.smoke:
        return grid.smoke_grid(), RepPolicy(warmup=1, fixed=2), 256, ("fastrnn", "numpy")
    if args.quick:
        return (
            grid.quick_grid(),
            RepPolicy(warmup=1, min_reps=3, max_reps=15, budget_s=0.5, cap_s=3.0),
            2048,
            PEER_NAMES,
        )
    return grid.default_grid(), RepPolicy(), 2048, PEER_NAMES


def make_peers(names, threads: list[int]) -> tuple[list, list[str]]:
    """The peers that can run here, fastrnn first; a note for each that cannot."""
    factories = {
        "fastrnn": FastrnnPeer,
        "numpy": NumpyPeer,
        "torch": TorchPeer,
        "onnxruntime": OrtPeer,
        "keras": KerasPeer,
    }
    unknown = set(names) - set(factories)
    if unknown:
        raise SystemExit(f"--peers: unknown {sorted(unknown)}; choose from {','.join(PEER_NAMES)}")
    peers, notes = [], []
    for name in ["fastrnn"] + [n for n in names if n != "fastrnn"]:
        peer = factories[name]()
        reason = peer.unavailable()
        if reason is None and isinstance(peer, KerasPeer):
            reason = _start_keras(peer, threads)
        if reason:
            notes.append(f"{name} column skipped: {reason}")
        else:
            peers.append(peer)
        if name == "fastrnn":
            peers.append(FastrnnPlainPeer())  # the peephole rows' baseline, no column
    return peers, notes


def _start_keras(peer: KerasPeer, threads: list[int]) -> str | None:
    """Starts the TF workers before anything is timed (their import loads the CPU)."""
    try:
        peer.start(threads)
    except Exception as e:
        peer.close()
        return f"could not start the TensorFlow worker: {e}"
    return None


def header(peak, policy: RepPolicy, threads, settle_s: float, notes, load: tuple) -> dict:
    return {
        "settle_s": settle_s,
        "load_average_1min": {"start": load[0], "end": load[1]},
        "build_info": fastrnn.build_info(),
        "machine": machine.machine_info(),
        "peak": peak,
        "threads": threads,
        "reps": vars(policy),
        "notes": notes,
    }


def peak_label(peak: dict) -> str:
    return "%fma" if peak["kind"] == "fma" else "%sgemm"


def format_header(h: dict, elapsed_s: float) -> str:
    b, m, p = h["build_info"], h["machine"], h["peak"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    sgemm = ", ".join(f"{n} thr {g:.1f}" for n, g in p["sgemm_gflops"].items())
    sgemm_what = f"numpy float32 matmul {p['size']}^3, best of {p['reps']}"
    if p["kind"] == "fma":
        fma = ", ".join(f"{n} thr {g:.1f}" for n, g in p["gflops"].items())
        peak_lines = [
            f"FMA peak (fastrnn._core.fma_peak_gflops, the %fma denominator): {fma} GFLOP/s",
            f"sgemm ({sgemm_what}, for reference): {sgemm} GFLOP/s",
        ]
    else:
        peak_lines = [
            f"sgemm peak ({sgemm_what}; no FMA probe in this build, the %sgemm "
            f"denominator): {sgemm} GFLOP/s"
        ]
    r = h["reps"]
    reps = (
        f"fixed {r['fixed']}"
        if r["fixed"]
        else f"{r['min_reps']}-{r['max_reps']} to fill {r['budget_s']} s"
    )
    if r["cap_s"]:
        reps += f", no new round after {r['cap_s']} s"
    lines = [
        (
            "fastrnn benchmark: float32; GFLOP/s count GEMM work only "
            "(LSTM fwd 2*B*T*4H*(I+H), RNN fwd 2*B*T*H*(I+H), train = 3x fwd)"
        ),
        "build_info: " + ", ".join(f"{k}={v}" for k, v in b.items()),
        f"machine: {m['cpu']}, {m['cores']} cores, {m['os']}, python {m['python']}, numpy BLAS {m['numpy_blas']}",
        f"installed: {versions}",
        *peak_lines,
        (
            f"timing: median of interleaved rounds ({reps}) after {r['warmup']} warm-up, "
            f"{1e3 * h['settle_s']:g} ms pause between calls, "
            f"all peers side by side; /fast = peer ms / fastrnn ms (> 1: fastrnn faster); "
            f"wall {elapsed_s:.0f} s"
        ),
    ]
    lines.append(_load_line(h["load_average_1min"], m["cores"]))
    if h.get("round_trip"):
        lines.append(_round_trip_line(h["round_trip"]))
    lines += [f"note: {n}" for n in h["notes"]]
    return "\n".join(lines)


def _load_line(load: dict, cores: int) -> str:
    start, end = load["start"], load["end"]
    if start is None:
        return "load average: unknown"
    line = f"load average (1 min): {start:.2f} at start, {end:.2f} at end, {cores} cores"
    # At start nothing of ours runs yet, so a high figure is someone else's work.
    if start > 0.5:
        line += " -- other processes were busy: multi-thread figures are unreliable"
    return line


def round_trip_summary(rows: list[dict]) -> dict | None:
    """The probes of the multi-thread rows: their range and how many rows ran apart."""
    probed = [r for r in rows if r.get("round_trip_ns")]
    if not probed:
        return None
    trips = [t for r in probed for t in r["round_trip_ns"]]
    return {"min": min(trips), "max": max(trips), "rows": len(probed),
            "apart": sum(r.get("placement") == "apart" for r in probed),
            "shared": sum(r.get("placement") == "shared" for r in probed),
            "apart_ns": machine.APART_NS, "shared_ns": machine.SHARED_NS}


def _round_trip_line(s: dict) -> str:
    line = (f"core-to-core round trip between two fastrnn threads, probed before and after "
            f"each multi-thread row: {s['min']:.0f}-{s['max']:.0f} ns")
    if s["apart"]:
        line += (f"; {s['apart']} of {s['rows']} rows ran on cores apart (> {s['apart_ns']:.0f}"
                 f" ns, thr marked {report.PLACEMENT_MARKS['apart']})")
    if s["shared"]:
        line += (f"; {s['shared']} of {s['rows']} rows had both threads on one core at times "
                 f"(>= {s['shared_ns']:.0f} ns, thr marked {report.PLACEMENT_MARKS['shared']})")
    if s["apart"] or s["shared"]:
        line += ": their multi-thread figures are unreliable"
    return line


def run_grid(cases, threads, peers, policy, peak, settle_s) -> list[dict]:
    """Every case at every thread count; progress goes to stderr, the table to stdout."""
    rows, total, t0 = [], len(cases) * len(threads), time.perf_counter()
    for case in cases:
        for n in threads:
            # Where the threads ran, before and after: the hypervisor moves them.
            before = machine.round_trip_ns() if n > 1 else None
            results = measure_case(case, n, peers, policy, settle_s)
            row = report.summarise(case, n, results, peak["gflops"][n])
            if n > 1:
                trips = [t for t in (before, machine.round_trip_ns()) if t is not None]
                row["round_trip_ns"] = trips
                where = machine.placement(trips)
                if where:
                    row["placement"] = where
            rows.append(row)
            fast = results.get("fastrnn")
            done = f"fastrnn {fast.ms:.3f} ms" if fast and fast.ms else "fastrnn failed"
            print(
                f"[{len(rows)}/{total} {time.perf_counter() - t0:.0f} s] {case.label} thr {n}: {done}",
                file=sys.stderr,
                flush=True,
            )
    return rows


def main(argv=None) -> int:
    t0 = time.perf_counter()
    load_start = machine.load_average()
    args = parse_args(argv)
    cases, policy, sgemm_size, default_peers = settings(args)
    if args.reps:
        policy.fixed = args.reps
    if args.budget:
        policy.budget_s = args.budget
    cases = grid.select(cases, args.cases)
    if not cases:
        raise SystemExit(f"--cases {args.cases!r} matches no case")
    threads = thread_counts(args.threads)
    names = args.peers.split(",") if args.peers else default_peers
    peers, notes = make_peers(names, threads)
    if machine.threadpoolctl is None:
        notes.append("threadpoolctl not installed: numpy's BLAS thread count is not controlled")
    try:
        peak = machine.measure_peak(threads, sgemm_size, reps=5 if sgemm_size >= 1024 else 1)
        rows = run_grid(cases, threads, peers, policy, peak, args.settle_ms / 1e3)
    finally:
        for peer in peers:
            peer.close()
    load = (load_start, machine.load_average())
    h = header(peak, policy, threads, args.settle_ms / 1e3, notes, load)
    h["round_trip"] = round_trip_summary(rows)
    names = [p.name for p in peers if p.name != FastrnnPlainPeer.name]
    print(format_header(h, time.perf_counter() - t0))
    print()
    print(report.format_table(rows, names, peak_label(peak)))
    print()
    print("\n".join(report.footnotes(rows, names)))
    peephole = report.format_peephole(rows, FastrnnPlainPeer.name)
    if peephole:
        print()
        print(peephole)
    judged = targets.judge(rows, peak=peak["gflops"])
    if judged:
        # Against the FMA peak, what a tuned GEMM reaches here tells a short row whose need
        # the hardware rules out from one the code could still reach.
        ceiling = ({n: 100.0 * g / peak["gflops"][n] for n, g in peak["sgemm_gflops"].items()}
                   if peak["kind"] == "fma" else None)
        print()
        print(targets.format_targets(judged, ceiling, peak_label(peak)))
    if args.json:
        report.write_json(args.json, h, rows, judged)
    if args.plot:
        skipped = report.write_plot(args.plot, rows, names, peak_label(peak))
        if skipped:
            print(f"note: {skipped}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
