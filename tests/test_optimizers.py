"""Optimizers against their formulas on a tiny quadratic, and gradient clipping."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fastrnn
from fastrnn import optimizers as O

# f(w) = 0.5 * sum(A * w**2), so grad f = A * w.
A = np.array([1.0, 4.0, 0.25])
W0 = np.array([1.0, -2.0, 3.0])
STEPS = 5


def _run(opt, steps=STEPS):
    w = W0.copy()
    for _ in range(steps):
        opt.apply_gradients([(A * w, w)])
    return w


def _sgd_formula(lr, momentum=0.0, nesterov=False):
    w, m = W0.copy(), np.zeros(3)
    for _ in range(STEPS):
        g = A * w
        m = momentum * m - lr * g
        w = w + (momentum * m - lr * g if nesterov else m)
    return w


def _adam_formula(lr, b1, b2, eps):
    w, m, v = W0.copy(), np.zeros(3), np.zeros(3)
    for t in range(1, STEPS + 1):
        g = A * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        # Keras folds the bias corrections into the step size, so epsilon is scaled by sqrt(1-b2^t).
        w = w - lr * m_hat / (np.sqrt(v_hat) + eps / math.sqrt(1 - b2**t))
    return w


def _rmsprop_formula(lr, rho, momentum, eps, centered):
    w, v, mg, mom = W0.copy(), np.zeros(3), np.zeros(3), np.zeros(3)
    for _ in range(STEPS):
        g = A * w
        v = rho * v + (1 - rho) * g * g
        denom = v
        if centered:
            mg = rho * mg + (1 - rho) * g
            denom = v - mg * mg
        step = lr * g / np.sqrt(denom + eps)
        if momentum:
            mom = momentum * mom + step
            step = mom
        w = w - step
    return w


@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd_matches_formula(momentum, nesterov):
    got = _run(O.SGD(learning_rate=0.1, momentum=momentum, nesterov=nesterov))
    np.testing.assert_allclose(got, _sgd_formula(0.1, momentum, nesterov), rtol=1e-13)


@pytest.mark.parametrize("eps", [1e-7, 0.1])
def test_adam_matches_formula(eps):
    got = _run(O.Adam(learning_rate=0.05, beta_1=0.8, beta_2=0.95, epsilon=eps))
    np.testing.assert_allclose(got, _adam_formula(0.05, 0.8, 0.95, eps), rtol=1e-12)


@pytest.mark.parametrize(
    "momentum,centered", [(0.0, False), (0.5, False), (0.0, True), (0.5, True)]
)
def test_rmsprop_matches_formula(momentum, centered):
    got = _run(
        O.RMSprop(learning_rate=0.01, rho=0.8, momentum=momentum, epsilon=1e-3, centered=centered)
    )
    np.testing.assert_allclose(
        got, _rmsprop_formula(0.01, 0.8, momentum, 1e-3, centered), rtol=1e-12
    )


@pytest.mark.parametrize("opt", [O.SGD(0.1, momentum=0.9), O.Adam(0.1), O.RMSprop(0.05)])
def test_optimizers_minimise_the_quadratic(opt):
    w = _run(opt, steps=300)
    assert np.abs(w).max() < 0.05


def test_iterations_and_state_per_variable():
    opt = O.Adam(0.1)
    a, b = np.ones(2), np.ones(3)
    opt.apply_gradients([(np.ones(2), a), (np.full(3, 2.0), b)])
    assert opt.iterations == 1
    # Adam's first step is lr * sign(g) for every variable, whatever its scale.
    np.testing.assert_allclose(a, 0.9, rtol=1e-6)
    np.testing.assert_allclose(b, 0.9, rtol=1e-6)


def test_float32_stays_float32():
    w = np.ones(3, np.float32)
    O.Adam(0.1).apply_gradients([(np.ones(3), w)])
    assert w.dtype == np.float32


def test_gradients_passed_in_are_not_modified():
    g = np.array([10.0, -10.0])
    O.SGD(0.1, clipvalue=1.0).apply_gradients([(g, np.zeros(2))])
    np.testing.assert_array_equal(g, [10.0, -10.0])


def test_clipvalue():
    w = np.zeros(3)
    O.SGD(1.0, clipvalue=0.5).apply_gradients([(np.array([2.0, -0.1, -7.0]), w)])
    np.testing.assert_allclose(w, [-0.5, 0.1, 0.5])


def test_clipnorm_is_per_variable():
    a, b = np.zeros(2), np.zeros(2)
    O.SGD(1.0, clipnorm=1.0).apply_gradients([(np.array([3.0, 4.0]), a), (np.array([0.3, 0.4]), b)])
    np.testing.assert_allclose(a, [-0.6, -0.8])
    np.testing.assert_allclose(b, [-0.3, -0.4])


def test_global_clipnorm_scales_all_together():
    a, b = np.zeros(2), np.zeros(1)
    # Joint norm sqrt(9 + 16 + 144) = 13.
    O.SGD(1.0, global_clipnorm=1.0).apply_gradients(
        [(np.array([3.0, 4.0]), a), (np.array([12.0]), b)]
    )
    np.testing.assert_allclose(a, [-3 / 13, -4 / 13])
    np.testing.assert_allclose(b, [-12 / 13])
    c = np.zeros(1)
    O.SGD(1.0, global_clipnorm=100.0).apply_gradients([(np.array([5.0]), c)])
    np.testing.assert_allclose(c, [-5.0])


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(clipnorm=1.0),
        dict(clipvalue=0.5),
        dict(global_clipnorm=2.0),
        dict(clipvalue=0.5, clipnorm=0.7),
    ],
)
@pytest.mark.parametrize("cls", [O.SGD, O.Adam, O.RMSprop])
def test_flat_path_equals_list_path(cls, kwargs):
    rng = np.random.default_rng(0)
    shapes = [(3, 2), (4,), (2, 2)]
    values = [rng.standard_normal(s) for s in shapes]
    grads = [[3 * rng.standard_normal(s) for s in shapes] for _ in range(3)]
    listed = [v.copy() for v in values]
    opt_list = cls(0.1, **kwargs)
    for gs in grads:
        opt_list.apply_gradients(zip(gs, listed))
    flat = np.concatenate([v.ravel() for v in values])
    opt_flat = cls(0.1, **kwargs)
    segments = O._segment_index([v.size for v in values])
    for gs in grads:
        opt_flat._apply_flat(flat, np.concatenate([g.ravel() for g in gs]), segments)
    np.testing.assert_allclose(flat, np.concatenate([v.ravel() for v in listed]), rtol=1e-12)


def test_bad_arguments():
    with pytest.raises(ValueError, match="only one of `clipnorm` and `global_clipnorm`"):
        O.Adam(clipnorm=1.0, global_clipnorm=1.0)
    with pytest.raises(ValueError, match=r"`learning_rate` must be in \(0, inf\), got 0.0"):
        O.SGD(0.0)
    with pytest.raises(ValueError, match=r"`clipvalue` must be in \(0, inf\), got -1.0"):
        O.SGD(clipvalue=-1.0)
    with pytest.raises(ValueError, match=r"`momentum` must be in \[0, 1\)"):
        O.SGD(momentum=1.5)
    # These failed inside a step (ZeroDivisionError, math domain error) or trained on NaN
    # or uphill, and a string failed with a message naming no argument.
    for make, name in [
        (lambda: O.Adam(beta_1=1.0), "beta_1"),
        (lambda: O.Adam(beta_1=-1.0), "beta_1"),
        (lambda: O.Adam(beta_2=1.5), "beta_2"),
        (lambda: O.Adam(epsilon=-0.5), "epsilon"),
        (lambda: O.RMSprop(rho=2.0), "rho"),
        (lambda: O.RMSprop(epsilon=-1.0), "epsilon"),
        (lambda: O.SGD(learning_rate=float("inf")), "learning_rate"),
        (lambda: O.SGD(learning_rate=float("nan")), "learning_rate"),
    ]:
        with pytest.raises(ValueError, match=f"`{name}` must be in"):
            make()
    for make, name in [(lambda: O.SGD("0.1"), "learning_rate"),
                       (lambda: O.Adam(clipnorm="1"), "clipnorm"),
                       (lambda: O.SGD(momentum=True), "momentum")]:
        with pytest.raises(TypeError, match=f"`{name}` must be a number"):
            make()


def test_numpy_scalar_hyperparameters_become_floats(tmp_path):
    # save() raised "Object of type float32 is not JSON serializable" for these.
    opt = O.Adam(np.float32(0.01), beta_1=np.float64(0.8), clipnorm=np.float32(1.0))
    assert all(type(v) is float for v in (opt.learning_rate, opt.beta_1, opt.clipnorm))
    model = fastrnn.models.LSTM(3, 4, 1, seed=np.int64(0))
    model.compile(opt, "mse")
    model.train_on_batch(np.zeros((2, 4, 3)), np.zeros((2, 1)))
    model.save(tmp_path / "m.npz")
    assert fastrnn.models.load(tmp_path / "m.npz").optimizer.get_config() == opt.get_config()
    with pytest.raises(ValueError, match="unknown optimizer 'adamw'"):
        O.get("adamw")
    with pytest.raises(ValueError, match="does not match"):
        O.SGD().apply_gradients([(np.zeros(2), np.zeros(3))])


def test_get_and_config_round_trip():
    assert isinstance(O.get("ADAM"), O.Adam)
    opt = O.RMSprop(0.02, rho=0.5, momentum=0.1, centered=True, clipnorm=2.0)
    clone = O.from_config("RMSprop", opt.get_config())
    assert clone.get_config() == opt.get_config()
