"""Shared fixtures: the ``xp`` fixture runs a test once per installed backend."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from helpers import BACKENDS, Backend

# the kernel tests must reach the compiled kernels: compile them in the calling thread
# instead of serving the reference while a background warm-up compiles them
os.environ.setdefault("SOFTGRAD_KERNELS_WAIT", "1")

settings.register_profile(
    "default", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("ci", deadline=None, max_examples=40, derandomize=True)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "default")
)

try:  # JAX computes in float32 unless told otherwise; the tests compare float64 results
    import jax

    jax.config.update("jax_enable_x64", True)
except ImportError:  # pragma: no cover - jax is optional
    pass


@pytest.fixture(params=BACKENDS, ids=[b.name for b in BACKENDS])
def xp(request: pytest.FixtureRequest) -> Backend:
    """A backend: ``xp.asarray(numpy_like)`` builds an input, ``to_numpy`` reads results."""
    return request.param
