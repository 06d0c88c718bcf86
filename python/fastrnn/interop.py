"""Weight import/export with PyTorch and Keras.

``from_torch`` reads ``torch.nn.LSTM`` / ``RNN`` / ``Linear`` and a
``torch.nn.Sequential`` of them; ``from_keras`` reads Keras ``LSTM`` /
``SimpleRNN`` / ``Dense`` layers and ``Sequential`` models; ``to_torch``
writes fastrnn layers and models back as torch modules. The results give the
same outputs as the originals (tests check this when torch / keras are
installed).

torch and keras are imported only inside these functions, so ``import
fastrnn`` never needs them. All fastrnn layers take batch-first input
``(B, T, I)``, whatever the source module's ``batch_first`` was.
"""

from __future__ import annotations

from typing import List, Optional, Union

import numpy as np

from . import layers as L
from . import models as M

__all__ = ["from_torch", "from_keras", "to_torch"]


def _pick_dtype(dtype, source_dtype_name: str) -> np.dtype:
    if dtype is not None:
        return np.dtype(dtype)
    return np.dtype(np.float64) if source_dtype_name.endswith("float64") else np.dtype(np.float32)


def _input_shape(layers, input_dim: int) -> tuple:
    """(batch, time, features) when any layer is recurrent: a Dense before it then works
    on each step, as in Keras and torch (building 2-D refused such a model with advice
    about return_sequences); else (batch, features)."""
    if any(isinstance(layer, L._Recurrent) for layer in layers):
        return (None, None, input_dim)
    return (None, input_dim)


# -- torch --------------------------------------------------------------------------------


def _torch_np(t) -> np.ndarray:
    return t.detach().cpu().double().numpy()


def _torch_recurrent(module, dtype: np.dtype, last_return_sequences: bool) -> List[L.Layer]:
    """One fastrnn layer per torch layer of a (possibly multi-layer) LSTM / RNN module."""
    import torch

    kind = type(module).__name__
    if module.bidirectional:
        raise ValueError(f"from_torch: bidirectional {kind} is not supported")
    if getattr(module, "proj_size", 0):
        raise ValueError("from_torch: LSTM with proj_size > 0 is not supported")
    out: List[L.Layer] = []
    for k in range(module.num_layers):
        last = k == module.num_layers - 1
        rs = last_return_sequences or not last
        if isinstance(module, torch.nn.LSTM):
            layer = L.LSTM(module.hidden_size, return_sequences=rs, dtype=dtype)
        else:
            act = module.nonlinearity
            layer = L.SimpleRNN(
                module.hidden_size, activation=act, return_sequences=rs, dtype=dtype
            )
        w_ih = _torch_np(getattr(module, f"weight_ih_l{k}"))
        w_hh = _torch_np(getattr(module, f"weight_hh_l{k}"))
        b = np.zeros(w_ih.shape[0])
        if module.bias:
            # torch keeps two biases; the cell only ever uses their sum.
            b = _torch_np(getattr(module, f"bias_ih_l{k}")) + _torch_np(
                getattr(module, f"bias_hh_l{k}")
            )
        layer.set_weights([w_ih, w_hh, b])
        out.append(layer)
    return out


def _torch_linear(module, dtype: np.dtype, activation: Optional[str] = None) -> L.Dense:
    layer = L.Dense(module.out_features, activation=activation, dtype=dtype)
    b = _torch_np(module.bias) if module.bias is not None else np.zeros(module.out_features)
    layer.set_weights([_torch_np(module.weight), b])
    return layer


def _torch_activation(module) -> Optional[str]:
    import torch

    if isinstance(module, torch.nn.ReLU):
        return "relu"
    if isinstance(module, torch.nn.Tanh):
        return "tanh"
    if isinstance(module, torch.nn.Sigmoid):
        return "sigmoid"
    if isinstance(module, torch.nn.Softmax) and module.dim in (-1, None):
        return "softmax"
    if isinstance(module, torch.nn.Identity):
        return "linear"
    return None


