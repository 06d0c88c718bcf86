"""Property-based parity: random shapes, dtypes, layouts, views of x, peepholes,
nonlinearities, thread counts and every ISA path give the oracle's forward and backward
within the tolerance table of conftest.py.

Hypothesis is derandomised (a fixed example sequence, no example database), so CI runs
the same cases every time; the profile is registered here and applied per test, so it
does not change the settings of other test files.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import as64, assert_close, make_lstm_case, make_rnn_case
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastrnn
from fastrnn import _core, reference

settings.register_profile(
    "fastrnn-properties",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=150,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROFILE = settings.get_profile("fastrnn-properties")

ISAS = list(_core.supported_isas())

# Ones, sizes around the SIMD widths (4, 8, 16 lanes) and the micro-kernel tiles (3, 6, 12
# rows; 32, 64 columns), and a few past them.
SIZES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 15, 16, 17, 23, 24, 31, 32, 33, 63, 64, 65]
BATCHES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 16, 17]
STEPS = [1, 2, 3, 4, 5, 7, 8, 9, 12, 13]


@st.composite
def shapes(draw):
    return (
        draw(st.sampled_from(BATCHES)),
        draw(st.sampled_from(STEPS)),
        draw(st.sampled_from(SIZES)),
        draw(st.sampled_from(SIZES)),
    )


@st.composite
def x_layouts(draw):
    """How x lies in memory: storage axis order, step (negative = reversed) and offset per
    axis, or a zero-stride broadcast along one axis."""
    kind = draw(st.sampled_from(["strided", "strided", "strided", "broadcast", "contiguous"]))
    if kind == "broadcast":
        return kind, draw(st.sampled_from([0, 1])), None, None
    if kind == "contiguous":
        return kind, None, None, None
    perm = draw(st.permutations([0, 1, 2]))
    steps = [draw(st.sampled_from([1, 2, 3, -1, -2, -3])) for _ in range(3)]
    offsets = [draw(st.integers(0, 2)) for _ in range(3)]
    return kind, perm, steps, offsets


def place_x(x, layout, rng):
    """A view holding the values of x (or a broadcast of one slice of it) laid out as
    ``layout`` says, inside a bigger array of random values."""
    kind, a, steps, offsets = layout
    if kind == "contiguous":
        return x, x
    if kind == "broadcast":  # zero stride along axis a: every slice equals the first one
        shape = list(x.shape)
        shape[a] = 1
        src = np.ascontiguousarray(x[(slice(None),) * a + (slice(0, 1),)])
        view = np.broadcast_to(src, x.shape)
        assert view.strides[a] == 0
        return view, np.array(view)
    perm = a
    big_shape = [n * abs(s) + o for n, s, o in zip(x.shape, steps, offsets)]
    storage = rng.standard_normal([big_shape[p] for p in perm]).astype(x.dtype)
    big = storage.transpose(np.argsort(perm))
    index = []
    for n, s, o in zip(x.shape, steps, offsets):
        if s > 0:
            index.append(slice(o, o + n * s, s))
        else:
            start = o + (n - 1) * -s
            stop = start + n * s
            index.append(slice(start, stop if stop >= 0 else None, s))
    view = big[tuple(index)]
    assert view.shape == x.shape and np.shares_memory(view, storage)
    view[...] = x
    return view, x


def compare(got, want, dtype, what):
    for name in want._fields:
        e, a = getattr(want, name), getattr(got, name)
        if name == "cache":
            continue
        if e is None:
            assert a is None, f"{what}: {name}"
        else:
            assert_close(a, e, dtype, f"{what}: {name}")


class every_isa_and_threads:
    """Runs the body once per ISA path with the given thread count; restores both."""

    def __init__(self, threads):
        self.threads = threads

    def __iter__(self):
        before = _core.active_isa()
        fastrnn.set_num_threads(self.threads)
        try:
            for isa in ISAS:
                _core.select_isa(isa)
                yield isa
        finally:
            _core.select_isa(before)
            fastrnn.set_num_threads(0)


@PROFILE
@given(
    shape=shapes(),
    dtype=st.sampled_from([np.float32, np.float64]),
    batch_first=st.booleans(),
    peephole=st.booleans(),
    states=st.booleans(),
    grads_present=st.tuples(st.booleans(), st.booleans(), st.booleans()),
    layout=x_layouts(),
    threads=st.integers(1, 3),
    seed=st.integers(0, 2**32 - 1),
)
def test_lstm_matches_reference(
    shape, dtype, batch_first, peephole, states, grads_present, layout, threads, seed
):
    rng = np.random.default_rng(seed)
    B, T, I, H = shape
    case, grads = make_lstm_case(
        rng, B, T, I, H, dtype, peephole=peephole, batch_first=batch_first, states=states
    )
    case["x"], x_values = place_x(case["x"], layout, rng)
    dgrads = [g if keep else None for g, keep in
              zip((grads["dh_seq"], grads["dh_n"], grads["dc_n"]), grads_present)]
    kw = dict(batch_first=batch_first, training=True)
    ref = reference.lstm_forward(**as64({**case, "x": x_values}), **kw)
    gref = reference.lstm_backward(
        *[None if g is None else g.astype(np.float64) for g in dgrads], ref.cache
    )
    for isa in every_isa_and_threads(threads):
        what = f"{isa} threads={threads} {shape} {np.dtype(dtype).name} {layout[0]}"
        out = fastrnn.lstm_forward(**case, **kw)
        compare(out, ref, dtype, what)
        infer = fastrnn.lstm_forward(**case, batch_first=batch_first)
        for name in ("h_seq", "h_n", "c_n"):
            assert np.array_equal(getattr(infer, name), getattr(out, name)), (what, name)
        g = fastrnn.lstm_backward(*dgrads, out.cache)
        compare(g, gref, dtype, what)
        assert g.dx.flags.c_contiguous and g.dx.shape == case["x"].shape


@PROFILE
@given(
    shape=shapes(),
    dtype=st.sampled_from([np.float32, np.float64]),
    batch_first=st.booleans(),
    nonlinearity=st.sampled_from(["tanh", "relu"]),
    states=st.booleans(),
    grads_present=st.tuples(st.booleans(), st.booleans()),
    layout=x_layouts(),
    threads=st.integers(1, 3),
    seed=st.integers(0, 2**32 - 1),
)
def test_rnn_matches_reference(
    shape, dtype, batch_first, nonlinearity, states, grads_present, layout, threads, seed
):
    rng = np.random.default_rng(seed)
    B, T, I, H = shape
    case, grads = make_rnn_case(rng, B, T, I, H, dtype, batch_first=batch_first, states=states)
    case["x"], x_values = place_x(case["x"], layout, rng)
    dgrads = [g if keep else None for g, keep in
              zip((grads["dh_seq"], grads["dh_n"]), grads_present)]
    kw = dict(nonlinearity=nonlinearity, batch_first=batch_first, training=True)
    ref = reference.rnn_forward(**as64({**case, "x": x_values}), **kw)
    gref = reference.rnn_backward(
        *[None if g is None else g.astype(np.float64) for g in dgrads], ref.cache
    )
    for isa in every_isa_and_threads(threads):
        what = f"{isa} threads={threads} {shape} {np.dtype(dtype).name} {nonlinearity} {layout[0]}"
        out = fastrnn.rnn_forward(**case, **kw)
        compare(out, ref, dtype, what)
        g = fastrnn.rnn_backward(*dgrads, out.cache)
        compare(g, gref, dtype, what)
        assert g.dx.flags.c_contiguous and g.dx.shape == case["x"].shape


@settings(PROFILE, max_examples=8)
@given(
    shape=st.tuples(
        st.sampled_from([1, 3, 5, 13, 16]),
        st.sampled_from([9, 20]),
        st.sampled_from([8, 24, 40]),
        st.sampled_from([96, 128, 256]),
    ),
    dtype=st.sampled_from([np.float32, np.float64]),
    peephole=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_lstm_bitwise_identical_across_threads_and_repeats(shape, dtype, peephole, seed):
    """Sizes big enough for the kernels to split work: 1, 2 and 3 threads and a repeated
    call give the same bits, on every ISA path."""
    rng = np.random.default_rng(seed)
    case, grads = make_lstm_case(rng, *shape, dtype, peephole=peephole, batch_first=True)
    before = _core.active_isa()
    try:
        for isa in ISAS:
            _core.select_isa(isa)
            results = []
            for n in (1, 2, 3, 3):
                fastrnn.set_num_threads(n)
                out = fastrnn.lstm_forward(**case, training=True)
                g = fastrnn.lstm_backward(grads["dh_seq"], grads["dh_n"], grads["dc_n"], out.cache)
                results.append([out.h_seq, out.h_n, out.c_n, *[a for a in g if a is not None]])
            for other in results[1:]:
                for a, b in zip(results[0], other):
                    assert np.array_equal(a, b), (isa, shape)
    finally:
        _core.select_isa(before)
        fastrnn.set_num_threads(0)


@settings(PROFILE, max_examples=8)
@given(
    shape=st.tuples(
        st.sampled_from([1, 5, 16]),
        st.sampled_from([9, 20]),
        st.sampled_from([8, 40]),
        st.sampled_from([128, 256, 384]),
    ),
    dtype=st.sampled_from([np.float32, np.float64]),
    nonlinearity=st.sampled_from(["tanh", "relu"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_rnn_bitwise_identical_across_threads_and_repeats(shape, dtype, nonlinearity, seed):
    rng = np.random.default_rng(seed)
    case, grads = make_rnn_case(rng, *shape, dtype, batch_first=True)
    before = _core.active_isa()
    try:
        for isa in ISAS:
            _core.select_isa(isa)
            results = []
            for n in (1, 2, 3, 3):
                fastrnn.set_num_threads(n)
                out = fastrnn.rnn_forward(**case, nonlinearity=nonlinearity, training=True)
                g = fastrnn.rnn_backward(grads["dh_seq"], grads["dh_n"], out.cache)
                results.append([out.h_seq, out.h_n, *g])
            for other in results[1:]:
                for a, b in zip(results[0], other):
                    assert np.array_equal(a, b), (isa, shape)
    finally:
        _core.select_isa(before)
        fastrnn.set_num_threads(0)



# Shapes whose input projection is a GEMV over w_ih as stored (at most 12 tiles of rows,
# T * ceil(B / rows per tile)), in 64-output blocks: the LSTM at H=256 (16 blocks) and at
# H=232 (15, the last one partial) splits them over 2 threads; H=40 has a partial block.
GEMV_SHAPES = [(1, 1, 40, 40), (1, 1, 256, 256), (1, 2, 232, 232), (2, 3, 24, 64), (8, 3, 16, 96)]


@pytest.mark.parametrize("cell", ["lstm", "rnn"])
@pytest.mark.parametrize("shape", GEMV_SHAPES, ids=lambda s: "B{}T{}I{}H{}".format(*s))
@pytest.mark.parametrize("threads", [1, 2])
def test_input_gemv_walks_both_ways_with_the_same_bits(rng, isa, cell, shape, threads):
    """The GEMV walks w_ih backwards in every other call (project_inputs, counted across
    calls), so two calls in a row take opposite walks: both must give the same bits as
    each other and match the reference."""
    if cell == "lstm":
        case, _ = make_lstm_case(rng, *shape, np.float32, peephole=True, batch_first=True)
        fwd, ref = fastrnn.lstm_forward, reference.lstm_forward
    else:
        case, _ = make_rnn_case(rng, *shape, np.float32, batch_first=True)
        fwd, ref = fastrnn.rnn_forward, reference.rnn_forward
    fastrnn.set_num_threads(threads)
    try:
        first, second = fwd(**case), fwd(**case)
    finally:
        fastrnn.set_num_threads(0)
    assert np.array_equal(first.h_seq, second.h_seq)
    assert np.array_equal(first.h_n, second.h_n)
    want = ref(**as64(case))
    assert_close(first.h_seq, want.h_seq, np.float32, "h_seq")


# Batch-first training computes dx time-major in chunks and copies each row to its place;
# with rows * I >= 2 * 32768 the copy splits over threads (SequenceGrads::add).
@pytest.mark.parametrize("cell", ["lstm", "rnn"])
@pytest.mark.parametrize("shape", [(64, 24, 64, 32), (48, 40, 72, 16)],
                         ids=lambda s: "B{}T{}I{}H{}".format(*s))
def test_batch_first_dx_copied_on_several_threads(rng, cell, shape):
    B, T, I, H = shape
    assert T * B * I >= 2 * 32768
    if cell == "lstm":
        case, grads = make_lstm_case(rng, B, T, I, H, np.float32, peephole=False,
                                     batch_first=True)
        fwd, bwd, ref_fwd, ref_bwd = (fastrnn.lstm_forward, fastrnn.lstm_backward,
                                      reference.lstm_forward, reference.lstm_backward)
        dgrads = (grads["dh_seq"], grads["dh_n"], grads["dc_n"])
    else:
        case, grads = make_rnn_case(rng, B, T, I, H, np.float32, batch_first=True)
        fwd, bwd, ref_fwd, ref_bwd = (fastrnn.rnn_forward, fastrnn.rnn_backward,
                                      reference.rnn_forward, reference.rnn_backward)
        dgrads = (grads["dh_seq"], grads["dh_n"])
    dx = []
    try:
        for n in (1, 2, 3):
            fastrnn.set_num_threads(n)
            dx.append(bwd(*dgrads, fwd(**case, training=True).cache).dx)
    finally:
        fastrnn.set_num_threads(0)
    assert np.array_equal(dx[0], dx[1]) and np.array_equal(dx[0], dx[2])
    want = ref_bwd(*[g.astype(np.float64) for g in dgrads],
                   ref_fwd(**as64(case), training=True).cache)
    assert_close(dx[1], want.dx, np.float32, "dx")


def _off_a_line(a, offset):
    """A copy of `a` whose data starts `offset` bytes past a 64-byte line, between bytes
    that read as NaN: a kernel that loads past either end and multiplies it by zero
    (instead of masking it out) turns the results into NaN."""
    buf = np.full(a.nbytes + 128, 0xFF, np.uint8)
    start = (-buf.ctypes.data) % 64 + offset
    out = buf[start:start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    assert out.ctypes.data % 64 == offset
    return out


def _same_bits_wherever_weights_start(case, dgrads, cell, dtype, threads, moved_keys):
    """Forward and backward with `moved_keys` of case at 0, one element, 16, 32 and 48
    bytes past a line: every result the same bits, and the oracle's."""
    if cell == "lstm":
        fwd, bwd, ref_fwd, ref_bwd = (fastrnn.lstm_forward, fastrnn.lstm_backward,
                                      reference.lstm_forward, reference.lstm_backward)
    else:
        fwd, bwd, ref_fwd, ref_bwd = (fastrnn.rnn_forward, fastrnn.rnn_backward,
                                      reference.rnn_forward, reference.rnn_backward)
    itemsize = np.dtype(dtype).itemsize
    runs = []
    fastrnn.set_num_threads(threads)
    try:
        for offset in (0, itemsize, 16, 32, 48):
            moved = {**case, **{k: _off_a_line(case[k], offset) for k in moved_keys}}
            out = fwd(**moved, training=True)
            g = bwd(*dgrads, out.cache)
            runs.append((out, g))
    finally:
        fastrnn.set_num_threads(0)
    for out, g in runs[1:]:
        assert np.array_equal(out.h_seq, runs[0][0].h_seq)
        assert all(np.array_equal(a, b) for a, b in zip(g, runs[0][1]) if a is not None)
    want = ref_bwd(*[v.astype(np.float64) for v in dgrads],
                   ref_fwd(**as64(case), training=True).cache)
    out, g = runs[1]
    assert_close(out.h_seq, ref_fwd(**as64(case)).h_seq, dtype, "h_seq")
    assert_close(g.dx, want.dx, dtype, "dx")
    assert_close(g.dw_ih, want.dw_ih, dtype, "dw_ih")
    assert_close(g.dw_hh, want.dw_hh, dtype, "dw_hh")


