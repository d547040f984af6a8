"""linear_cross_entropy on Dask arrays equals the NumPy version (threads, and a 2-process LocalCluster)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import softgrad as sg

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")

N, D, K = 41, 5, 17
CASES = list(itertools.product([False, True], [0.0, 0.1], [0.0, 0.05], ["mean", "sum", "none"]))


def _data(seed=0):
    rng = np.random.default_rng(seed)
    h, w = rng.normal(size=(N, D)), rng.normal(size=(K, D))
    b, cw = rng.normal(size=K), rng.uniform(0.2, 2.0, size=K)
    y = rng.integers(0, K, size=N)
    y[[1, 20, 21]] = -100
    return h, w, b, cw, y


def _compare(got, want):
    for g, e in zip(got, want, strict=True):
        if e is None:
            assert g is None
        else:
            np.testing.assert_allclose(g, e, rtol=1e-12, atol=1e-13, equal_nan=True)


@pytest.mark.parametrize(("weights", "eps", "zl", "red"), CASES)
def test_blocks_match_numpy(weights, eps, zl, red):
    h, w, b, cw, y = _data()
    opts = {"bias": b, "class_weight": cw if weights else None, "label_smoothing": eps,
            "z_loss": zl, "reduction": red}  # fmt: skip
    go = np.linspace(-1.0, 2.0, N) if red == "none" else np.array(0.7)
    hd = da.from_array(h, chunks=(9, 2))  # uneven row blocks; D split (merged inside)
    res = sg.linear_cross_entropy_and_grad(
        hd, w, da.from_array(y, chunks=13), grad_output=go, **opts
    )
    assert isinstance(res.grad_h, da.Array)
    assert res.grad_h.chunks[0] == hd.chunks[0]
    got = dask.compute(*res, scheduler="threads")
    _compare(got, sg.linear_cross_entropy_and_grad(h, w, y, grad_output=go, **opts))
    loss = sg.linear_cross_entropy(hd, w, y, **opts)
    np.testing.assert_allclose(loss.compute(), sg.linear_cross_entropy(h, w, y, **opts), rtol=1e-12)


def test_mean_over_no_token_is_nan_with_zero_gradients():
    h, w, _, _, _ = _data()
    y = np.full(N, -100)
    res = dask.compute(*sg.linear_cross_entropy_and_grad(da.from_array(h, chunks=10), w, y)[:3])
    assert np.isnan(res[0])
    assert not np.any(res[1])
    assert not np.any(res[2])


def test_needs_two_dimensional_h():
    h, w, _, _, y = _data()
    with pytest.raises(ValueError, match="reshape h"):
        sg.linear_cross_entropy(da.from_array(h.reshape(1, N, D)), w, y.reshape(1, N))


def test_on_a_local_cluster_of_two_processes():
    distributed = pytest.importorskip("distributed")
    h, w, b, cw, y = _data(1)
    opts = {"bias": b, "class_weight": cw, "z_loss": 1e-2, "label_smoothing": 0.1}
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        res = sg.linear_cross_entropy_and_grad(da.from_array(h, chunks=6), w, y, **opts)
        got = client.compute(list(res), sync=True)
        workers = client.run(lambda: "softgrad.kernels._linear" in __import__("sys").modules)
    assert len(workers) == 2
    _compare(got, sg.linear_cross_entropy_and_grad(h, w, y, **opts))
