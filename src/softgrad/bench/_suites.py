"""The suite registry: a suite is a module with ``main(argv: list[str] | None = None) -> int``.

Registering one is one line (a name, the module, a one-line summary)::

    register("linear", "softgrad.bench.linear", "large-vocabulary linear cross-entropy")

``softgrad bench NAME`` then runs it, forwarding ``--quick``, ``--json PATH``
and any arguments after ``--`` to its ``main``. A registered module that is
not installed is left out of ``softgrad bench --help`` and reported by name
when asked for. The built-in suites (``builtin=True``) take the options of
``softgrad bench`` listed in ``options`` directly.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
from types import ModuleType

__all__ = ["SUITES", "Suite", "available", "load", "register"]


@dataclasses.dataclass(frozen=True)
class Suite:
    """A benchmark suite: its name on the command line, its module, what it measures."""

    name: str
    module: str
    summary: str
    options: tuple[str, ...] = ("quick", "json")
    """The ``softgrad bench`` options it takes (by parameter name)."""
    builtin: bool = False
    """Run through its ``run(**options)`` by ``softgrad bench``; else through ``main(argv)``."""


SUITES: dict[str, Suite] = {}


def register(
    name: str,
    module: str,
    summary: str,
    *,
    options: tuple[str, ...] = ("quick", "json"),
    builtin: bool = False,
) -> Suite:
    """Add (or replace) the suite ``name``, implemented by ``module``'s ``main(argv)``."""
    if not name.isidentifier():
        msg = f"suite name must be a Python identifier, got {name!r}; use e.g. 'linear'"
        raise ValueError(msg)
    SUITES[name] = suite = Suite(name, module, summary, options, builtin)
    return suite


register("ops", "softgrad.bench.ops", "softmax, log_softmax, VJP, cross-entropy vs NumPy/SciPy/torch/JAX",
         options=("quick", "json", "op", "dtype", "impl", "thresholds", "first_call"), builtin=True)  # fmt: skip
register("thresholds", "softgrad.bench.thresholds", "kernel vs reference time on small arrays (the policy's min_size)",
         options=("json",), builtin=True)  # fmt: skip
register("first_call", "softgrad.bench.first_call", "import time and first call, empty vs filled numba cache",
         options=("json",), builtin=True)  # fmt: skip
register("classifier", "softgrad.bench.classifier", "SoftmaxClassifier vs scikit-learn LogisticRegression fits",
         options=("quick", "json", "reps", "c"), builtin=True)  # fmt: skip
register("classifier_kernels", "softgrad.bench.classifier_kernels", "SoftmaxClassifier fits with the kernels on and off",
         options=("json",), builtin=True)  # fmt: skip
register("accuracy", "softgrad.bench.accuracy", "softmax/log_softmax error against mpmath, over the conditioning bound",
         options=("json",), builtin=True)  # fmt: skip
# suites from other work, run through their main(argv) once their module exists
register("linear", "softgrad.bench.linear", "large-vocabulary linear cross-entropy")
register("bridges", "softgrad.bench.bridges", "torch and JAX bridges against plain autodiff")
register(
    "dask",
    "softgrad.bench.dask",
    "train/predict on a 195 MB CSV (time, peak RSS); a fit past memory",
)


def available() -> list[str]:
    """The registered suites whose module is installed, in registration order."""
    return [name for name, s in SUITES.items() if importlib.util.find_spec(s.module) is not None]


def load(name: str) -> ModuleType:
    """The module of suite ``name``; a clear error when it is unknown or not installed."""
    if name not in SUITES:
        msg = f"unknown benchmark suite {name!r}; the suites are {', '.join(SUITES)}"
        raise KeyError(msg)
    module = SUITES[name].module
    if importlib.util.find_spec(module) is None:
        msg = f"benchmark suite {name!r} needs the module {module}, which is not installed"
        raise ModuleNotFoundError(msg)
    return importlib.import_module(module)