def _case_for(cell, rng, shape, dtype, states):
    B, T, I, H = shape
    if cell == "lstm":
        case, grads = make_lstm_case(rng, B, T, I, H, dtype, peephole=True, batch_first=True,
                                     states=states)
        return case, (grads["dh_seq"], grads["dh_n"], grads["dc_n"])
    case, grads = make_rnn_case(rng, B, T, I, H, dtype, batch_first=True, states=states)
    return case, (grads["dh_seq"], grads["dh_n"])


# B <= 2: the steps read w_hh as stored (StoredRows). From T - 1 = 32 steps on (no h0) a
# w_hh off a line is copied to one on lines; H = 100 has rows off a line even when its
# start is on one; (1, 31, ...) keeps it in place on both sides of the threshold.
@pytest.mark.parametrize("cell", ["lstm", "rnn"])
@pytest.mark.parametrize("shape", [(1, 40, 16, 64), (2, 34, 8, 100), (1, 32, 8, 64),
                                   (1, 31, 8, 64)], ids=lambda s: "B{}T{}I{}H{}".format(*s))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
def test_w_hh_off_a_line_gives_the_same_bits(rng, isa, cell, shape, dtype, threads):
    """Where w_hh starts must not change a bit of any result, forward or backward, with
    the steps reading it in place or from an aligned copy; and it must match the oracle."""
    case, dgrads = _case_for(cell, rng, shape, dtype, states=False)
    _same_bits_wherever_weights_start(case, dgrads, cell, dtype, threads, ["w_hh"])


# Few rows of few steps: the input projection dots x against the rows of w_ih as stored
# (the GEMV), and with h0 the steps read w_hh in place. At B <= 2, rows off a vector
# boundary are read from the boundary before them (ShiftedA); B = 3 reads them as they
# are, and so does I = 100 on AVX2 and AVX-512 (its rows, 400 bytes apart, start at
# different offsets there); I = 24 is too short to shift on AVX-512.
@pytest.mark.parametrize("cell", ["lstm", "rnn"])
@pytest.mark.parametrize("shape", [(1, 1, 256, 64), (1, 4, 64, 32), (2, 3, 48, 64),
                                   (3, 2, 100, 16), (1, 2, 24, 16)],
                         ids=lambda s: "B{}T{}I{}H{}".format(*s))
@pytest.mark.parametrize("states", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_w_ih_off_a_line_gives_the_same_bits(rng, isa, cell, shape, states, dtype):
    case, dgrads = _case_for(cell, rng, shape, dtype, states=states)
    _same_bits_wherever_weights_start(case, dgrads, cell, dtype, 1, ["w_ih", "w_hh"])
