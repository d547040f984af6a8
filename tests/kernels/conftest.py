"""Fixtures of the kernel tests: kernels at every size, and a count of the kernel calls."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from softgrad import kernels


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Kernels used at any size; counts the kernel calls the delegation layer makes
    (``calls["forward_rows"]`` all of them, ``calls["forward_rows_serial"]`` the serial ones)."""
    k = kernels.load()
    if k is None:
        pytest.skip("numba is not installed")
    counter: Counter[str] = Counter()
    for name in ("forward_rows", "vjp_rows", "cross_entropy_rows"):
        for variant in (name, name + "_serial"):
            original = getattr(k, variant)

            def spy(*args: Any, _f: Any = original, _n: str = name, _v: str = variant) -> Any:
                counter[_n] += 1  # every call of the family
                if _v != _n:
                    counter[_v] += 1  # the serial build's calls
                return _f(*args)

            monkeypatch.setattr(k, variant, spy)
    with kernels.policy(min_size=0):
        yield counter


@pytest.fixture(params=[32768, 3], ids=["parallel-whole-rows", "parallel-split-rows"])
def chunk(request: pytest.FixtureRequest) -> Iterator[int]:
    """Run once with whole rows per thread and once with rows split into chunks of 3,
    through the parallel kernels even when small."""
    value: int = request.param
    with kernels.policy(serial_max=0, chunk=value):
        yield value
