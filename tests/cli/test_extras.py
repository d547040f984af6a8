"""A missing extra is reported with the ``pip install`` line that adds it, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import softgrad

_BLOCK = """
import sys

class _Uninstalled:
    # wraps each import finder so that the blocked packages look uninstalled:
    # importing them fails and importlib.util.find_spec returns None
    def __init__(self, finder):
        self.finder = finder

    def __getattr__(self, attr):
        return getattr(self.finder, attr)

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            return None
        return self.finder.find_spec(name, path, target)

sys.meta_path[:] = [_Uninstalled(f) for f in sys.meta_path]
"""


def run_without(blocked: list[str], code: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter where importing ``blocked`` fails as if uninstalled."""
    src = str(Path(softgrad.__file__).parents[1])  # this checkout's softgrad, whatever the cwd
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    program = f"BLOCKED = {blocked!r}\n{_BLOCK}\n{code}"
    return subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        **kwargs,
    )


@pytest.mark.parametrize(
    ("blocked", "args"),
    [
        (["click"], ["--help"]),
        (["rich"], ["--help"]),
        (["sklearn"], ["train", "-q"]),
        (["scipy"], ["train", "-q"]),
        (["sklearn"], ["predict", "model.npz", "data.csv"]),
    ],
    ids=["click", "rich", "sklearn-train", "scipy-train", "sklearn-predict"],
)
def test_cli_names_the_extra(tmp_path, blocked, args):
    done = run_without(blocked, f"from softgrad.cli import main\nmain({args!r})", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ")
    assert last.endswith("install it with: pip install 'softgrad[cli]'")
    assert list(tmp_path.iterdir()) == []  # no run folder started


def test_core_works_without_any_extra():
    # the core install is NumPy + array-api-compat: with every extra missing (numba included)
    # the functions still run, on arrays large enough to be offered to the kernels
    extras = ["sklearn", "scipy", "sympy", "click", "rich", "matplotlib", "numba", "torch",
              "jax", "dask", "distributed", "pyarrow"]  # fmt: skip
    done = run_without(
        extras,
        "import numpy as np, softgrad as sg\n"
        "z = np.random.default_rng(0).normal(size=(64, 200))\n"
        "s = sg.softmax(z)\n"
        "assert np.allclose(s.sum(axis=1), 1)\n"
        "loss, grad = sg.cross_entropy_and_grad(z, np.arange(64) % 200)\n"
        "assert np.allclose(grad, (s - np.eye(200)[np.arange(64) % 200]) / 64)\n"
        "print(float(sg.cross_entropy(z, np.arange(64) % 200)))\n",
    )
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) > 0