def from_torch(module, *, dtype=None) -> Union[L.Layer, M.Sequential]:
    """Converts a torch module to a fastrnn layer or model with the same weights.

    - ``nn.LSTM`` / ``nn.RNN`` with one layer: a ``layers.LSTM`` / ``layers.SimpleRNN``
      with ``return_sequences=True`` (torch's ``output``); with several layers: a
      ``models.Sequential`` of them.
    - ``nn.Linear``: a ``layers.Dense``.
    - ``nn.Sequential`` of those (plus ReLU/Tanh/Sigmoid/Softmax right after a
      Linear, folded into its Dense): a ``models.Sequential``. Recurrent modules
      followed by a Linear are read as the seed's model: the head applies to the
      last step.

    torch's two biases are summed into the one fused bias. Dropout between
    stacked layers is a training-time feature and is ignored.

    Args:
        module: The torch module.
        dtype: fastrnn dtype; default float64 for float64 modules, else float32.

    Returns:
        A built fastrnn layer or model. Inputs are batch-first ``(B, T, I)``.

    Raises:
        ValueError: For unsupported modules or options (bidirectional, proj_size).

    Example:
        >>> lstm = from_torch(torch.nn.LSTM(3, 8, batch_first=True))  # doctest: +SKIP
    """
    import torch

    params = list(module.parameters())
    dt = _pick_dtype(dtype, str(params[0].dtype) if params else "float32")
    if isinstance(module, (torch.nn.LSTM, torch.nn.RNN)):
        rec = _torch_recurrent(module, dt, last_return_sequences=True)
        if len(rec) == 1:
            return rec[0]
        model = M.Sequential(rec, dtype=dt)
        model.build((None, None, module.input_size))
        return model
    if isinstance(module, torch.nn.Linear):
        return _torch_linear(module, dt)
    if isinstance(module, torch.nn.Sequential):
        children = list(module)
        layers: List[L.Layer] = []
        input_dim = None
        i = 0
        while i < len(children):
            child = children[i]
            if isinstance(child, (torch.nn.LSTM, torch.nn.RNN)):
                nxt = children[i + 1 :]
                more_recurrent = any(isinstance(c, (torch.nn.LSTM, torch.nn.RNN)) for c in nxt)
                head_follows = any(isinstance(c, torch.nn.Linear) for c in nxt)
                input_dim = input_dim or child.input_size
                layers += _torch_recurrent(
                    child, dt, last_return_sequences=more_recurrent or not head_follows
                )
            elif isinstance(child, torch.nn.Linear):
                act = _torch_activation(children[i + 1]) if i + 1 < len(children) else None
                input_dim = input_dim or child.in_features
                layers.append(_torch_linear(child, dt, act))
                if act is not None:
                    i += 1
            elif isinstance(child, torch.nn.Dropout):
                pass
            else:
                raise ValueError(
                    f"from_torch: unsupported module {type(child).__name__} in Sequential"
                )
            i += 1
        if not layers:
            raise ValueError("from_torch: the Sequential holds no supported module")
        model = M.Sequential(layers, dtype=dt)
        model.build(_input_shape(layers, input_dim))
        return model
    raise ValueError(
        f"from_torch: unsupported module {type(module).__name__}; expected nn.LSTM, nn.RNN, nn.Linear or nn.Sequential"
    )


def to_torch(obj):
    """Converts a fastrnn layer or Sequential model to a torch module with the same outputs.

    Layers map to ``nn.LSTM`` / ``nn.RNN`` (``batch_first=True``, the fused bias in
    ``bias_ih``, ``bias_hh = 0``) and ``nn.Linear`` (plus its activation in an
    ``nn.Sequential``). A model maps to a small ``nn.Module`` whose ``forward(x)``
    returns what ``model.predict(x)`` returns. Peephole LSTMs have no torch
    equivalent.

    Args:
        obj: A built ``fastrnn.layers.Layer`` or ``fastrnn.models.Sequential``.

    Returns:
        A torch module in the fastrnn dtype (float32 or float64).

    Raises:
        ValueError: For unbuilt layers, peepholes, or unsupported layers.
    """
    import torch

    def tensor(a):
        return torch.from_numpy(np.array(a))

    def convert(layer: L.Layer):
        if not layer.built:
            raise ValueError(f"to_torch: {layer.name} is not built")
        torch_dtype = torch.float64 if layer.dtype == np.float64 else torch.float32
        if isinstance(layer, (L.LSTM, L.SimpleRNN)):
            if isinstance(layer, L.LSTM):
                if layer.peephole:
                    raise ValueError(
                        f"to_torch: {layer.name} has peepholes, which torch.nn.LSTM lacks"
                    )
                mod = torch.nn.LSTM(layer.input_dim, layer.units, batch_first=True)
            else:
                mod = torch.nn.RNN(
                    layer.input_dim, layer.units, nonlinearity=layer.activation, batch_first=True
                )
            mod = mod.to(torch_dtype)
            w = layer.weights
            with torch.no_grad():
                mod.weight_ih_l0.copy_(tensor(w["w_ih"]))
                mod.weight_hh_l0.copy_(tensor(w["w_hh"]))
                mod.bias_ih_l0.copy_(tensor(w["b"]))
                mod.bias_hh_l0.zero_()
            return mod
        if isinstance(layer, L.Dense):
            mod = torch.nn.Linear(layer.input_dim, layer.units).to(torch_dtype)
            with torch.no_grad():
                mod.weight.copy_(tensor(layer.weights["w"]))
                mod.bias.copy_(tensor(layer.weights["b"]))
            acts = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid}
            if layer.activation == "linear":
                return mod
            if layer.activation == "softmax":
                return torch.nn.Sequential(mod, torch.nn.Softmax(dim=-1))
            return torch.nn.Sequential(mod, acts[layer.activation]())
        raise ValueError(f"to_torch: unsupported layer {type(layer).__name__}")

    if isinstance(obj, L.Layer):
        return convert(obj)
    if not isinstance(obj, M.Sequential):
        raise ValueError(f"to_torch: expected a fastrnn layer or model, got {type(obj).__name__}")
    if not obj.built:
        raise ValueError("to_torch: the model is not built")

    class FastrnnSequential(torch.nn.Module):
        """Runs converted fastrnn layers in order (recurrent ones keep their return_sequences)."""

        def __init__(self, modules, last_step_only):
            super().__init__()
            self.stack = torch.nn.ModuleList(modules)
            self.last_step_only = last_step_only

        def forward(self, x):
            for mod, last_only in zip(self.stack, self.last_step_only):
                if isinstance(mod, torch.nn.RNNBase):
                    x = mod(x)[0]
                    if last_only:
                        x = x[:, -1]
                else:
                    x = mod(x)
            return x

    flags = [isinstance(l, L._Recurrent) and not l.return_sequences for l in obj.layers]
    return FastrnnSequential([convert(l) for l in obj.layers], flags)


