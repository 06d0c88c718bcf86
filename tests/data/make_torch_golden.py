"""Regenerates torch_golden.npz: inputs, weights and torch's outputs and gradients for a
small LSTM and Elman RNN (float64), so parity with torch is tested where torch is absent.

    pip install torch==2.13.0 && python tests/data/make_torch_golden.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def run(module, x, h0, c0, dh_seq, dh_n, dc_n):
    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0[None], requires_grad=True)
    state = h0t
    if c0 is not None:
        c0t = torch.tensor(c0[None], requires_grad=True)
        state = (h0t, c0t)
    y, st = module(xt, state)
    h_n = st[0] if c0 is not None else st
    loss = (y * torch.tensor(dh_seq)).sum() + (h_n[0] * torch.tensor(dh_n)).sum()
    out = {"h_seq": y.detach().numpy(), "h_n": h_n[0].detach().numpy()}
    if c0 is not None:
        loss = loss + (st[1][0] * torch.tensor(dc_n)).sum()
        out["c_n"] = st[1][0].detach().numpy()
    loss.backward()
    out.update(
        dx=xt.grad.numpy(),
        dh0=h0t.grad.numpy()[0],
        dw_ih=module.weight_ih_l0.grad.numpy(),
        dw_hh=module.weight_hh_l0.grad.numpy(),
        db=module.bias_ih_l0.grad.numpy(),  # = d/d(bias_hh): the fused bias's gradient
    )
    if c0 is not None:
        out["dc0"] = c0t.grad.numpy()[0]
    out.update(
        w_ih=module.weight_ih_l0.detach().numpy(),
        w_hh=module.weight_hh_l0.detach().numpy(),
        b=(module.bias_ih_l0 + module.bias_hh_l0).detach().numpy(),
    )
    return out


def main():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    B, T, I, H = 3, 7, 5, 8
    data = {}
    x = rng.standard_normal((B, T, I))
    h0, c0 = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    dh_seq, dh_n, dc_n = rng.standard_normal((B, T, H)), rng.standard_normal((B, H)), rng.standard_normal((B, H))
    data.update(x=x, h0=h0, c0=c0, dh_seq=dh_seq, dh_n=dh_n, dc_n=dc_n)
    lstm = torch.nn.LSTM(I, H, batch_first=True).double()
    data.update({f"lstm_{k}": v for k, v in run(lstm, x, h0, c0, dh_seq, dh_n, dc_n).items()})
    for act in ("tanh", "relu"):
        rnn = torch.nn.RNN(I, H, nonlinearity=act, batch_first=True).double()
        data.update({f"rnn_{act}_{k}": v for k, v in run(rnn, x, h0, None, dh_seq, dh_n, None).items()})
    data["torch_version"] = np.array(torch.__version__)
    np.savez_compressed(Path(__file__).with_name("torch_golden.npz"), **data)


if __name__ == "__main__":
    main()
