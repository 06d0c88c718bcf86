"""Data-parallel training over MPI: 2 ranks with global batch B give the weights that one
process with batch B gives, the ranks stay bit-identical, a failing rank ends the job, a
rank with other data is refused on every rank, and only rank 0 prints.

Each test launches ``mpiexec -n 2 python -m mpi4py tests/mpi/worker.py`` on this machine
(fork launcher, no network) with a timeout, so a hang fails the test instead of CI.
"""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import fastrnn

pytest.importorskip("mpi4py", reason="mpi4py not installed (pip install '.[mpi]')")

WORKER = Path(__file__).parent / "mpi" / "worker.py"
_SEARCH = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
MPIEXEC = shutil.which("mpiexec", path=_SEARCH)
if MPIEXEC is None:
    pytest.skip("no mpiexec found (pip install '.[mpi]' brings MPICH's)", allow_module_level=True)

_spec = importlib.util.spec_from_file_location("mpi_worker", WORKER)
worker = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(worker)


def _launcher_flags():
    version = subprocess.run([MPIEXEC, "--version"], capture_output=True, text=True).stdout
    if "HYDRA" in version:  # MPICH: start ranks with fork on this host, never ssh
        return ["-launcher", "fork"]
    if "Open MPI" in version or "OpenRTE" in version:
        return ["--oversubscribe", "--mca", "btl", "self,vader"]
    return []


def mpirun(*args, n=2, timeout=120):
    cmd = [MPIEXEC, "-n", str(n), *_launcher_flags(), sys.executable, "-m", "mpi4py", str(WORKER)]
    cmd += [str(a) for a in args]
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    return proc, time.monotonic() - start


@pytest.mark.parametrize(
    "dtype, n, batch, epochs",
    [
        ("float64", 160, 64, 3),  # train 128 = two full global batches of 64
        ("float64", 163, 64, 2),  # train 131: batches 64, 64, 3 (odd split 1 + 2)
        ("float64", 162, 43, 2),  # train 130: batches 43, 43, 43, 1 (rank 0 gets nothing)
        ("float32", 160, 64, 3),
    ],
)
def test_two_ranks_match_one_process(tmp_path, dtype, n, batch, epochs):
    out = tmp_path / "result.npz"
    proc, _ = mpirun("train", out, dtype, n, batch, epochs)
    assert proc.returncode == 0, proc.stderr
    got = np.load(out)
    assert bool(got["identical"]), "ranks ended with different weights"
    assert int(got["threads"]) == max(1, len(os.sched_getaffinity(0)) // 2)

    x, y = worker.make_data(n)
    model = worker.make_model(dtype, seed=0)
    hist = model.fit(x, y, epochs=epochs, batch_size=batch, verbose=0, validation_split=0.2)

    tol = dict(rtol=1e-9, atol=1e-12) if dtype == "float64" else dict(rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(got["weights"], model._flat_weights, **tol)
    assert not np.array_equal(model._flat_weights, worker.make_model(dtype, seed=0)._flat_weights)
    for key, values in hist.history.items():
        np.testing.assert_allclose(got[key], values, rtol=1e-9 if dtype == "float64" else 1e-4)


def test_a_failing_rank_ends_the_job(tmp_path):
    proc, seconds = mpirun("raise", tmp_path / "unused", timeout=120)
    assert proc.returncode != 0
    assert "rank 1 fails on purpose" in proc.stderr
    assert seconds < 60, f"the job took {seconds:.0f} s to end after a rank raised"


@pytest.mark.parametrize(
    "mode, what",
    [
        ("mismatch", ["fit settings", "x CRC-32", "x shape", "y CRC-32", "y shape"]),
        ("valmismatch", ["validation data"]),
    ],
)
def test_ranks_with_different_data_are_refused_everywhere(tmp_path, mode, what):
    out = tmp_path / "msg"
    proc, _ = mpirun(mode, out)
    assert proc.returncode == 0, proc.stderr
    for rank in (0, 1):
        msg = Path(f"{out}.{rank}").read_text()
        assert msg.endswith(f"rank(s) [1] differ from rank 0 in: {', '.join(what)}"), msg


def test_progress_and_root_only_callbacks_run_on_rank_0_only(tmp_path):
    out = tmp_path / "counts"
    proc, _ = mpirun("callbacks", out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("Epoch 1/2") == 1 and proc.stdout.count("Epoch 2/2") == 1
    counts = [json.loads(Path(f"{out}.{r}").read_text()) for r in (0, 1)]
    steps = -(-40 // 16)
    assert counts[0] == {"normal": [2 * steps, 2], "root_only": [2 * steps, 2]}
    assert counts[1] == {"normal": [2 * steps, 2], "root_only": [0, 0]}


def test_mpi_strategy_in_a_single_process_is_plain_training():
    # One rank (no mpiexec): the MPI path must give the single-process result exactly.
    dist = fastrnn.distributed.MPI(threads=1)
    assert (dist.rank, dist.size, dist.is_root) == (0, 1, True)
    x, y = worker.make_data(50)
    a, b = worker.make_model("float64", 0), worker.make_model("float64", 0)
    a.fit(x, y, epochs=2, batch_size=16, verbose=0)
    b.fit(x, y, epochs=2, batch_size=16, verbose=0, distributed=dist)
    np.testing.assert_allclose(a._flat_weights, b._flat_weights, rtol=1e-12, atol=1e-14)
    fastrnn.set_num_threads(0)


def test_bad_strategy_arguments():
    model = worker.make_model("float32", 0)
    x, y = worker.make_data(8)
    with pytest.raises(TypeError, match="`distributed` must be None or a fastrnn.distributed"):
        model.fit(x, y, distributed="mpi", verbose=0)
    with pytest.raises(ValueError, match="`threads` must be a positive integer"):
        fastrnn.distributed.MPI(threads=0)
    with pytest.raises(TypeError, match="`comm` must be an mpi4py Intracomm"):
        fastrnn.distributed.MPI(comm=object())


def test_documented_launch_trains_the_seed_model_on_two_ranks(tmp_path):
    example = Path(__file__).parents[1] / "examples" / "train_mpi.py"
    cmd = [MPIEXEC, "-n", "2", *_launcher_flags(), sys.executable, "-m", "mpi4py", str(example)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("2 rank(s)") == 1, proc.stdout  # rank 0 alone reports
    found = re.search(r"test MSE ([0-9.]+) \(predicting 0: ([0-9.]+)\)", proc.stdout)
    mse, zero = map(float, found.groups())
    assert mse < 0.5 * zero
    assert (tmp_path / "lstm_mpi.npz").exists()
