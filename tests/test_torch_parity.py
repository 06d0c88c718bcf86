"""Parity with torch.nn.LSTM / torch.nn.RNN (biases summed): live when torch is
installed, and always against torch results stored in tests/data/torch_golden.npz."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import fastrnn

GOLDEN = Path(__file__).parent / "data" / "torch_golden.npz"


def assert_same(actual, expected):
    np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-12)


def test_lstm_matches_stored_torch_results():
    g = np.load(GOLDEN, allow_pickle=False)
    out = fastrnn.lstm_forward(g["x"], g["h0"], g["c0"], g["lstm_w_ih"], g["lstm_w_hh"],
                               g["lstm_b"], training=True)
    grads = fastrnn.lstm_backward(g["dh_seq"], g["dh_n"], g["dc_n"], out.cache)
    for name in ("h_seq", "h_n", "c_n"):
        assert_same(getattr(out, name), g[f"lstm_{name}"])
    for name in ("dx", "dh0", "dc0", "dw_ih", "dw_hh", "db"):
        assert_same(getattr(grads, name), g[f"lstm_{name}"])


@pytest.mark.parametrize("act", ["tanh", "relu"])
def test_rnn_matches_stored_torch_results(act):
    g = np.load(GOLDEN, allow_pickle=False)
    p = f"rnn_{act}_"
    out = fastrnn.rnn_forward(g["x"], g["h0"], g[p + "w_ih"], g[p + "w_hh"], g[p + "b"],
                              nonlinearity=act, training=True)
    grads = fastrnn.rnn_backward(g["dh_seq"], g["dh_n"], out.cache)
    for name in ("h_seq", "h_n"):
        assert_same(getattr(out, name), g[p + name])
    for name in ("dx", "dh0", "dw_ih", "dw_hh", "db"):
        assert_same(getattr(grads, name), g[p + name])


# ---- live torch (skipped without it) ----------------------------------------------------


@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason="torch not installed (pip install torch==2.13.0)")


def torch_grads(torch, module, x, h0, c0, dh_seq, dh_n, dc_n):
    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0[None], requires_grad=True)
    state = h0t
    c0t = None
    if c0 is not None:
        c0t = torch.tensor(c0[None], requires_grad=True)
        state = (h0t, c0t)
    y, st = module(xt, state)
    h_n = st[0] if c0 is not None else st
    loss = (y * torch.tensor(dh_seq)).sum() + (h_n[0] * torch.tensor(dh_n)).sum()
    if c0 is not None:
        loss = loss + (st[1][0] * torch.tensor(dc_n)).sum()
    loss.backward()
    return y.detach().numpy(), xt.grad.numpy(), h0t.grad.numpy()[0], module


@pytest.mark.parametrize("batch_first", [True, False])
def test_lstm_matches_torch(torch, rng, batch_first):
    B, T, I, H = 3, 7, 5, 8
    m = torch.nn.LSTM(I, H, batch_first=batch_first).double()
    x = rng.standard_normal((B, T, I) if batch_first else (T, B, I))
    h0, c0 = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    dh_seq = rng.standard_normal((B, T, H) if batch_first else (T, B, H))
    dh_n, dc_n = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    y, dx, dh0, m = torch_grads(torch, m, x, h0, c0, dh_seq, dh_n, dc_n)

    w_ih = m.weight_ih_l0.detach().numpy()
    w_hh = m.weight_hh_l0.detach().numpy()
    b = (m.bias_ih_l0 + m.bias_hh_l0).detach().numpy()
    out = fastrnn.lstm_forward(x, h0, c0, w_ih, w_hh, b, batch_first=batch_first, training=True)
    g = fastrnn.lstm_backward(dh_seq, dh_n, dc_n, out.cache)
    np.testing.assert_allclose(out.h_seq, y, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g.dx, dx, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g.dh0, dh0, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g.dw_ih, m.weight_ih_l0.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g.dw_hh, m.weight_hh_l0.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g.db, m.bias_ih_l0.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_matches_torch(torch, rng, nonlinearity):
    B, T, I, H = 4, 6, 3, 5
    m = torch.nn.RNN(I, H, nonlinearity=nonlinearity, batch_first=True).double()
    x = rng.standard_normal((B, T, I))
    h0 = rng.standard_normal((B, H))
    dh_seq, dh_n = rng.standard_normal((B, T, H)), rng.standard_normal((B, H))
    y, dx, dh0, m = torch_grads(torch, m, x, h0, None, dh_seq, dh_n, None)

    b = (m.bias_ih_l0 + m.bias_hh_l0).detach().numpy()
    out = fastrnn.rnn_forward(x, h0, m.weight_ih_l0.detach().numpy(),
                              m.weight_hh_l0.detach().numpy(), b, nonlinearity=nonlinearity,
                              training=True)
    g = fastrnn.rnn_backward(dh_seq, dh_n, out.cache)
    np.testing.assert_allclose(out.h_seq, y, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g.dx, dx, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g.dh0, dh0, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g.dw_hh, m.weight_hh_l0.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g.db, m.bias_hh_l0.grad.numpy(), rtol=1e-10, atol=1e-12)
