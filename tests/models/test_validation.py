"""The declared parameter constraints: every parameter checked, every message actionable."""

from __future__ import annotations

import math

import numpy as np
import pytest

from softgrad import SoftmaxClassifier
from softgrad.models import InvalidParameterError, validate_params
from softgrad.models._validation import FIXES, PARAMETER_CONSTRAINTS, Interval


def test_every_parameter_has_constraints_and_a_fix():
    # like scikit-learn's check_param_validation: the table covers get_params() exactly
    params = set(SoftmaxClassifier().get_params())
    assert set(PARAMETER_CONSTRAINTS) == params
    assert set(FIXES) == params
    assert SoftmaxClassifier._parameter_constraints is PARAMETER_CONSTRAINTS


BAD = [
    ("C", 0.0),
    ("C", -1.0),
    ("C", math.nan),
    ("C", -math.inf),
    ("C", "1"),
    ("fit_intercept", 1),
    ("fit_intercept", "yes"),
    ("solver", "bfgs"),
    ("solver", None),
    ("max_iter", -1),
    ("max_iter", 10.0),
    ("max_iter", True),
    ("tol", -1e-4),
    ("tol", math.inf),
    ("tol", math.nan),
    ("batch_size", 0),
    ("batch_size", 2.5),
    ("learning_rate", 0.0),
    ("learning_rate", math.inf),
    ("random_state", -1),
    ("random_state", "seed"),
    ("warm_start", None),
    ("verbose", -1),
    ("callback", 3),
]


@pytest.mark.parametrize(("name", "value"), BAD, ids=[f"{n}={v!r}" for n, v in BAD])
def test_bad_values_are_refused_naming_parameter_value_and_fix(iris, name, value):
    X, y = iris
    with pytest.raises(InvalidParameterError) as info:
        SoftmaxClassifier(**{name: value}).fit(X, y)
    message = str(info.value)
    assert message.startswith(f"SoftmaxClassifier: {name} must be ")
    assert f"got {value!r}" in message
    assert message.endswith(FIXES[name])
    # scikit-learn's convention: both a ValueError and a TypeError
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, TypeError)


GOOD = [
    ("C", math.inf),
    ("C", np.float32(0.5)),
    ("C", 3),
    ("fit_intercept", np.bool_(False)),
    ("max_iter", 0),
    ("max_iter", np.int64(5)),
    ("tol", 0.0),
    ("batch_size", 1),
    ("random_state", 0),
    ("random_state", np.random.default_rng(0)),
    ("random_state", None),
    ("verbose", True),
    ("verbose", 2),
    ("callback", print),
]


@pytest.mark.parametrize(("name", "value"), GOOD, ids=[f"{n}={v!r}" for n, v in GOOD])
def test_good_values_pass(name, value):
    validate_params({**SoftmaxClassifier().get_params(), name: value})


def test_partial_fit_checks_too(iris):
    X, y = iris
    with pytest.raises(InvalidParameterError, match="learning_rate must be"):
        SoftmaxClassifier(learning_rate=-1.0).partial_fit(X, y, classes=[0, 1, 2])


@pytest.mark.parametrize(
    ("interval", "expected"),
    [
        (Interval(int, 0, None, closed="left"), "an integer >= 0"),
        (Interval(float, 0, None, closed="neither"), "a float > 0"),
        (Interval(float, 0, 1, closed="right"), "a float in (0, 1]"),
        (Interval(float, None, 1, closed="neither"), "a float < 1"),
    ],
)
def test_interval_descriptions(interval, expected):
    from numbers import Integral, Real

    kind = Integral if interval.kind is int else Real
    described = Interval(kind, interval.low, interval.high, interval.closed).describe()
    assert described == expected
