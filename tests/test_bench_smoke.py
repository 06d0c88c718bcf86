"""CI smoke run of bench/run.py: it starts, times a tiny grid and prints its table.

Benchmarks are not tests (DESIGN.md): nothing here asserts a speed. What is checked is
that the suite runs end to end, that fastrnn and the NumPy reference agree inside it,
and that a peer which cannot be imported costs its column, not the run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "run.py"


def run_bench(tmp_path, *args, env=None):
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--smoke", *args],
        check=False,  # the assertion below prints the output on failure
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 0, f"bench failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_smoke_prints_table_and_json(tmp_path):
    record = tmp_path / "smoke.json"
    out = run_bench(tmp_path, "--threads", "1,2", "--json", str(record))

    assert "build_info:" in out and "machine:" in out
    assert "fastrnn" in out and "numpy" in out
    for label in ("lstm infer B2 T5 I8 H8", "lstm train B2 T5 I8 H8 peep", "rnn train B2 T5 I8 H8"):
        assert label in out
    assert "MISMATCH" not in out

    rows = json.loads(record.read_text())["rows"]
    assert len(rows) == 6  # 3 cases x 2 thread counts
    for row in rows:
        for name in ("fastrnn", "numpy"):
            assert row["results"][name]["status"] == "ok", row["results"][name]
        assert row["results"]["numpy"]["check_ok"]


def test_broken_peer_is_skipped_with_a_note(tmp_path):
    # A "torch" that is found but fails to import, shadowing any real one.
    fake = tmp_path / "fake" / "torch"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('simulated broken install')\n")
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(fake.parent), os.environ.get("PYTHONPATH", "")])
    )

    out = run_bench(tmp_path, "--threads", "1", "--peers", "fastrnn,torch", env=env)

    assert "torch column skipped" in out
    assert "lstm infer B2 T5 I8 H8" in out
