"""fastrnn: fast CPU recurrent networks with a zero-copy NumPy API.

The functional API (``rnn_forward``, ``rnn_backward``, ``lstm_forward``,
``lstm_backward``) runs on the C++ core; ``fastrnn.reference`` is the plain NumPy oracle
with the same signatures. ``fastrnn.models`` holds Keras-style models built on them::

    model = fastrnn.models.LSTM(input_dim=10, hidden_dim=50, output_dim=1)
    model.compile(optimizer="adam", loss="mse")
    model.fit(x_train, y_train, epochs=100, batch_size=32)
    preds = model.predict(x_test)
"""

from __future__ import annotations

import numbers
from importlib.metadata import PackageNotFoundError, version

from . import _core, reference
from ._results import LstmGrads, LstmOutput, RnnGrads, RnnOutput
from .functional import lstm_backward, lstm_forward, rnn_backward, rnn_forward

# The model layer composes the functional API above (interop imports torch/keras lazily).
from . import callbacks, distributed, interop, layers, losses, metrics, models, optimizers  # noqa: E402

try:
    __version__ = version("fastrnn")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = [
    "__version__",
    "build_info",
    "get_num_threads",
    "set_num_threads",
    "rnn_forward",
    "rnn_backward",
    "lstm_forward",
    "lstm_backward",
    "RnnOutput",
    "RnnGrads",
    "LstmOutput",
    "LstmGrads",
    "reference",
    "callbacks",
    "distributed",
    "interop",
    "layers",
    "losses",
    "metrics",
    "models",
    "optimizers",
]


_MAX_THREADS = 1024  # as _core.fma_peak_gflops


def set_num_threads(n: int) -> None:
    """Threads the kernels may use; 0 restores the OpenMP default (OMP_NUM_THREADS).

    In a child process made by ``os.fork()`` the kernels always use one thread: GNU
    OpenMP cannot run a parallel region there once the parent has used its threads. Use
    the ``spawn`` or ``forkserver`` start method for multi-threaded children.

    Raises:
        ValueError: n is not an integer (numpy's integers count) in [0, 1024].
    """
    # More threads than any machine this runs on has cores: libgomp exits the process
    # (no exception) when it cannot create them, e.g. under an address-space limit.
    if not isinstance(n, numbers.Integral) or isinstance(n, bool) or not 0 <= n <= _MAX_THREADS:
        raise ValueError(f"`n` must be an integer in [0, {_MAX_THREADS}], got {n!r}")
    _core.set_num_threads(int(n))


def get_num_threads() -> int:
    """Threads the next kernel call will use at most."""
    return _core.get_num_threads()


def build_info() -> dict:
    """Version, compiler, build type, ISA in use and supported, OpenMP and threads."""
    return {
        "version": __version__,
        "compiler": _core.compiler,
        "build_type": _core.build_type,
        "isa": _core.active_isa(),
        "supported_isas": list(_core.supported_isas()),
        "openmp": bool(_core.openmp),
        "num_threads": _core.get_num_threads(),
    }
