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

import numpy as np

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
        # The plain-LSTM baseline is timed beside every peephole row, and only there.
        plain = row["results"]["fastrnn-plain"]["status"]
        assert plain == ("ok" if row["case"]["peephole"] else "skipped"), row["case"]

    # It gets its own section, not a column of the table.
    table, _, section = out.partition("peephole cost")
    assert "fastrnn-plain" not in table
    for threads in (1, 2):
        assert f"lstm train B2 T5 I8 H8 peep thr {threads}:" in section


def test_plain_baseline_drops_only_the_peepholes():
    # The likely bug: a baseline that still computes the peephole LSTM (its ratio would
    # always read 1.0x) or another function altogether.
    sys.path.insert(0, str(BENCH.parent))
    try:
        import cases
        import peers
    finally:
        sys.path.remove(str(BENCH.parent))
    import fastrnn

    case = cases.Case("lstm", "train", 2, 5, 8, 8, peephole=True)
    data = cases.make_data(case)
    with_p = peers.FastrnnPeer().prepare(case, data, 1)
    without = peers.FastrnnPlainPeer().prepare(case, data, 1)
    with_p.run()
    without.run()

    expected = fastrnn.lstm_forward(data["x"], None, None, data["w_ih"], data["w_hh"], data["b"])
    assert np.array_equal(without.outputs()["h_seq"], expected.h_seq)
    assert not np.allclose(with_p.outputs()["h_seq"], expected.h_seq)
    assert set(without.outputs()) == {"h_seq", "dx", "dw_ih", "dw_hh"}  # training, too
    assert not without.checked and with_p.checked
    assert data["peephole"] is not None  # the case's data is left as it was


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
