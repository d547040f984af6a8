"""Fixtures shared by the model tests."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_iris


@pytest.fixture(scope="module")
def iris():
    """Iris, standardised: (X, y) with y in {0, 1, 2}."""
    X, y = load_iris(return_X_y=True)
    return (X - X.mean(0)) / X.std(0), y


@pytest.fixture
def problem():
    """A small random multinomial problem: ``problem(n, d, k, seed, dtype) -> (X, y, sw)``."""

    def make(n=40, d=5, k=4, seed=0, dtype=np.float64):
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((n, d)).astype(dtype)
        y = rng.integers(0, k, size=n).astype(np.intp)
        sw = rng.uniform(0.2, 2.0, size=n).astype(dtype)
        return X, y, sw

    return make
