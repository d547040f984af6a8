"""How the kernels load: the first call after an install never waits for numba to compile.

Fresh interpreters (``subprocess``) run without ``SOFTGRAD_KERNELS_WAIT`` (which
the suite's conftest sets), as a user's program does. Timings stay in
``softgrad bench first_call``; these tests check states: whether the call
returned while the kernels were not loaded, whether a warm-up was started.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from softgrad import kernels

pytest.importorskip("numba")

_FIRST_CALL = """
import numpy as np
import softgrad
from softgrad import kernels
x = np.random.default_rng(0).standard_normal((64, 4096))
s = softgrad.softmax(x)
state = [kernels.loaded(), kernels.warm_up_process() is not None, kernels.cache_ready()]
with kernels.disabled():
    state.append(float(np.abs(s - softgrad.softmax(x)).max()))
proc = kernels.warm_up_process()
if proc is not None:  # the test does not wait for the compile
    proc.terminate()
    proc.wait()
print(*state)
"""


def _fresh(code: str, **env: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if k != "SOFTGRAD_KERNELS_WAIT"}
    src = str(Path(kernels.__file__).resolve().parents[2])
    clean["PYTHONPATH"] = src + os.pathsep + clean.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code],
        capture_output=True,
        text=True,
        env={**clean, **env},
        check=True,
        timeout=600,
    )
    return proc.stdout.split()


def test_first_call_with_an_empty_cache_is_served_by_the_reference(tmp_path):
    # an empty numba cache (a fresh install): the call returns the right values while the
    # kernels are not loaded, and a background warm-up has been started to compile them
    loaded, warming, ready, error = _fresh(_FIRST_CALL, NUMBA_CACHE_DIR=str(tmp_path))
    assert (loaded, warming, ready) == ("False", "True", "False")
    assert float(error) <= 1e-15


@pytest.mark.slow
def test_after_the_warm_up_a_new_process_loads_the_kernels_from_the_cache(tmp_path):
    # the warm-up fills the cache and leaves the stamp; the next process's first call
    # then loads the kernels at once and starts no warm-up
    cache = tmp_path / "numba"
    env = {k: v for k, v in os.environ.items() if k != "SOFTGRAD_KERNELS_WAIT"}
    env["NUMBA_CACHE_DIR"] = str(cache)
    src = str(Path(kernels.__file__).resolve().parents[2])
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    subprocess.run(
        [sys.executable, "-m", "softgrad.kernels._warm"], env=env, check=True, timeout=900
    )
    stamps = list(cache.glob("softgrad-kernels-*.ready"))
    assert len(stamps) == 1
    loaded, warming, ready, error = _fresh(_FIRST_CALL, NUMBA_CACHE_DIR=str(cache))
    assert (loaded, warming, ready) == ("True", "False", "True")
    assert float(error) <= 1e-15
    # the linear_cross_entropy kernels (compiled on first call, not behind the stamp)
    # come from the cache too: no compile in the user's process, either dtype
    misses, hits = _fresh(_LINEAR_CALLS, NUMBA_CACHE_DIR=str(cache))
    assert (int(misses), int(hits) > 0) == (0, True)


_LINEAR_CALLS = """
import numpy as np
import softgrad
from softgrad.kernels import _linear
for dtype in (np.float32, np.float64):
    h = np.linspace(-1.0, 1.0, 40, dtype=dtype).reshape(8, 5)
    w = np.linspace(1.0, -1.0, 35, dtype=dtype).reshape(7, 5)
    y = np.array([0, 6, 3, 2, 1, 5, 4, 0])
    softgrad.linear_cross_entropy(h, w, y, class_weight=np.ones(7, dtype=dtype))
    softgrad.linear_cross_entropy_and_grad(h, w, y)