# -- keras --------------------------------------------------------------------------------


def _keras_layer(layer, dtype) -> Optional[L.Layer]:
    kind = type(layer).__name__
    if kind == "InputLayer":
        return None
    cfg = layer.get_config()
    raw = layer.get_weights()
    if kind == "Dropout":
        return None
    if kind not in ("LSTM", "SimpleRNN", "Dense"):
        # Before the weights check: a built Activation or Flatten has no weights either,
        # and was reported as "not built".
        raise ValueError(
            f"from_keras: unsupported layer {kind}; expected LSTM, SimpleRNN or Dense"
        )
    if not raw:
        raise ValueError(f"from_keras: {layer.name} is not built (it has no weights yet)")
    dt = _pick_dtype(dtype, str(np.asarray(raw[0]).dtype))
    weights = [np.asarray(w, dtype=np.float64) for w in raw]
    if kind in ("LSTM", "SimpleRNN"):
        for flag in ("go_backwards", "stateful"):
            if cfg.get(flag):
                raise ValueError(f"from_keras: {kind} with {flag}=True is not supported")
        if kind == "LSTM" and (
            cfg.get("activation") != "tanh" or cfg.get("recurrent_activation") != "sigmoid"
        ):
            raise ValueError(
                "from_keras: only LSTM(activation='tanh', recurrent_activation='sigmoid') is supported"
            )
        kernel, recurrent = weights[0], weights[1]
        bias = weights[2] if cfg.get("use_bias", True) else np.zeros(kernel.shape[1])
        common = dict(
            return_sequences=cfg.get("return_sequences", False),
            return_state=cfg.get("return_state", False),
            dtype=dt,
            name=layer.name,
        )
        if kind == "LSTM":
            out = L.LSTM(cfg["units"], **common)
        else:
            if cfg.get("activation") not in ("tanh", "relu"):
                raise ValueError(
                    f"from_keras: SimpleRNN activation {cfg.get('activation')!r} is not supported"
                )
            out = L.SimpleRNN(cfg["units"], activation=cfg["activation"], **common)
        # Keras stores (in, G*H) kernels; the functional layout is (G*H, in). Gate order is i, f, g(c), o in both.
        out.set_weights([kernel.T, recurrent.T, bias])
        return out
    if kind == "Dense":
        act = cfg.get("activation", "linear")
        kernel = weights[0]
        bias = weights[1] if cfg.get("use_bias", True) else np.zeros(kernel.shape[1])
        out = L.Dense(cfg["units"], activation=act, dtype=dt, name=layer.name)
        out.set_weights([kernel.T, bias])
        return out
    raise ValueError(f"from_keras: unsupported layer {kind}; expected LSTM, SimpleRNN or Dense")


def from_keras(model_or_layer, *, dtype=None) -> Union[L.Layer, M.Sequential]:
    """Converts a built Keras LSTM / SimpleRNN / Dense layer or Sequential model.

    Keras kernels ``(in, G*H)`` are transposed to the functional layout
    ``(G*H, in)``; the gate order (i, f, c, o) is the same. ``return_sequences``
    and ``return_state`` carry over; a ``Sequential`` becomes a
    ``fastrnn.models.Sequential`` (Dropout layers are skipped: they are identity
    at inference).

    Args:
        model_or_layer: A built Keras layer or ``keras.Sequential``.
        dtype: fastrnn dtype; default follows the Keras weights (float32 usually).

    Returns:
        A built fastrnn layer or model.

    Raises:
        ValueError: For unsupported layers/options or unbuilt Keras objects.

    Example:
        >>> model = from_keras(keras_model)  # doctest: +SKIP
    """
    if hasattr(model_or_layer, "layers") and type(model_or_layer).__name__ in (
        "Sequential",
        "Functional",
        "Model",
    ):
        if type(model_or_layer).__name__ != "Sequential":
            raise ValueError(
                "from_keras: only Sequential models (a linear stack of layers) are supported"
            )
        converted = [
            c for c in (_keras_layer(l, dtype) for l in model_or_layer.layers) if c is not None
        ]
        if not converted:
            raise ValueError("from_keras: the model holds no supported layer")
        model = M.Sequential(converted, dtype=converted[0].dtype, name=model_or_layer.name)
        model.build(_input_shape(converted, converted[0].input_dim))
        return model
    out = _keras_layer(model_or_layer, dtype)
    if out is None:
        raise ValueError(
            f"from_keras: {type(model_or_layer).__name__} carries no weights to convert"
        )
    return out
