"""Models: the seed's snippet, fit/evaluate/predict, callbacks, save/load, input checks,
reproducibility and whole-model gradients."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import fastrnn
from fastrnn import callbacks as C
from fastrnn import layers as L
from fastrnn import models as M
from fastrnn import optimizers as O


@pytest.fixture
def rng():
    return np.random.default_rng(42)


def _task(rng, n=96, t=12, i=4):
    """y = mean of feature 0 over time: learnable in a few epochs."""
    x = rng.standard_normal((n, t, i))
    y = x[:, :, :1].mean(axis=1) * 2.0
    return x, y


@pytest.mark.parametrize("cls", [M.LSTM, M.RNN])
def test_seed_snippet_runs_and_learns(rng, cls):
    x_train, y_train = _task(rng, i=10)
    x_test = rng.standard_normal((5, 12, 10))
    model = cls(input_dim=10, hidden_dim=50, output_dim=1, seed=0)
    model.compile(optimizer="adam", loss="mse")
    history = model.fit(x_train, y_train, epochs=15, batch_size=32, verbose=0)
    preds = model.predict(x_test)
    assert preds.shape == (5, 1) and preds.dtype == np.float32
    losses = history.history["loss"]
    assert len(losses) == 15 and losses[-1] < 0.5 * losses[0]


def test_history_validation_and_metrics(rng):
    x, y = _task(rng)
    model = M.LSTM(4, 8, 1, seed=1)
    model.compile("adam", "mse", metrics=["mae"])
    h = model.fit(x, y, epochs=3, validation_split=0.25, verbose=0)
    assert set(h.history) == {"loss", "mae", "val_loss", "val_mae"}
    assert h.epoch == [0, 1, 2] and all(len(v) == 3 for v in h.history.values())
    h = model.fit(x, y, epochs=2, validation_data=(x[:10], y[:10]), verbose=0)
    # The validation loss is the loss of evaluate() on the same data.
    assert h.history["val_loss"][-1] == pytest.approx(model.evaluate(x[:10], y[:10])[0], rel=1e-5)


def test_verbose_modes(rng, capsys):
    x, y = _task(rng, n=40)
    model = M.RNN(4, 4, 1, seed=0)
    model.compile("sgd", "mse")
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert capsys.readouterr().out == ""
    model.fit(x, y, epochs=3, batch_size=8, verbose=2, validation_split=0.2)
    lines = capsys.readouterr().out.strip().splitlines()
    assert (
        len(lines) == 3
        and lines[0].startswith("Epoch 1/3")
        and "val_loss" in lines[0]
        and "s" in lines[0]
    )
    model.fit(x, y, epochs=1, batch_size=8, verbose=1)
    out = capsys.readouterr().out
    assert "Epoch 1/1" in out and "5/5 [" in out and "loss:" in out
    with pytest.raises(ValueError, match="`verbose` must be 0, 1 or 2"):
        model.fit(x, y, verbose=3)


def test_lists_and_float64_are_converted(rng):
    x, y = _task(rng, n=16, t=5, i=2)
    model = M.LSTM(2, 4, 1, seed=0)
    model.compile("adam", "mse")
    model.fit(x.tolist(), y.ravel().tolist(), epochs=1, verbose=0)
    p_list = model.predict(x.tolist())
    p_f64 = model.predict(x)
    p_f32 = model.predict(x.astype(np.float32))
    assert p_list.dtype == np.float32
    np.testing.assert_array_equal(p_list, p_f64)
    np.testing.assert_array_equal(p_f64, p_f32)
    assert isinstance(model.evaluate(x, y), float)


def test_bad_inputs_say_what_was_expected(rng):
    model = M.LSTM(input_dim=3, hidden_dim=4, output_dim=2, seed=0)
    model.compile("adam", "mse")
    x = rng.standard_normal((8, 5, 3))
    y = rng.standard_normal((8, 2))
    with pytest.raises(
        ValueError, match=r"x must be 3-D \(batch, timesteps, 3\), got 2-D.*x\[\.\.\., None\]"
    ):
        model.fit(x[:, :, 0], y, verbose=0)
    with pytest.raises(
        ValueError, match=r"x must have 3 features.*\(batch, timesteps, 3\); got \(8, 5, 4\)"
    ):
        model.predict(rng.standard_normal((8, 5, 4)))
    with pytest.raises(
        ValueError, match="x and y must have the same number of samples, got 8 and 7"
    ):
        model.fit(x, y[:7], verbose=0)
    with pytest.raises(
        ValueError, match=r"y must have shape \(8, 2\) to match the model output, got \(8, 3\)"
    ):
        model.fit(x, rng.standard_normal((8, 3)), verbose=0)
    with pytest.raises(ValueError, match="numeric"):
        model.predict([["a"]])
    with pytest.raises(ValueError, match="x_val must have 3 features"):
        model.fit(x, y, validation_data=(rng.standard_normal((2, 5, 1)), y[:2]), verbose=0)
    with pytest.raises(ValueError, match="empty"):
        model.predict(np.zeros((0, 5, 3)))
    with pytest.raises(ValueError, match="`input_dim` must be a positive integer"):
        M.RNN(input_dim=0, hidden_dim=3, output_dim=1)
    with pytest.raises(RuntimeError, match="compile"):
        M.LSTM(3, 4, 1).fit(x, y)
    with pytest.raises(ValueError, match="set return_sequences=True"):
        M.Sequential([L.LSTM(3), L.LSTM(3)]).build((None, 5, 2))


def test_same_seed_gives_bit_identical_training(rng):
    x, y = _task(rng, n=64)

    def run(seed):
        model = M.LSTM(4, 8, 1, num_layers=2, seed=seed)
        model.compile(O.Adam(0.01, clipnorm=1.0), "mse")
        h = model.fit(x, y, epochs=3, batch_size=16, verbose=0)
        return h.history["loss"], model.get_weights()

    loss_a, w_a = run(7)
    loss_b, w_b = run(7)
    assert loss_a == loss_b
    for a, b in zip(w_a, w_b):
        np.testing.assert_array_equal(a, b)
    _, w_c = run(8)
    assert not np.array_equal(w_a[0], w_c[0])


@pytest.mark.parametrize(
    "cls,kwargs", [(M.LSTM, dict(peephole=True, num_layers=2)), (M.RNN, dict(activation="relu"))]
)
def test_save_load_round_trip_gives_identical_predictions(rng, tmp_path, cls, kwargs):
    x, y = _task(rng, n=32)
    model = cls(4, 6, 1, seed=3, **kwargs)
    model.compile(O.RMSprop(0.005, clipvalue=1.0), "mae", metrics=["mse"])
    model.fit(x, y, epochs=2, verbose=0)
    path = tmp_path / "model.npz"
    model.save(path)
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["config"]))
    assert meta["class_name"] == cls.__name__ and meta["config"]["num_layers"] == kwargs.get(
        "num_layers", 1
    )
    loaded = M.load(path)
    assert type(loaded) is cls
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert isinstance(loaded.optimizer, O.RMSprop) and loaded.optimizer.clipvalue == 1.0
    assert loaded.loss.name == "mae" and [m.name for m in loaded.metrics] == ["mse"]
    loaded.fit(x, y, epochs=1, verbose=0)


def test_save_load_sequential_float64(rng, tmp_path):
    model = M.Sequential(
        [
            L.SimpleRNN(5, return_sequences=True),
            L.LSTM(4, return_sequences=True),
            L.Dense(3, activation="softmax"),
        ],
        dtype="float64",
        seed=0,
    )
    x = rng.standard_normal((6, 7, 2))
    before = model.predict(x)
    assert before.shape == (6, 7, 3) and before.dtype == np.float64
    model.save(tmp_path / "seq")
    loaded = M.load(tmp_path / "seq")
    np.testing.assert_array_equal(loaded.predict(x), before)


def test_load_rejects_foreign_files(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, a=np.zeros(3))
    with pytest.raises(ValueError, match="not a fastrnn model file"):
        M.load(path)


def test_early_stopping_restores_best_weights(rng):
    x, y = _task(rng, n=48)
    model = M.RNN(4, 8, 1, seed=0)
    # A large step size makes the validation loss jump around, so the best epoch is not the last.
    model.compile(O.SGD(0.5, momentum=0.9), "mse")
    snapshots = {}

    class Snapshot(C.Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshots[epoch] = self.model.get_weights()

    stop = C.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    h = model.fit(x, y, epochs=30, validation_split=0.25, callbacks=[Snapshot(), stop], verbose=0)
    val = h.history["val_loss"]
    best = int(np.nanargmin(val))
    assert best < len(val) - 1, "the scenario must make the last epoch worse than the best"
    assert stop.best_epoch == best
    for got, want in zip(model.get_weights(), snapshots[best]):
        np.testing.assert_array_equal(got, want)
    if len(val) < 30:
        assert len(val) - 1 - best >= 2


class _FakeModel:
    def __init__(self):
        self.stop_training = False
        self.w = [np.zeros(1)]

    def get_weights(self):
        return [a.copy() for a in self.w]

    def set_weights(self, w):
        self.w = [a.copy() for a in w]


def test_early_stopping_logic_on_a_scripted_run():
    model = _FakeModel()
    stop = C.EarlyStopping(monitor="loss", patience=2, restore_best_weights=True, min_delta=0.01)
    stop.set_model(model)
    stop.on_train_begin()
    values = [1.0, 0.5, 0.495, 0.7, 0.6]
    for epoch, v in enumerate(values):
        model.w = [np.array([float(epoch)])]
        stop.on_epoch_end(epoch, {"loss": v})
        if model.stop_training:
            break
    # 0.495 is not better than 0.5 by min_delta, so epochs 2 and 3 exhaust the patience.
    assert epoch == 3 and stop.stopped_epoch == 3
    stop.on_train_end()
    np.testing.assert_array_equal(model.w[0], [1.0])
    acc = C.EarlyStopping(monitor="val_accuracy")
    assert acc.mode == "max"


def test_nan_loss_stops_training_with_a_clear_message(rng):
    x, y = _task(rng, n=64)
    x[20, 3, 1] = np.nan
    model = M.LSTM(4, 4, 1, seed=0)
    model.compile("adam", "mse")
    before = model.get_weights()
    with pytest.warns(
        RuntimeWarning, match=r"loss became nan at epoch 1, batch 1; training stopped"
    ):
        h = model.fit(x, y, epochs=5, batch_size=32, shuffle=False, verbose=0)
    assert len(h.history["loss"]) == 1 and np.isnan(h.history["loss"][0])
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def test_non_finite_gradient_is_not_applied(rng, monkeypatch):
    x, y = _task(rng, n=32)
    model = M.RNN(4, 4, 1, seed=0)
    model.compile("adam", "mse")
    before = model.get_weights()
    dense = model.layers[-1]
    backward = dense.backward

    def exploding(dy):
        dx = backward(dy)
        dense.grads["w"][...] = np.inf
        return dx

    monkeypatch.setattr(dense, "backward", exploding)
    with pytest.warns(RuntimeWarning, match="gradients became NaN/inf at epoch 1, batch 1"):
        model.fit(x, y, epochs=2, verbose=0)
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def test_terminate_on_nan_callback(rng, capsys):
    x, y = _task(rng, n=64)
    y[40] = np.inf
    model = M.RNN(4, 4, 1, seed=0)
    model.compile("sgd", "mse")
    with pytest.warns(RuntimeWarning, match="batch 2"):
        h = model.fit(
            x, y, epochs=3, batch_size=32, shuffle=False, callbacks=[C.TerminateOnNaN()], verbose=0
        )
    assert "TerminateOnNaN" in capsys.readouterr().out
    assert len(h.epoch) == 1


def test_model_checkpoint_save_best_only(rng, tmp_path):
    x, y = _task(rng, n=48)
    model = M.LSTM(4, 6, 1, seed=0)
    model.compile("adam", "mse")
    best_path = tmp_path / "best.npz"
    every = str(tmp_path / "ep{epoch:02d}.npz")
    h = model.fit(
        x,
        y,
        epochs=3,
        validation_split=0.25,
        verbose=0,
        callbacks=[C.ModelCheckpoint(best_path, save_best_only=True), C.ModelCheckpoint(every)],
    )
    assert best_path.exists() and sorted(p.name for p in tmp_path.glob("ep*.npz")) == [
        "ep01.npz",
        "ep02.npz",
        "ep03.npz",
    ]
    best_epoch = int(np.argmin(h.history["val_loss"])) + 1
    np.testing.assert_array_equal(
        M.load(best_path).predict(x), M.load(tmp_path / f"ep{best_epoch:02d}.npz").predict(x)
    )


def test_return_sequences_model(rng):
    x = rng.standard_normal((32, 6, 2))
    y = np.cumsum(x[:, :, :1], axis=1) * 0.3
    model = M.LSTM(2, 8, 1, return_sequences=True, seed=0)
    model.compile("adam", "mse")
    h = model.fit(x, y[..., 0], epochs=10, batch_size=8, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]
    assert model.predict(x).shape == (32, 6, 1)


def test_classification_with_sparse_labels_and_accuracy(rng):
    x = rng.standard_normal((128, 5, 3))
    labels = (x[:, :, 0].sum(axis=1) > 0).astype(int)
    model = M.Sequential([L.LSTM(8), L.Dense(2)], seed=0)
    model.compile(
        O.Adam(0.02),
        fastrnn.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    h = model.fit(x, labels, epochs=15, batch_size=32, verbose=0)
    assert h.history["accuracy"][-1] > 0.85
    loss, acc = model.evaluate(x, labels)
    assert acc > 0.85
    with pytest.raises(ValueError, match=r"class ids of shape \(128,\)"):
        model.fit(x, np.zeros((128, 2)), verbose=0)


def test_whole_model_gradient_matches_finite_differences(rng):
    model = M.Sequential(
        [
            L.LSTM(3, return_sequences=True, peephole=True),
            L.SimpleRNN(3, return_sequences=True),
            L.Dense(2, activation="tanh"),
        ],
        dtype="float64",
        seed=0,
    )
    model.compile(O.SGD(1e-3), "mse")
    x = rng.standard_normal((2, 3, 2))
    y = rng.standard_normal((2, 3, 2))
    model.build(x.shape)
    flat = model._flat_weights
    flat += 0.1 * rng.standard_normal(flat.shape)

    y_pred = model._forward(x, training=True)
    _, dy = model.loss.value_and_grad(y, y_pred)
    for layer in reversed(model.layers):
        dy = layer.backward(dy)
    analytic = model._flat_grads.copy()

    def f():
        return model.loss.value_and_grad(y, model._forward(x, training=False))[0]

    eps = 1e-6
    numeric = np.empty_like(flat)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        fp = f()
        flat[i] = old - eps
        numeric[i] = (fp - f()) / (2 * eps)
        flat[i] = old
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-9)


def test_weights_are_views_of_one_flat_buffer():
    model = M.LSTM(3, 5, 2, num_layers=2, seed=0)
    for layer in model.layers:
        for w in layer.weights.values():
            assert (
                np.shares_memory(w, model._flat_weights)
                and w.flags.c_contiguous
                and w.dtype == np.float32
            )
    assert model.count_params() == sum(w.size for w in model.get_weights())
    new = [np.full_like(w, 0.5) for w in model.get_weights()]
    model.set_weights(new)
    assert np.all(model._flat_weights == 0.5)
    with pytest.raises(ValueError, match="expected 8 weight arrays, got 7"):
        model.set_weights(new[:7])


def test_summary_and_lazy_sequential(rng, capsys):
    model = M.Sequential([L.LSTM(4), L.Dense(1)], seed=0)
    model.summary()
    assert "not built" in capsys.readouterr().out
    model.predict(rng.standard_normal((2, 3, 5)))
    model.summary()
    out = capsys.readouterr().out
    assert (
        "LSTM" in out and "(None, 4)" in out and f"Total params: {4 * 4 * (5 + 4 + 1) + 5:,}" in out
    )


def test_evaluate_and_predict_batching(rng):
    x, y = _task(rng, n=70)
    model = M.RNN(4, 5, 1, seed=0)
    model.compile("adam", "mse", metrics=["mae"])
    full = model.predict(x, batch_size=1000)
    np.testing.assert_allclose(model.predict(x, batch_size=16), full, rtol=1e-6, atol=1e-7)
    res = model.evaluate(x, y, batch_size=16, return_dict=True)
    assert res["loss"] == pytest.approx(float(np.mean((full - y) ** 2)), rel=1e-4)
    assert res["mae"] == pytest.approx(float(np.mean(np.abs(full - y))), rel=1e-4)


def test_pickled_model_keeps_one_flat_buffer_and_trains_like_the_original():
    # Pickle copies views separately; a model whose layers stopped sharing the flat buffer
    # would predict fine but never see its optimizer's updates.
    import pickle

    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((16, 5, 3)), rng.standard_normal((16, 1))
    model = M.LSTM(3, 4, 1, seed=0, dtype="float64")
    model.compile("adam", "mse")
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    clone = pickle.loads(pickle.dumps(model))
    for layer in clone.layers:
        for w in layer.weights.values():
            assert np.shares_memory(w, clone._flat_weights)
        for g in layer.grads.values():
            assert np.shares_memory(g, clone._flat_grads)
    np.testing.assert_array_equal(clone.predict(x), model.predict(x))
    model.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
    clone.fit(x, y, epochs=1, batch_size=8, verbose=0, shuffle=False)
    np.testing.assert_array_equal(clone.predict(x), model.predict(x))


def test_sequential_built_by_a_call_takes_any_sequence_length(rng):
    # Built by its first call, a Sequential used to keep that call's T in its shapes: a
    # later predict with another T and over 256 samples (the batched path) returned the
    # first T's shape, a single step broadcast over it, and fit refused a right y.
    model = M.Sequential([L.LSTM(4, return_sequences=True), L.Dense(1)], seed=0)
    model.predict(rng.standard_normal((2, 5, 3)))
    assert model.input_shape == (None, None, 3) and model.output_shape == (None, None, 1)
    for T in (1, 7):
        x = rng.standard_normal((300, T, 3))
        whole = model.predict(x)
        assert whole.shape == (300, T, 1)
        # Another batch size takes other kernel paths: equal up to float32 rounding.
        np.testing.assert_allclose(whole[:10], model.predict(x[:10]), rtol=1e-5, atol=1e-6)
    model.compile("sgd", "mse")
    model.fit(rng.standard_normal((8, 7, 3)), rng.standard_normal((8, 7, 1)), verbose=0)

    # Built with T fixed on purpose, it says so instead of answering another T.
    fixed = M.Sequential([L.LSTM(4, return_sequences=True), L.Dense(1)], seed=0)
    fixed.build((None, 5, 3))
    assert fixed.predict(rng.standard_normal((3, 5, 3))).shape == (3, 5, 1)
    with pytest.raises(ValueError, match=r"x must have 5 time steps.*got \(3, 7, 3\)"):
        fixed.predict(rng.standard_normal((3, 7, 3)))


def test_a_layer_belongs_to_one_model(rng):
    # Bound to a second model, a layer's weights left the first one's flat buffer: the
    # first model's fit ran, and never changed them.
    import copy
    import gc
    import pickle

    encoder = L.LSTM(4)
    first = M.Sequential([encoder, L.Dense(1)], seed=0)
    first.build((None, None, 3))
    with pytest.raises(ValueError, match="layer 'lstm.*' already belongs to another model"):
        M.Sequential([encoder, L.Dense(2)], seed=1).build((None, None, 3))
    first.build((None, None, 3))  # its own model may build again
    first.compile("sgd", "mse")
    before = encoder.get_weights()
    first.fit(rng.standard_normal((16, 5, 3)), rng.standard_normal((16, 1)), epochs=2, verbose=0)
    assert not np.array_equal(before[0], encoder.get_weights()[0])

    # Copies are models of their own, and a layer whose model is gone may join another.
    for twin in (copy.deepcopy(first), pickle.loads(pickle.dumps(first))):
        np.testing.assert_array_equal(twin.get_weights()[0], first.get_weights()[0])
        twin.fit(rng.standard_normal((4, 5, 3)), rng.standard_normal((4, 1)), verbose=0)
    del first, twin
    gc.collect()
    M.Sequential([encoder, L.Dense(2)], seed=1).build((None, None, 3))


def test_rmse_is_the_root_of_the_mean_over_all_samples(rng):
    # It was the sample-weighted mean of per-batch roots, so it moved with batch_size
    # (2.51, 2.64, 2.97 for 10, 32, 100 against 2.97 here).
    x, y = _task(rng, n=100)
    model = M.RNN(4, 5, 1, seed=0)
    model.compile("sgd", "mse", metrics=["rmse", "mae"])
    want = float(np.sqrt(np.mean((model.predict(x) - y) ** 2)))
    for batch_size in (10, 32, 100):
        got = model.evaluate(x, y, batch_size=batch_size, return_dict=True)
        assert got["rmse"] == pytest.approx(want, rel=1e-6)
        assert got["rmse"] == pytest.approx(np.sqrt(got["loss"]), rel=1e-6)
    model.compile(O.SGD(learning_rate=1e-12), "mse", metrics=["rmse"])  # weights stay put
    hist = model.fit(x, y, epochs=1, batch_size=7, shuffle=False, verbose=0)
    assert hist.history["rmse"][0] == pytest.approx(want, rel=1e-6)


def test_metric_functions_refuse_shapes_they_would_broadcast():
    y = np.array([0.0, 1.0, 2.0, 3.0])
    for metric in (fastrnn.metrics.mae, fastrnn.metrics.mse, fastrnn.metrics.rmse,
                   fastrnn.metrics.binary_accuracy):
        assert metric(y, y) in (0.0, 1.0)
        with pytest.raises(ValueError, match=r"same shape, got \(4,\) and \(4, 1\)"):
            metric(y, y[:, None])
    probs = np.eye(3)[[0, 2, 1]]
    assert fastrnn.metrics.sparse_categorical_accuracy(np.array([0, 2, 1]), probs) == 1.0
    with pytest.raises(ValueError, match="one class id per row"):
        fastrnn.metrics.sparse_categorical_accuracy(np.array([0, 2]), probs)


@pytest.mark.parametrize("cls, kwargs", [(M.LSTM, {"return_sequence": True}),
                                         (M.RNN, {"peephole": True}),
                                         (M.LSTM, {"activation": "relu"}),
                                         (M.LSTM, {"unit_forget_bias": False})])
def test_ready_models_refuse_arguments_they_would_ignore(cls, kwargs):
    # These were accepted and dropped (a typo of return_sequences gave a non-sequence
    # model; RNN(peephole=True) was even saved in the config).
    with pytest.raises(TypeError, match=f"unexpected keyword argument.*{next(iter(kwargs))}"):
        cls(3, 4, 1, **kwargs)


def test_an_optimizer_trains_one_model(rng):
    # A second model compiled with a used optimizer trained on from the first one's Adam
    # moments and iteration count, silently.
    import copy
    import pickle

    x, y = _task(rng, n=16)
    opt = O.Adam(0.01)
    first = M.LSTM(4, 5, 1, seed=0)
    first.compile(opt, "mse")
    first.fit(x, y, epochs=1, batch_size=8, verbose=0)
    first.compile(opt, "mse")  # the same model may compile again
    with pytest.raises(ValueError, match="this optimizer was compiled into another model"):
        M.LSTM(4, 5, 1, seed=0).compile(opt, "mse")
    for twin in (copy.deepcopy(first), pickle.loads(pickle.dumps(first))):
        twin.fit(x, y, epochs=1, batch_size=8, verbose=0)  # copies carry their own copy
        assert twin.optimizer is not opt and twin.optimizer.iterations == 4
    assert opt.iterations == 2


def test_training_arguments_are_checked_not_truncated(rng):
    # A second review session found these accepted silently (batch_size 2.9 ran as 2,
    # epochs=-3 trained nothing, a label 1.7 was class 1) or failing with a message
    # about something else (metrics='mae' as 'm', 'a', 'e'; one callback not in a list).
    x, y = _task(rng, n=8)
    model = M.LSTM(4, 5, 1, seed=0)
    model.compile("adam", "mse", metrics="mae")  # one metric without a list
    assert [m.name for m in model.metrics] == ["mae"]
    hist = model.fit(x, y, callbacks=C.EarlyStopping(monitor="loss"), verbose=0)
    assert "mae" in hist.history
    for kwargs, err, msg in [
        (dict(batch_size=2.9), TypeError, "`batch_size` must be an integer, got 2.9"),
        (dict(batch_size=0), ValueError, "`batch_size` must be an integer >= 1"),
        (dict(epochs=-3), ValueError, "`epochs` must be an integer >= 0"),
        (dict(epochs=2.5), TypeError, "`epochs` must be an integer"),
        (dict(callbacks=[print]), TypeError, "`callbacks` must hold fastrnn.callbacks.Callback"),
    ]:
        with pytest.raises(err, match=re.escape(msg)):
            model.fit(x, y, verbose=0, **kwargs)
    with pytest.raises(TypeError, match="`batch_size` must be an integer"):
        model.predict(x, batch_size=1.5)
    for bad in (-1, 1.7):
        with pytest.raises(ValueError, match="`patience` must be an integer >= 0"):
            C.EarlyStopping(patience=bad)
    sparse = fastrnn.losses.SparseCategoricalCrossentropy(from_logits=True)
    with pytest.raises(ValueError, match="class ids must be integers, got 1.7"):
        sparse(np.array([1.7]), np.array([[0.0, 5.0, 0.0]]))
    assert sparse(np.array([1.0]), np.array([[0.0, 5.0, 0.0]])) < 0.02  # whole floats pass


def test_save_keeps_the_built_in_metrics_beside_a_custom_one(rng, tmp_path):
    # One custom metric made save() drop every metric name, the built-ins too.
    def peak_error(y_true, y_pred):
        return float(np.max(np.abs(y_true - y_pred)))

    model = M.RNN(4, 5, 1, seed=0)
    model.compile("adam", "mse", metrics=["mae", peak_error, "accuracy"])
    with pytest.warns(UserWarning, match=r"custom metric\(s\) \['peak_error'\] are not saved"):
        model.save(tmp_path / "m.npz")
    loaded = M.load(tmp_path / "m.npz")
    assert [m.name for m in loaded.metrics] == ["mae", "accuracy"]
    own_mae = fastrnn.metrics.Metric(lambda t, p: 0.0, "mae")  # a custom function named mae
    model.compile("adam", "mse", metrics=[own_mae])
    with pytest.warns(UserWarning, match="not saved"):
        model.save(tmp_path / "n.npz")
    assert M.load(tmp_path / "n.npz").metrics == []
