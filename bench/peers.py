"""The implementations under test, each behind the same small interface.

A ``Peer`` is one library (fastrnn, the NumPy reference, torch, ONNX Runtime, Keras).
``peer.prepare(case, data, threads)`` returns a ``Runner`` for one case and thread
count: ``timed_run()`` runs the problem once and returns seconds, ``outputs()`` returns
what the correctness check compares (in fastrnn's layout: ``h_seq`` (B, T, H), and for
training ``dx``, ``dw_ih``, ``dw_hh``).

Every peer computes the same function from the same float32 arrays: the weights of
cases.make_data, copied into the peer's own layout outside the timed region.
Training is forward + backward of ``loss = sum(h_seq * g)`` including ``dx`` and the
weight gradients, everywhere.
"""

from __future__ import annotations

import importlib.util
import time

import fastrnn
import numpy as np
from cases import GATES, Case


def _try_import(name: str):
    """(module, None), or (None, why) when an installed package fails to import."""
    try:
        return importlib.import_module(name), None
    except Exception as e:  # a broken install costs its column, not the run
        return None, f"{name} is installed but failed to import: {type(e).__name__}: {e}"


class Runner:
    """One implementation prepared for one case; subclasses define run() and outputs()."""

    checked = True  # False: computes another function by design, so no output check

    def run(self) -> None:
        raise NotImplementedError

    def timed_run(self) -> float:
        t0 = time.perf_counter()
        self.run()
        return time.perf_counter() - t0

    def outputs(self) -> dict:
        raise NotImplementedError

    def close(self) -> None:
        pass


class Peer:
    name = "?"

    def unavailable(self) -> str | None:
        """Why this peer cannot run here (one line), or None when it can."""
        return None

    def unsupported(self, case: Case) -> str | None:
        """Why this peer has no such case (e.g. no peephole LSTM), or None."""
        return None

    def set_threads(self, n: int) -> None:
        """Process-wide thread setting; peers with per-session threads ignore it."""

    def prepare(self, case: Case, data: dict, threads: int) -> Runner:
        raise NotImplementedError

    def close(self) -> None:
        pass


# --- fastrnn and the NumPy reference: the same functional signatures --------------


class FunctionalRunner(Runner):
    def __init__(self, module, case: Case, data: dict, checked: bool = True):
        self.m, self.case, self.d = module, case, data
        self.last = None
        self.checked = checked

    def _forward(self, training: bool):
        d = self.d
        if self.case.cell == "lstm":
            return self.m.lstm_forward(
                d["x"], None, None, d["w_ih"], d["w_hh"], d["b"], d["peephole"], training=training
            )
        return self.m.rnn_forward(d["x"], None, d["w_ih"], d["w_hh"], d["b"], training=training)

    def _backward(self, out):
        if self.case.cell == "lstm":
            return self.m.lstm_backward(self.d["g"], None, None, out.cache)
        return self.m.rnn_backward(self.d["g"], None, out.cache)

    def run(self) -> None:
        if self.case.mode == "infer":
            self.last = (self._forward(training=False), None)
        else:
            out = self._forward(training=True)
            self.last = (out, self._backward(out))

    def outputs(self) -> dict:
        out, grads = self.last
        result = {"h_seq": out.h_seq}
        if grads is not None:
            result.update(dx=grads.dx, dw_ih=grads.dw_ih, dw_hh=grads.dw_hh)
        return result


class FastrnnPeer(Peer):
    name = "fastrnn"

    def set_threads(self, n: int) -> None:
        fastrnn.set_num_threads(n)

    def prepare(self, case, data, threads):
        return FunctionalRunner(fastrnn, case, data)


class FastrnnPlainPeer(FastrnnPeer):
    """fastrnn's plain LSTM on a peephole case's data, timed in the same rounds as the
    peephole call: the baseline of the peephole cost (two separate rows run beside
    different peers; see bench/README.md)."""

    name = "fastrnn-plain"

    def unsupported(self, case):
        return None if case.peephole else "the plain baseline runs in peephole cases only"

    def prepare(self, case, data, threads):
        return FunctionalRunner(fastrnn, case, {**data, "peephole": None}, checked=False)


class NumpyPeer(Peer):
    """fastrnn.reference in float32; its BLAS threads are set by machine.blas_threads."""

    name = "numpy"

    def prepare(self, case, data, threads):
        return FunctionalRunner(fastrnn.reference, case, data)


# --- torch ------------------------------------------------------------------------


class TorchRunner(Runner):
    def __init__(self, torch, case: Case, data: dict):
        self.torch, self.case = torch, case
        self.module = _torch_module(torch, case, data)
        self.x = torch.from_numpy(data["x"])  # shares memory: nothing copied per call
        if case.mode == "train":
            self.x.requires_grad_(True)  # dx is part of the work, as in fastrnn
            self.g = torch.from_numpy(data["g"])
        self.h_seq = None

    def run(self) -> None:
        if self.case.mode == "infer":
            with self.torch.inference_mode():
                self.h_seq, _ = self.module(self.x)
            return
        # Fresh gradients each call (accumulating would add work fastrnn does not do).
        self.x.grad = None
        for p in self.module.parameters():
            p.grad = None
        self.h_seq, _ = self.module(self.x)
        # d(sum(h_seq * g))/d(h_seq) = g: backward(g) is that loss without the extra ops.
        self.h_seq.backward(self.g)

    def outputs(self) -> dict:
        result = {"h_seq": self.h_seq.detach().numpy()}
        if self.case.mode == "train":
            result.update(
                dx=self.x.grad.numpy(),
                dw_ih=self.module.weight_ih_l0.grad.numpy(),
                dw_hh=self.module.weight_hh_l0.grad.numpy(),
            )
        return result


