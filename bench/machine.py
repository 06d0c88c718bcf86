"""What the numbers are relative to: the machine, its measured peak, its thread knobs."""

from __future__ import annotations

import contextlib
import os
import platform
import time
from importlib import metadata

import fastrnn
import numpy as np

try:  # optional: without it numpy's BLAS keeps its own thread count (noted in the output)
    import threadpoolctl
except ImportError:  # pragma: no cover - depends on the environment
    threadpoolctl = None


def all_threads() -> int:
    """Cores this process may run on (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def load_average() -> float | None:
    """1-minute load average: other processes' work makes multi-thread figures unreliable."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # pragma: no cover - not Unix
        return None


# Where two threads ran, from the core-to-core round trip between them. Measured here:
# 50-120 ns for cores sharing an L3, 320-370 ns when the hypervisor had put this VM's
# vCPUs on cores apart (another CCD or socket), which it did for minutes at a time, and
# ~17 us when both threads took turns on one core (`taskset -c 0`, or another process's
# threads on the other core). Apart, 2-thread LSTM training at B=16 T=100 H=256 took
# 31.3 ms instead of 26.2 (forward 10.1 and backward 21.2, against 8.2 and 18.0) and
# inference 8.8 instead of 8.2: each line that one thread writes and the other reads
# costs that much more.
APART_NS = 200.0
SHARED_NS = 2000.0


def round_trip_ns() -> float | None:
    """Median ns of a cache-line round trip between two of fastrnn's threads, or None
    without a second OpenMP thread (or in a core built without the probe)."""
    probe = getattr(fastrnn._core, "round_trip_ns", None)
    return probe() if probe is not None else None


def placement(trips: list[float]) -> str | None:
    """"shared" if any probe says the threads took turns on one core, else "apart" if any
    says their cores share no cache, else None (cores that share one)."""
    if any(t >= SHARED_NS for t in trips):
        return "shared"
    if any(t > APART_NS for t in trips):
        return "apart"
    return None


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:  # pragma: no cover - not Linux
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _blas() -> str:
    if threadpoolctl is None:
        return "unknown (threadpoolctl not installed)"
    libs = [
        f"{i.get('internal_api')} {i.get('version')}"
        for i in threadpoolctl.threadpool_info()
        if i.get("user_api") == "blas"
    ]
    return ", ".join(sorted(set(libs))) or "none found"


def machine_info() -> dict:
    """CPU, cores and the versions of everything measured (read without importing peers)."""
    versions = {
        name: _version(name)
        for name in (
            "numpy",
            "torch",
            "onnxruntime",
            "onnx",
            "tensorflow-cpu",
            "tensorflow",
            "keras",
        )
    }
    return {
        "cpu": cpu_model(),
        "cores": all_threads(),
        "machine": platform.machine(),
        "os": platform.platform(terse=True),
        "python": platform.python_version(),
        "numpy_blas": _blas(),
        "versions": {k: v for k, v in versions.items() if v is not None},
    }


@contextlib.contextmanager
def blas_threads(n: int):
    """Limits numpy's BLAS to n threads for the block (a no-op without threadpoolctl)."""
    if threadpoolctl is None:
        yield
        return
    with threadpoolctl.threadpool_limits(limits=n, user_api="blas"):
        yield


def _sgemm_gflops(threads: int, size: int, reps: int) -> float:
    a = np.ones((size, size), np.float32)
    b = np.ones((size, size), np.float32)
    c = np.empty((size, size), np.float32)
    with blas_threads(threads):
        np.matmul(a, b, out=c)  # warm-up: first touch, BLAS thread start-up
        best = float("inf")
        for _ in range(reps):
            t0 = time.perf_counter()
            np.matmul(a, b, out=c)
            best = min(best, time.perf_counter() - t0)
    return 2.0 * size**3 / best / 1e9


def measure_peak(threads: list[int], sgemm_size: int = 2048, reps: int = 5) -> dict:
    """The denominator of "% peak", per thread count, measured here and now.

    The FMA peak from the core (``fastrnn._core.fma_peak_gflops``, the hardware limit
    for the active ISA) is preferred. Builds without it fall back to numpy's sgemm on a
    ``sgemm_size``^3 product (best of ``reps``): what a tuned GEMM reaches, a little
    below the FMA limit, so the column is labelled "%sgemm" then. The sgemm figure is
    always recorded, because PERFORMANCE.md quotes its anchors against it.
    """
    sgemm = {n: _sgemm_gflops(n, sgemm_size, reps) for n in threads}
    peak = {
        "kind": "sgemm",
        "gflops": sgemm,
        "sgemm_gflops": sgemm,
        "size": sgemm_size,
        "reps": reps,
    }
    core = fastrnn._core
    if hasattr(core, "fma_peak_gflops"):
        peak.update(kind="fma", gflops={n: float(core.fma_peak_gflops(n)) for n in threads})
    return peak
