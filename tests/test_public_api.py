"""The public surface: ``__all__`` is complete and sorted, and every function documented."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import softgrad

PUBLIC_FUNCTIONS = [
    "softmax", "log_softmax", "logsumexp",
    "softmax_jacobian", "log_softmax_jacobian", "softmax_vjp", "softmax_jvp",
    "log_softmax_vjp", "log_softmax_jvp", "softmax_hessian",
    "cross_entropy", "cross_entropy_and_grad", "cross_entropy_hvp", "gradcheck",
]  # fmt: skip


def test_all_is_sorted_and_exported() -> None:
    assert list(softgrad.__all__) == sorted(softgrad.__all__)
    for name in softgrad.__all__:
        assert hasattr(softgrad, name), name


def test_all_covers_public_names() -> None:
    # every public function or class that softgrad itself defines
    public = {
        n
        for n, obj in vars(softgrad).items()
        if not n.startswith("_")
        and not inspect.ismodule(obj)
        and str(getattr(obj, "__module__", "")).startswith("softgrad")
    }
    assert public <= set(softgrad.__all__)
    assert set(PUBLIC_FUNCTIONS) <= set(softgrad.__all__)


@pytest.mark.parametrize("name", PUBLIC_FUNCTIONS)
def test_documented_with_math_and_example(name: str) -> None:
    doc = inspect.getdoc(getattr(softgrad, name)) or ""
    for section in ("Parameters", "Returns", "Notes", "Examples", ".. math::", ">>> "):
        assert section in doc, f"{name} docstring lacks {section!r}"


def test_typed_package() -> None:
    assert (Path(softgrad.__file__).parent / "py.typed").is_file()


def test_import_is_light() -> None:
    # the core install has NumPy and array-api-compat only: `import softgrad` must not need more
    heavy = ["sklearn", "scipy", "sympy", "click", "rich", "matplotlib", "numba", "torch", "jax"]
    code = f"import sys, softgrad; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
