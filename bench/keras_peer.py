"""The parent side of the Keras peer: one keras_worker.py process per thread count."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from cases import SEED, Case
from peers import Peer, Runner

WORKER = Path(__file__).with_name("keras_worker.py")


class KerasWorker:
    """A running keras_worker.py with a fixed TensorFlow thread count."""

    def __init__(self, threads: int, log_dir: str):
        env = dict(os.environ)
        env.update(
            KERAS_BACKEND="tensorflow",
            TF_CPP_MIN_LOG_LEVEL="2",  # TF's start-up chatter would bury real errors
            CUDA_VISIBLE_DEVICES="-1",
            OMP_NUM_THREADS=str(threads),
        )
        self.log_path = os.path.join(log_dir, f"keras_worker_{threads}.log")
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), str(threads)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env=env,
        )
        self.info = None

    def wait_ready(self) -> dict:
        if self.info is None:
            self.info = self._read()
        return self.info

    def request(self, **msg) -> dict:
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        reply = self._read()
        if "error" in reply:
            raise RuntimeError(f"keras worker: {reply['error']}")
        return reply

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            tail = Path(self.log_path).read_text().strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"keras worker exited: {tail[0]}")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
        self._log.close()


class KerasRunner(Runner):
    def __init__(self, worker: KerasWorker, case: Case, outputs_path: str):
        worker.request(cmd="setup", case=case.to_dict(), seed=SEED, outputs=outputs_path)
        self.worker, self.outputs_path = worker, outputs_path

    def timed_run(self) -> float:
        return self.worker.request(cmd="run")["t"]

    def outputs(self) -> dict:
        with np.load(self.outputs_path) as f:
            return {k: f[k] for k in f.files}


class KerasPeer(Peer):
    name = "keras"

    def __init__(self):
        self.workers: dict[int, KerasWorker] = {}
        self.tmp = tempfile.TemporaryDirectory(prefix="fastrnn_bench_keras_")

    def unavailable(self):
        if importlib.util.find_spec("tensorflow") is None:
            return "tensorflow not installed (pip install tensorflow-cpu)"
        if importlib.util.find_spec("keras") is None:
            return "keras not installed"
        return None

    def unsupported(self, case):
        return "Keras has no peephole LSTM" if case.peephole else None

    def start(self, thread_counts: list[int]) -> None:
        """Starts every worker at once, so their slow TensorFlow imports overlap."""
        for n in thread_counts:
            if n not in self.workers:
                self.workers[n] = KerasWorker(n, self.tmp.name)
        for worker in self.workers.values():
            worker.wait_ready()

    def prepare(self, case, data, threads):
        self.start([threads])
        path = os.path.join(self.tmp.name, f"out_{threads}.npz")
        return KerasRunner(self.workers[threads], case, path)

    def close(self):
        for worker in self.workers.values():
            worker.close()
        self.workers.clear()
        self.tmp.cleanup()
