r"""Fixtures of the kernel tests: kernels at every size, and a count of the kernel calls.

Every kernel is compared with the reference implementation on the same inputs
(scikit-learn's ``test_loss_same_as_C_functions`` habit), including the
behaviour contract. The size threshold below which the delegation layer keeps
the reference path is set to 0 so that small hypothesis examples reach the
kernels, and the chunk length is made small in some tests so that the
long-row (split) path runs.

Tolerances: the kernels use the reference's formulas but sum in another
order, use a polynomial ``exp`` (< 1 ulp) and multiply by reciprocals, so
results agree to :math:`c\,\epsilon\,(|r| + n)` with a small constant
:math:`c` — the conditioning bound of the DESIGN's accuracy contract — and
special values (NaN, ±inf, exact zeros of masked entries) agree exactly.

Without numba the compiled-kernel modules are not collected.
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from softgrad import kernels

if importlib.util.find_spec("numba") is None:
    collect_ignore = ["test_cross_entropy.py", "test_exp.py", "test_softmax.py"]


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
