"""A few calls of every public function on small shapes, for tools/memcheck.sh."""

import numpy as np

import fastrnn

rng = np.random.default_rng(0)
B, T, I, H = 3, 5, 4, 6
for dtype in (np.float32, np.float64):
    x = rng.standard_normal((B, T, I)).astype(dtype)
    w_ih, w_hh = rng.standard_normal((4 * H, I)).astype(dtype), rng.standard_normal((4 * H, H)).astype(dtype)
    b, p = rng.standard_normal(4 * H).astype(dtype), rng.standard_normal((3, H)).astype(dtype)
    for _ in range(3):
        out = fastrnn.lstm_forward(x, None, None, w_ih, w_hh, b, p, training=True)
        fastrnn.lstm_backward(out.h_seq, None, None, out.cache)
        r = fastrnn.rnn_forward(x, None, w_ih[:H], w_hh[:H], b[:H], training=True)
        fastrnn.rnn_backward(r.h_seq, None, r.cache)
    # Outputs of 256 KiB and more (here the training cache's gates) come from the output
    # pool and go back to it when dropped: the second call reuses what the first freed.
    Hl = 32
    xl = rng.standard_normal((64, 40, I)).astype(dtype)
    wl_ih = rng.standard_normal((4 * Hl, I)).astype(dtype) * 0.3
    wl_hh = rng.standard_normal((4 * Hl, Hl)).astype(dtype) * 0.1
    bl = np.zeros(4 * Hl, dtype)
    for _ in range(2):
        out = fastrnn.lstm_forward(xl, None, None, wl_ih, wl_hh, bl, None, training=True)
        assert out.cache.gates.nbytes >= 256 << 10
        fastrnn.lstm_backward(out.h_seq, None, None, out.cache)
        del out
    # Weight rows that start off a vector boundary are read from the boundary before
    # them, masked at both ends (the GEMV and steps at B <= 2): here each weight starts
    # `off` bytes into a block that ends where the weight ends.
    for off in (dtype().itemsize, 16):
        def placed(a):
            v = np.empty(a.nbytes + off, np.uint8)[off:].view(dtype).reshape(a.shape)
            v[...] = a
            return v

        Hs, Is = 32, 64
        ws_ih = placed(rng.standard_normal((4 * Hs, Is)).astype(dtype) * 0.2)
        ws_hh = placed(rng.standard_normal((4 * Hs, Hs)).astype(dtype) * 0.2)
        for Bs in (1, 2):  # one and two rows of x per dot product
            xs = rng.standard_normal((Bs, 3, Is)).astype(dtype)
            hs = rng.standard_normal((Bs, Hs)).astype(dtype)
            out = fastrnn.lstm_forward(xs, hs, hs, ws_ih, ws_hh, np.zeros(4 * Hs, dtype),
                                       training=True)
            fastrnn.lstm_backward(out.h_seq, None, None, out.cache)
    try:  # an error path too: exceptions must not leak
        fastrnn.lstm_forward(x, None, None, w_ih[:, :-1], w_hh, b)
    except ValueError:
        pass
print("memcheck_calls: done")
