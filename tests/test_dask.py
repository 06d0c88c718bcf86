"""Batch inference over Dask: the threaded scheduler and a distributed LocalCluster on
127.0.0.1 give ``model.predict``'s result whatever the chunking of the input.

Bitwise equality holds only when the blocks are the batches ``predict`` uses: the kernels
pick their summation order by batch size (e.g. B <= 2 reads w_hh as stored), so a row
computed in a block of another size may differ in the last bit or two."""

import numpy as np
import pytest

import fastrnn
import fastrnn.dask as fdask

da = pytest.importorskip("dask.array", reason="dask not installed (pip install '.[dask]')")


def assert_same(got, expected):
    assert got.shape == expected.shape and got.dtype == expected.dtype
    if got.dtype == np.float32:
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15)


def _model(return_sequences=False, dtype="float32"):
    return fastrnn.models.LSTM(
        3, 12, 2, num_layers=2, return_sequences=return_sequences, dtype=dtype, seed=0
    )


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).standard_normal((301, 9, 3))


@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("chunks", [(301, 9, 3), (64, 9, 3), (50, 4, 2)])
def test_threaded_scheduler_equals_predict(x, return_sequences, dtype, chunks):
    model = _model(return_sequences, dtype)
    lazy = fdask.predict(model, da.from_array(x, chunks=chunks))
    expected = model.predict(x)
    assert lazy.shape == expected.shape and lazy.dtype == expected.dtype
    got = lazy.compute(scheduler="threads", num_workers=2)
    assert_same(got, expected)
    if chunks[0] == x.shape[0]:  # one block = predict's own batch: bit for bit
        np.testing.assert_array_equal(got, expected)


def test_model_predict_on_a_dask_array_is_lazy_and_equal(x):
    model = _model()
    lazy = model.predict(da.from_array(x, chunks=(100, 9, 3)))
    assert isinstance(lazy, da.Array)
    assert_same(lazy.compute(scheduler="threads"), model.predict(x))


def test_numpy_input_is_chunked_and_the_model_is_one_task(x):
    model = _model()
    lazy = fdask.predict(model, x, chunks=100)
    assert lazy.chunks[0] == (100, 100, 100, 1)
    graph = dict(lazy.__dask_graph__())
    assert sum(1 for v in graph.values() if v is model or getattr(v, "value", None) is model) <= 1
    assert_same(lazy.compute(scheduler="sync"), model.predict(x))


def test_local_cluster_on_loopback_equals_predict(x):
    distributed = pytest.importorskip("distributed", reason="distributed not installed")
    model = _model(return_sequences=True)
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",  # a free loopback port: None still took 8787
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        lazy = fdask.predict(model, x, chunks=80)
        got = client.compute(lazy).result(timeout=120)
        assert len(client.scheduler_info()["workers"]) == 2
    assert_same(got, model.predict(x))


def test_bad_arguments(x):
    model = _model()
    with pytest.raises(TypeError, match="`model` must be a fastrnn model, got str"):
        fdask.predict("model", x)
    with pytest.raises(ValueError, match=r"`x` must be 3-D \(batch, timesteps, features\), got"):
        fdask.predict(model, x[..., 0])
    with pytest.raises(ValueError, match="`x` must have 3 features"):
        fdask.predict(model, np.zeros((4, 5, 2)))
    with pytest.raises(ValueError, match="`chunks` must be a positive integer or None, got 0"):
        fdask.predict(model, x, chunks=0)
    with pytest.raises(ValueError, match="`x` must hold real numbers"):
        fdask.predict(model, da.from_array(np.zeros((2, 3, 3), dtype=complex)))
