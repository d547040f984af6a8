"""The benchmarks' kernel-policy contact point and the timing helpers (structure, never speed)."""

from __future__ import annotations

import numpy as np
import pytest

import softgrad
from softgrad import kernels
from softgrad.bench import _timing
from softgrad.bench._policy import kernel_policy


@pytest.fixture
def kernel_loads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    pytest.importorskip("numba")
    calls: list[int] = []
    original = kernels.load

    def counted() -> object:
        calls.append(1)
        return original()

    monkeypatch.setattr(kernels, "load", counted)
    return calls


def test_min_size_zero_sends_small_arrays_to_the_kernel(kernel_loads: list[int]) -> None:
    x = np.linspace(-1.0, 1.0, 8).reshape(2, 4)
    softgrad.softmax(x)
    assert kernel_loads == []  # below the default threshold: the reference
    with kernel_policy(min_size=0):
        got = softgrad.softmax(x)
    assert len(kernel_loads) == 1
    with kernels.disabled():
        np.testing.assert_allclose(got, softgrad.softmax(x), rtol=1e-14)
    softgrad.softmax(x)
    assert len(kernel_loads) == 1  # the threshold is back after the block


def test_enabled_false_keeps_large_arrays_on_the_reference(kernel_loads: list[int]) -> None:
    with kernel_policy(enabled=False):
        softgrad.softmax(np.zeros((128, 64)))
    assert kernel_loads == []


def test_unknown_policy_field_is_refused() -> None:
    with pytest.raises(TypeError, match="min_sise"), kernel_policy(min_sise=0):
        pass  # pragma: no cover - never reached


def test_measure_warms_up_twice_then_times_at_least_min_reps() -> None:
    calls: list[int] = []
    times, other, own = _timing.measure(lambda: calls.append(1), budget_s=0.0, min_reps=5)
    assert len(times) == 5
    assert len(calls) == 7
    assert other >= 0.0
    assert own >= 0.0


def test_timed_retries_while_contended_and_stops_at_tries() -> None:
    calls: list[int] = []
    # max_other below 0: every try counts as contended, so all tries run
    times, _, _ = _timing.timed(lambda: calls.append(1), 0.0, 3, -1.0, tries=3, wait_s=0.0)
    assert len(times) == 3
    assert len(calls) == 3 * (2 + 3)
    calls.clear()
    _timing.timed(lambda: calls.append(1), 0.0, 3, 1e9, tries=3, wait_s=0.0)
    assert len(calls) == 2 + 3  # clean at once: one try


def test_timed_once_calls_once() -> None:
    calls: list[int] = []
    wall, other = _timing.timed_once(lambda: calls.append(1))
    assert calls == [1]
    assert wall >= 0.0
    assert other >= 0.0
