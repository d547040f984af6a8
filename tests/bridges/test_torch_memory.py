"""softgrad.torch's output-buffer cache: reuse once dropped, never while any view lives."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

import softgrad.torch as sgt
from softgrad import kernels
from softgrad.torch import _memory
from softgrad.torch._memory import MIN_BYTES, BufferCache

ROWS, N = 64, 8192  # 2 MiB of float32: above MIN_BYTES, so cached


@pytest.fixture
def fresh_cache() -> Iterator[None]:
    """The bridge's cache emptied, at its default limit, before and after the test."""
    sgt.empty_cache()
    previous = sgt.set_cache_limit(_memory.DEFAULT_LIMIT_BYTES)
    with kernels.policy(min_size=0):
        yield
    sgt.set_cache_limit(previous)
    sgt.empty_cache()


def _x(seed: int = 0) -> Any:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(ROWS, N, generator=g, requires_grad=True)


class TestBufferCache:
    def test_dropped_buffer_is_reused(self) -> None:
        c = BufferCache(limit_bytes=64 << 20)
        a = c.empty((256, 1024), np.float32)
        address = a.ctypes.data
        del a
        b = c.empty((1024, 256), np.float32)
        assert b.ctypes.data == address
        assert b.shape == (1024, 256)

    def test_a_view_keeps_its_buffer(self) -> None:
        c = BufferCache(limit_bytes=64 << 20)
        a = c.empty((256, 1024), np.float32)
        view = a[3:].reshape(-1)[::2]  # a view of a view: its base is the cache's buffer
        view[:] = 7.0
        del a
        b = c.empty((256, 1024), np.float32)
        b[:] = -1.0
        assert np.all(view == 7.0)
        assert not np.shares_memory(b, view)

    def test_small_buffers_are_plain_arrays(self) -> None:
        c = BufferCache(limit_bytes=64 << 20)
        a = c.empty((16,), np.float64)
        assert a.flags.owndata
        del a
        assert c.idle_bytes() == 0

    def test_limit_and_clear(self) -> None:
        c = BufferCache(limit_bytes=3 * MIN_BYTES)
        arrays = [c.empty((MIN_BYTES,), np.uint8) for _ in range(5)]
        del arrays
        assert c.idle_bytes() == 5 * MIN_BYTES  # dropped since the last allocation
        keep = c.empty((2 * MIN_BYTES,), np.uint8)  # an allocation applies the limit
        assert c.idle_bytes() <= 3 * MIN_BYTES
        assert c.clear() > 0
        assert c.idle_bytes() == 0
        keep[:] = 1  # still usable: it left the cache with its last view

    def test_limit_zero_caches_nothing(self) -> None:
        c = BufferCache(limit_bytes=0)
        a = c.empty((2 * MIN_BYTES,), np.uint8)
        assert a.flags.owndata
        del a
        assert c.idle_bytes() == 0

    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.tuples(st.booleans(), st.integers(1, 3), st.integers(0, 7)), max_size=40))
    def test_live_arrays_never_share_memory(self, steps: list[tuple[bool, int, int]]) -> None:
        # allocate (size in MiB) or drop the k-th live array; every live array keeps its stamp
        c = BufferCache(limit_bytes=4 * MIN_BYTES)
        live: list[tuple[np.ndarray, int]] = []
        stamp = 0
        for allocate, mib, k in steps:
            # no local name may keep an array alive: the list is the only holder
            if allocate or not live:
                stamp += 1
                live.append((c.empty((mib * MIN_BYTES // 4,), np.float32), stamp))
                live[-1][0][:] = stamp
                assert c.idle_bytes() <= 4 * MIN_BYTES  # the limit holds after each allocation
            else:
                del live[k % len(live)]
            assert all(a[0] == s and a[-1] == s for a, s in live)

    def test_threads_get_distinct_buffers(self) -> None:
        c = BufferCache(limit_bytes=64 << 20)
        failures: list[str] = []

        def work(tag: int) -> None:
            for _ in range(200):
                a = c.empty((MIN_BYTES // 4,), np.float32)
                a[:] = tag
                if not np.all(a == tag):
                    failures.append(f"thread {tag} saw another thread's writes")

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == []


class TestBridgeOutputs:
    def test_training_step_reuses_memory(self, fresh_cache: None) -> None:
        x = _x()
        cot = torch.randn(ROWS, N)
        seen = set()
        for step in range(4):
            x.grad = None
            s = sgt.softmax(x)
            s.backward(cot)
            now = {s.data_ptr(), x.grad.data_ptr()}
            assert len(now) == 2
            if step > 0:  # S and the gradient live in the buffers of the first step
                assert now == seen
            seen = now
            del s

    def test_live_outputs_keep_their_values(self, fresh_cache: None) -> None:
        x = _x()
        s1 = sgt.softmax(x)
        head = s1[:2].clone()
        kept = s1.view(-1)[: 2 * N]  # only a view of the first output stays alive
        del s1
        s2 = sgt.softmax(x * 2.0)
        assert kept.data_ptr() != s2.data_ptr()
        torch.testing.assert_close(kept.view(2, N), head)

    def test_saved_tensors_survive_other_steps(self, fresh_cache: None) -> None:
        x = _x()
        z = x.detach().clone().requires_grad_()
        cot = torch.randn(ROWS, N)
        loss = (sgt.log_softmax(x) * cot).sum()  # log S / S saved in the graph only
        for seed in range(3):  # other outputs come and go meanwhile
            sgt.softmax(_x(seed + 1)).sum().backward()
        loss.backward()
        (torch.log_softmax(z, -1) * cot).sum().backward()
        torch.testing.assert_close(x.grad, z.grad)

    def test_cross_entropy_gradient_held_as_grad(self, fresh_cache: None) -> None:
        x = _x()
        y = torch.arange(ROWS) % N
        sgt.cross_entropy(x, y).backward()
        held = x.grad
        expected = held.clone()
        x.grad = None
        sgt.cross_entropy(x * 3.0, y)  # needs a gradient buffer: must not take held's
        torch.testing.assert_close(held, expected)

    def test_empty_cache_and_limit(self, fresh_cache: None) -> None:
        x = _x()
        for _ in range(2):
            sgt.softmax(x.detach())
        assert sgt.cached_bytes() >= ROWS * N * 4
        assert sgt.empty_cache() >= ROWS * N * 4
        assert sgt.cached_bytes() == 0
        assert sgt.set_cache_limit(0) == _memory.DEFAULT_LIMIT_BYTES
        for _ in range(2):
            sgt.softmax(x.detach())
        assert sgt.cached_bytes() == 0

    @pytest.mark.parametrize("bad", [-1, 1.5, True, "1GB"])
    def test_bad_limit_names_the_fix(self, bad: Any) -> None:
        with pytest.raises(ValueError, match="limit_bytes must be an int >= 0"):
            sgt.set_cache_limit(bad)


class TestEnvironment:
    @pytest.mark.parametrize(("value", "expected"), [("0", 0), ("1.5", 3 << 19), (" ", None)])
    def test_size_in_mib(self, monkeypatch: pytest.MonkeyPatch, value: str, expected: Any) -> None:
        monkeypatch.setenv("SOFTGRAD_TORCH_CACHE_MB", value)
        want = _memory.DEFAULT_LIMIT_BYTES if expected is None else expected
        assert _memory._limit_from_environment() == want

    @pytest.mark.parametrize("value", ["-1", "lots", "nan", "inf"])
    def test_bad_value_names_the_variable(
        self, monkeypatch: pytest.MonkeyPatch, value: str
    ) -> None:
        monkeypatch.setenv("SOFTGRAD_TORCH_CACHE_MB", value)
        with pytest.raises(ValueError, match="SOFTGRAD_TORCH_CACHE_MB"):
            _memory._limit_from_environment()
