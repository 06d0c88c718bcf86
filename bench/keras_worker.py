"""The Keras (TensorFlow backend) peer, run in a child process, one per thread count.

Why a process: TensorFlow fixes its thread pools the first time it runs an op, so one
process cannot time 1 thread and then 2. The parent (keras_peer.py) starts one worker
per thread count and drives it over stdin/stdout, one JSON object per line:

    -> {"cmd": "setup", "case": {...}, "seed": 1, "outputs": "/tmp/x.npz"}   <- {"ok": true}
    -> {"cmd": "run"}                                                       <- {"t": 0.0123}
    -> {"cmd": "quit"}

"run" is timed here, around the call only, so the pipe's latency is not counted, and
the parent can still interleave keras with the in-process peers rep by rep. The worker
rebuilds the case's data from the seed (cases.make_data), so no arrays cross the pipe;
after setup it writes its outputs to the .npz for the parent's correctness check.

The model is what Keras's predict/fit run: the layer called inside a tf.function.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
from cases import Case, make_data


def _protocol_stream():
    """A private copy of stdout for the protocol; fd 1 then points at stderr.

    TensorFlow and its C++ libraries may print to fd 1 at any time, which would corrupt
    the protocol; after this, anything they print lands on stderr.
    """
    fd = os.dup(1)
    os.dup2(2, 1)
    return os.fdopen(fd, "w", buffering=1)


class KerasJob:
    """One case: the Keras layer with our weights and its compiled call."""

    def __init__(self, tf, keras, case: Case, seed: int):
        d = make_data(case, seed)
        self.case = case
        cls = keras.layers.LSTM if case.cell == "lstm" else keras.layers.SimpleRNN
        self.layer = cls(case.H, return_sequences=True)
        self.layer.build((case.B, case.T, case.I))
        # Keras keeps kernel (I, G*H) and recurrent_kernel (H, G*H), gates i, f, c, o
        # like ours, and one fused bias.
        self.layer.set_weights([d["w_ih"].T, d["w_hh"].T, d["b"]])
        self.x = tf.constant(d["x"])
        if case.mode == "infer":
            self.fn = tf.function(lambda x: self.layer(x, training=False))
            self.args = (self.x,)
        else:
            self.fn = tf.function(self._train_step(tf))
            self.args = (self.x, tf.constant(d["g"]))
        self.result = self.fn(*self.args)  # traces the graph: not part of any timing

    def _train_step(self, tf):
        kernel, recurrent, bias = self.layer.trainable_variables

        def step(x, g):
            with tf.GradientTape() as tape:
                tape.watch(x)  # dx is part of the work, as in fastrnn
                h_seq = self.layer(x, training=True)
                loss = tf.reduce_sum(h_seq * g)
            return h_seq, tape.gradient(loss, [x, kernel, recurrent, bias])

        return step

    def timed_run(self) -> float:
        t0 = time.perf_counter()
        self.result = self.fn(*self.args)  # eager TF on CPU returns when the work is done
        return time.perf_counter() - t0

    def save_outputs(self, path: str) -> None:
        if self.case.mode == "infer":
            np.savez(path, h_seq=self.result.numpy())
            return
        h_seq, (dx, d_kernel, d_recurrent, _) = self.result
        np.savez(
            path,
            h_seq=h_seq.numpy(),
            dx=dx.numpy(),
            dw_ih=d_kernel.numpy().T,
            dw_hh=d_recurrent.numpy().T,
        )


def _handle(msg: dict, state: dict, tf, keras) -> dict:
    if msg["cmd"] == "setup":
        state["job"] = KerasJob(tf, keras, Case(**msg["case"]), msg["seed"])
        state["job"].save_outputs(msg["outputs"])
        return {"ok": True}
    if msg["cmd"] == "run":
        return {"t": state["job"].timed_run()}
    raise ValueError(f"unknown command {msg['cmd']!r}")


def main() -> None:
    threads = int(sys.argv[1])
    out = _protocol_stream()
    import tensorflow as tf

    # Must happen before TF runs its first op; this is why each thread count has a process.
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    import keras

    out.write(
        json.dumps({"ready": True, "tensorflow": tf.__version__, "keras": keras.__version__}) + "\n"
    )
    state: dict = {}
    for line in sys.stdin:
        msg = json.loads(line)
        if msg["cmd"] == "quit":
            break
        try:
            reply = _handle(msg, state, tf, keras)
        except Exception as e:  # reported to the parent, which skips this case for keras
            reply = {"error": f"{type(e).__name__}: {e}"}
        out.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    main()
