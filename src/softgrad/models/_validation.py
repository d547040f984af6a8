"""The estimator's parameters, declared once and checked in one place.

In scikit-learn's ``_parameter_constraints`` style: each parameter maps to the
list of constraints it may satisfy (any one suffices), and
:func:`validate_params` checks a whole ``get_params()`` dictionary against
them. Each parameter also has a *fix*, the hint that ends its error message,
so every refusal names the parameter, the value given and what to pass
instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, Literal

import numpy as np

__all__ = ["PARAMETER_CONSTRAINTS", "InvalidParameterError", "validate_params"]


class InvalidParameterError(ValueError, TypeError):
    """A parameter of the wrong type or out of range (a ``ValueError`` and a ``TypeError``)."""


@dataclass(frozen=True)
class Interval:
    """A real or integer number in an interval; ``None`` bounds are unbounded.

    Reals must be finite unless the closed bound is ``inf`` itself
    (``Interval(Real, 0, math.inf, closed="right")`` admits ``inf``, never NaN).
    """

    kind: type[Real | Integral]
    low: float | None
    high: float | None
    closed: Literal["left", "right", "both", "neither"]

    def accepts(self, value: Any) -> bool:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, self.kind):
            return False
        x = float(value)
        if math.isnan(x):
            return False
        if self.low is not None and (x < self.low or (x == self.low and not self._left)):
            return False
        if self.high is not None and (x > self.high or (x == self.high and not self._right)):
            return False
        return math.isfinite(x) or x in (self.low, self.high)

    @property
    def _left(self) -> bool:
        return self.closed in ("left", "both")

    @property
    def _right(self) -> bool:
        return self.closed in ("right", "both")

    def describe(self) -> str:
        what = "an integer" if self.kind is Integral else "a float"
        lo, hi = self.low, self.high
        if hi is None and lo is not None:
            return f"{what} {'>=' if self._left else '>'} {_num(lo)}"
        if lo is None and hi is not None:
            return f"{what} {'<=' if self._right else '<'} {_num(hi)}"
        if lo is None and hi is None:
            return what
        brackets = ("[" if self._left else "(", "]" if self._right else ")")
        return f"{what} in {brackets[0]}{_num(lo)}, {_num(hi)}{brackets[1]}"


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values."""

    values: tuple[Any, ...]

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and value in self.values

    def describe(self) -> str:
        return f"one of {', '.join(map(repr, self.values))}"


@dataclass(frozen=True)
class InstanceOf:
    """An instance of one of ``types`` (``bool`` is never taken for an integer)."""

    types: tuple[type, ...]
    name: str

    def accepts(self, value: Any) -> bool:
        return isinstance(value, self.types)

    def describe(self) -> str:
        return self.name


@dataclass(frozen=True)
class IsNone:
    def accepts(self, value: Any) -> bool:
        return value is None

    def describe(self) -> str:
        return "None"


@dataclass(frozen=True)
class IsCallable:
    def accepts(self, value: Any) -> bool:
        return callable(value)

    def describe(self) -> str:
        return "a callable"


Constraint = Interval | Options | InstanceOf | IsNone | IsCallable

SOLVERS = ("auto", "lbfgs", "newton-cg", "newton-cholesky", "sgd", "adam")
_BOOLEAN = InstanceOf((bool, np.bool_), "a bool")
_SEEDS = InstanceOf(
    (np.random.Generator, np.random.BitGenerator, np.random.SeedSequence), "a numpy Generator"
)

PARAMETER_CONSTRAINTS: dict[str, list[Constraint]] = {
    "C": [Interval(Real, 0, math.inf, closed="right")],
    "fit_intercept": [_BOOLEAN],
    "solver": [Options(SOLVERS)],
    "max_iter": [Interval(Integral, 0, None, closed="left")],
    "tol": [Interval(Real, 0, None, closed="left")],
    "batch_size": [Interval(Integral, 1, None, closed="left")],
    "learning_rate": [Interval(Real, 0, None, closed="neither")],
    "random_state": [IsNone(), Interval(Integral, 0, None, closed="left"), _SEEDS],
    "warm_start": [_BOOLEAN],
    "verbose": [Interval(Integral, 0, None, closed="left"), _BOOLEAN],
    "callback": [IsNone(), IsCallable()],
}

# how to fix each parameter: the end of its error message
FIXES: dict[str, str] = {
    "C": "pass e.g. C=1.0 (smaller: stronger penalty), or C=np.inf for no penalty",
    "fit_intercept": "pass True or False",
    "solver": "pick one of those names",
    "max_iter": "pass e.g. max_iter=1000 (0 returns the initial state)",
    "tol": "pass e.g. tol=1e-4",
    "batch_size": "pass e.g. batch_size=200",
    "learning_rate": "pass e.g. learning_rate=0.01",
    "random_state": "pass an int seed, a numpy Generator or None",
    "warm_start": "pass True or False",
    "verbose": "pass 0 (quiet) or 1 (one line per iteration)",
    "callback": "pass a function callback(iteration, objective) or None",
}


def validate_params(
    params: Mapping[str, Any],
    constraints: Mapping[str, list[Constraint]] = PARAMETER_CONSTRAINTS,
    *,
    owner: str = "SoftmaxClassifier",
) -> None:
    """Check every parameter in ``params`` that has constraints; raise on the first bad one.

    Parameters
    ----------
    params : mapping
        ``estimator.get_params()``.
    constraints : mapping of str to list of constraints
        Each parameter's allowed values (any one constraint suffices).
    owner : str
        The estimator's name, for the message.

    Raises
    ------
    InvalidParameterError
        Naming the parameter, the value and the fix.

    Examples
    --------
    >>> validate_params({"C": 1.0, "solver": "lbfgs"})
    >>> validate_params({"C": 0.0})
    Traceback (most recent call last):
    ...
    softgrad.models._validation.InvalidParameterError: SoftmaxClassifier: C must be a float > 0 or inf, got 0.0; pass e.g. C=1.0 (smaller: stronger penalty), or C=np.inf for no penalty
    """
    for name, allowed in constraints.items():
        if name not in params:
            continue
        value = params[name]
        if any(c.accepts(value) for c in allowed):
            continue
        kinds = " or ".join(_describe(c) for c in allowed)
        fix = FIXES.get(name)
        msg = f"{owner}: {name} must be {kinds}, got {value!r}{f'; {fix}' if fix else ''}"
        raise InvalidParameterError(msg)


def _describe(c: Constraint) -> str:
    if isinstance(c, Interval) and c.high == math.inf and c._right and c.low is not None:
        # (0, inf] reads better as "> 0 or inf"
        bound = ">=" if c._left else ">"
        what = "an integer" if c.kind is Integral else "a float"
        return f"{what} {bound} {_num(c.low)} or inf"
    return c.describe()


def _num(x: float | None) -> str:
    return "inf" if x == math.inf else f"{x:g}"
