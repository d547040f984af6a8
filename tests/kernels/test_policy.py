"""The kernel policy: switching the kernels off, thresholds, and the public wrappers."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest

pytest.importorskip("numba")

import softgrad
from softgrad import _delegation, kernels
from softgrad._agnostic._derivatives import softmax_vjp as ref_softmax_vjp
from softgrad._agnostic._losses import cross_entropy_and_grad as ref_cross_entropy_and_grad
from softgrad._agnostic._softmax import log_softmax as ref_log_softmax
from softgrad._agnostic._softmax import softmax as ref_softmax

# -------------------------------------------------------- switching it off ---


class TestDisabling:
    x = np.linspace(-3, 3, 64).reshape(8, 8)

    def test_context_manager(self, calls: Counter[str]) -> None:
        with kernels.disabled():
            assert not kernels.enabled()
            softgrad.softmax(self.x)
        assert kernels.enabled()
        assert calls["forward_rows"] == 0
        softgrad.softmax(self.x)
        assert calls["forward_rows"] == 1

    def test_set_enabled(self, calls: Counter[str]) -> None:
        kernels.set_enabled(False)
        try:
            got = softgrad.log_softmax(self.x)
        finally:
            kernels.set_enabled(True)
        np.testing.assert_array_equal(got, ref_log_softmax(self.x))
        assert calls["forward_rows"] == 0

    def test_environment_variable(
        self, calls: Counter[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("SOFTGRAD_DISABLE_KERNELS", "1")
        got = softgrad.cross_entropy_and_grad(self.x, np.zeros(8, int))
        want = ref_cross_entropy_and_grad(self.x, np.zeros(8, int))
        np.testing.assert_array_equal(got[1], want[1])
        assert calls["cross_entropy_rows"] == 0

    def test_without_numba(self, calls: Counter[str], monkeypatch: pytest.MonkeyPatch) -> None:
        # as if numba were not installed: everything runs on the reference path
        monkeypatch.setitem(kernels._module, "numba", None)
        assert not kernels.available()
        assert not kernels.enabled()
        s = softgrad.softmax(self.x)
        np.testing.assert_array_equal(s, ref_softmax(self.x))
        np.testing.assert_array_equal(softgrad.softmax_vjp(s, self.x), ref_softmax_vjp(s, self.x))
        assert sum(calls.values()) == 0

    def test_import_does_not_load_numba(self) -> None:
        import subprocess
        import sys

        code = "import sys, softgrad; print('numba' in sys.modules)"
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == "False", out.stderr


@pytest.mark.parametrize(
    "name",
    [
        "softmax",
        "log_softmax",
        "logsumexp",
        "softmax_vjp",
        "log_softmax_vjp",
        "cross_entropy_and_grad",
    ],
)
def test_public_functions_are_the_wrappers_with_reference_docs(name: str) -> None:
    public = getattr(softgrad, name)
    assert public is getattr(_delegation, name)
    assert public.__doc__ == public.__wrapped__.__doc__
    assert public.__doc__


class TestPolicy:
    def test_defaults_are_the_measured_thresholds(self) -> None:
        p = kernels.Policy()
        assert (p.enabled, p.min_size, p.serial_max, p.chunk) == (True, 4096, 8192, 32768)

    def test_context_manager_is_scoped_and_nested(self) -> None:
        before = kernels.current_policy()
        with kernels.policy(min_size=0) as outer:
            assert outer.min_size == 0
            with kernels.policy(chunk=5) as inner:
                assert (inner.min_size, inner.chunk) == (0, 5)
                assert kernels.current_policy() == inner
            assert kernels.current_policy().chunk == before.chunk
        assert kernels.current_policy() == before

    def test_thread_local(self) -> None:
        import threading

        seen: list[int] = []
        with kernels.policy(min_size=0):
            t = threading.Thread(target=lambda: seen.append(kernels.current_policy().min_size))
            t.start()
            t.join()
        assert seen == [kernels.Policy().min_size]

    def test_set_policy_is_process_wide_and_seen_inside_blocks(self) -> None:
        try:
            kernels.set_policy(serial_max=5)
            assert kernels.current_policy().serial_max == 5
            with kernels.policy(min_size=0):
                assert kernels.current_policy().serial_max == 5
                kernels.set_enabled(False)
                assert not kernels.enabled()
        finally:
            kernels.set_policy(serial_max=kernels.Policy().serial_max, enabled=True)
        assert kernels.current_policy() == kernels.Policy()

    @pytest.mark.parametrize(
        ("changes", "error", "match"),
        [
            ({"min_sise": 0}, TypeError, "unknown kernel policy field.*min_sise.*min_size"),
            ({"chunk": 0}, ValueError, "chunk must be an int >= 1, got 0"),
            ({"serial_max": -1}, ValueError, "serial_max must be an int >= 0, got -1"),
            ({"min_size": 2.5}, TypeError, "min_size must be an int >= 0, got 2.5"),
            ({"enabled": "no"}, TypeError, "enabled must be True or False, got 'no'"),
        ],
    )
    def test_bad_changes_are_refused(self, changes: dict[str, Any], error: Any, match: str) -> None:
        with pytest.raises(error, match=match), kernels.policy(**changes):
            pass  # pragma: no cover - never entered
        with pytest.raises(error, match=match):
            kernels.set_policy(**changes)
        assert kernels.current_policy() == kernels.Policy()

    def test_min_size_decides_the_path(self, calls: Counter[str]) -> None:
        x = np.zeros((4, 8))
        with kernels.policy(min_size=33):
            softgrad.softmax(x)
        assert calls["forward_rows"] == 0
        with kernels.policy(min_size=32):
            softgrad.softmax(x)
        assert calls["forward_rows_serial"] == 1

    def test_serial_max_decides_the_build(self, calls: Counter[str]) -> None:
        x = np.zeros((4, 8))
        with kernels.policy(serial_max=31):
            softgrad.softmax(x)
        assert calls["forward_rows"] == 1
        assert calls["forward_rows_serial"] == 0