def _torch_module(torch, case: Case, data: dict):
    """torch.nn.LSTM / RNN holding our weights: bias_ih = b, bias_hh = 0 (fused bias)."""
    if case.cell == "lstm":
        module = torch.nn.LSTM(case.I, case.H, batch_first=True)
    else:
        module = torch.nn.RNN(case.I, case.H, nonlinearity="tanh", batch_first=True)
    with torch.no_grad():
        module.weight_ih_l0.copy_(torch.from_numpy(data["w_ih"]))
        module.weight_hh_l0.copy_(torch.from_numpy(data["w_hh"]))
        module.bias_ih_l0.copy_(torch.from_numpy(data["b"]))
        module.bias_hh_l0.zero_()
    return module


class TorchPeer(Peer):
    name = "torch"

    def __init__(self):
        self.torch = None

    def unavailable(self):
        if importlib.util.find_spec("torch") is None:
            return "torch not installed"
        self.torch, error = _try_import("torch")
        return error

    def unsupported(self, case):
        return "torch has no peephole LSTM" if case.peephole else None

    def set_threads(self, n):
        self.torch.set_num_threads(n)

    def prepare(self, case, data, threads):
        return TorchRunner(self.torch, case, data)


# --- ONNX Runtime -----------------------------------------------------------------

# ONNX orders LSTM gate blocks i, o, f, c and peepholes i, o, f; ours are i, f, g, o
# and i, f, o. These index our blocks in ONNX order.
ONNX_LSTM_GATES = (0, 3, 1, 2)
ONNX_PEEPHOLE_ROWS = (0, 2, 1)


def _onnx_gate_order(a: np.ndarray, H: int) -> np.ndarray:
    if len(a) == H:  # RNN: one gate, nothing to reorder
        return a
    return np.concatenate([a[k * H : (k + 1) * H] for k in ONNX_LSTM_GATES])


def _onnx_model(case: Case, data: dict) -> bytes:
    """One ONNX LSTM / RNN node whose weights are initializers (so ORT pre-packs them).

    ORT's CPU kernels support only layout=0 (time-major X [T, B, I]).
    """
    from onnx import TensorProto, helper, numpy_helper

    H = case.H
    G = GATES[case.cell]
    weights = {
        "W": _onnx_gate_order(data["w_ih"], H)[None],
        "R": _onnx_gate_order(data["w_hh"], H)[None],
        # ONNX keeps two biases (Wb, Rb) like torch: Wb = b, Rb = 0.
        "B": np.concatenate([_onnx_gate_order(data["b"], H), np.zeros(G * H, np.float32)])[None],
    }
    inputs = ["X", "W", "R", "B"]
    if case.peephole:
        weights["P"] = data["peephole"][list(ONNX_PEEPHOLE_ROWS)].reshape(1, 3 * H)
        inputs += ["", "", "", "P"]  # sequence_lens, initial_h, initial_c left out
    op = "LSTM" if case.cell == "lstm" else "RNN"
    node = helper.make_node(op, inputs, ["Y"], hidden_size=H)
    graph = helper.make_graph(
        [node],
        f"fastrnn_bench_{op}",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [case.T, case.B, case.I])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [case.T, 1, case.B, H])],
        [numpy_helper.from_array(np.ascontiguousarray(v), k) for k, v in weights.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)]).SerializeToString()


class OrtRunner(Runner):
    def __init__(self, ort, case: Case, data: dict, threads: int):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        # fastrnn flushes denormals too; this is ORT's documented switch for it.
        opts.add_session_config_entry("session.set_denormal_as_zero", "1")
        # Spinning workers outlive the settle pause and steal a core from the next peer
        # of the round (bench/README.md, "What each peer runs").
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            _onnx_model(case, data), opts, providers=["CPUExecutionProvider"]
        )
        # The time-major copy of x is made once, outside the timed region.
        self.feed = {"X": np.ascontiguousarray(data["x"].transpose(1, 0, 2))}
        self.y = None

    def run(self) -> None:
        self.y = self.session.run(["Y"], self.feed)[0]

    def outputs(self) -> dict:
        return {"h_seq": self.y[:, 0].transpose(1, 0, 2)}  # [T,1,B,H] -> [B,T,H]


class OrtPeer(Peer):
    name = "onnxruntime"

    def __init__(self):
        self.ort = None

    def unavailable(self):
        missing = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
        if missing:
            return f"{' and '.join(missing)} not installed (pip install '.[bench]')"
        self.ort, error = _try_import("onnxruntime")
        return error

    def unsupported(self, case):
        return "ONNX Runtime has no training" if case.mode == "train" else None

    def prepare(self, case, data, threads):
        return OrtRunner(self.ort, case, data, threads)