stats = [_linear.lse_block.stats, _linear.grad_block.stats]
print(sum(sum(s.cache_misses.values()) for s in stats), sum(sum(s.cache_hits.values()) for s in stats))
"""


def test_the_stamp_lives_in_numbas_cache_folder(tmp_path, monkeypatch):
    # NUMBA_CACHE_DIR moves numba's cache, and the stamp with it; no stamp, no ready cache
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    assert kernels.cache_folder() == tmp_path
    assert kernels.cache_stamp().parent == tmp_path
    assert not kernels.cache_ready()
    kernels.cache_stamp().write_text("ready\n", encoding="utf-8")
    assert kernels.cache_ready()
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert not kernels.cache_ready()


def test_the_stamp_names_the_python_and_the_sources(tmp_path, monkeypatch):
    # the stamp's name is a digest of what invalidates numba's cache: another Python
    # version gives another stamp, so an old stamp never claims a stale cache is ready
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    name = kernels.cache_stamp().name
    assert name == kernels.cache_stamp().name
    monkeypatch.setattr(sys, "version", sys.version + " (another build)")
    assert kernels.cache_stamp().name != name


def test_wait_loads_in_this_thread():
    k = kernels.load(wait=True)
    assert k is not None
    assert kernels.loaded()
    assert kernels.load() is k


# ------------------------------------------------- one warm-up at a time ---


@pytest.fixture
def other_process():
    """A live process that is not this one (what another program's warm-up looks like)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    proc.kill()
    proc.wait()


def test_a_live_warm_up_elsewhere_is_seen(tmp_path, monkeypatch, other_process):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    marker = kernels.warm_up_marker()
    assert marker.parent == tmp_path
    assert not kernels.warming_elsewhere()  # no marker
    marker.write_text(f"{other_process.pid}\n", encoding="utf-8")
    assert kernels.warming_elsewhere()
    marker.write_text(f"{os.getpid()}\n", encoding="utf-8")
    assert not kernels.warming_elsewhere()  # our own


def test_a_warm_up_left_behind_is_not_waited_for(tmp_path, monkeypatch, other_process):
    # the marker of a process that died, or one older than the patience, does not count
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    marker = kernels.warm_up_marker()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    marker.write_text(f"{dead.pid}\n", encoding="utf-8")
    assert not kernels.warming_elsewhere()
    marker.write_text(f"{other_process.pid}\n", encoding="utf-8")
    old = marker.stat().st_mtime - kernels.WARM_UP_PATIENCE - 60
    os.utime(marker, (old, old))
    assert not kernels.warming_elsewhere()


def test_only_one_process_claims_the_warm_up(tmp_path, monkeypatch, other_process):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    first = kernels._claim_warm_up()
    assert first == kernels.warm_up_marker()
    first.write_text(f"{other_process.pid}\n", encoding="utf-8")  # what the caller writes
    assert kernels._claim_warm_up() is None  # held by a live warm-up
    other_process.kill()
    other_process.wait()
    assert kernels._claim_warm_up() == first  # a dead one's marker is taken over


def test_first_call_while_another_process_warms_up_starts_no_second_one(
    tmp_path, monkeypatch, other_process
):
    # two programs started at once after an install: the second finds the first's warm-up
    # running, lets the reference serve and compiles nothing itself
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    kernels.warm_up_marker().write_text(f"{other_process.pid}\n", encoding="utf-8")
    loaded, warming, ready, error = _fresh(_FIRST_CALL, NUMBA_CACHE_DIR=str(tmp_path))
    assert (loaded, warming, ready) == ("False", "False", "False")
    assert float(error) <= 1e-15
    assert kernels.warm_up_marker().read_text(encoding="utf-8").strip() == str(other_process.pid)


def test_the_warm_up_removes_its_marker_only(tmp_path, monkeypatch):
    from softgrad.kernels import _warm

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(_warm, "compile_all", lambda: 0)  # numba missing: nothing compiled
    marker = kernels.warm_up_marker()
    marker.write_text(f"{os.getpid()}\n", encoding="utf-8")
    assert _warm.main() == 1
    assert not marker.exists()
    marker.write_text("1\n", encoding="utf-8")  # another process's warm-up
    assert _warm.main() == 1
    assert marker.exists()


def test_while_another_process_warms_up_load_looks_again_at_most_once_a_second(
    tmp_path, monkeypatch, other_process
):
    # each look digests the kernel sources: a loop of kernel-eligible calls must not pay
    # that per call, so after seeing a foreign warm-up, load() waits LOOK_AGAIN_S to look
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(kernels, "_module", {})
    kernels.warm_up_marker().write_text(f"{other_process.pid}\n", encoding="utf-8")
    looks = []
    seen = kernels.warming_elsewhere
    monkeypatch.setattr(kernels, "warming_elsewhere", lambda: looks.append(1) or seen())
    now = [100.0]
    monkeypatch.setattr(kernels.time, "monotonic", lambda: now[0])
    assert [kernels.load(wait=False) for _ in range(5)] == [None] * 5
    assert len(looks) == 1
    now[0] += kernels.LOOK_AGAIN_S
    assert kernels.load(wait=False) is None
    assert len(looks) == 2
    assert kernels.warm_up_process() is None  # no second warm-up started
