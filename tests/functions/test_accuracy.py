"""Accuracy against mpmath at 50 significant digits.

The reference (:func:`softgrad.bench.accuracy.mp_reference`) is computed with
mpmath at 700 significant digits on the exact binary values of the inputs
(enough that 1 + e^-1000 is not rounded to 1), so it is correct to far beyond
float64. The bound under
test is the conditioning bound of Blanchard, Higham & Higham (2021): rounding
``x_i - max x`` alone costs ``eps·|x_i - max x|`` relatively, and the sum
``n·eps``; the computed values must stay within a few units of
``eps·(|x_i - max x| + n)``.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

import softgrad as sg
from softgrad.bench.accuracy import DPS, mp_reference  # the project's one mpmath reference

N = 8
SCALES = [1.0, 10.0, 100.0, 1e3, 1e4]


def relative_errors(got: np.ndarray, ref: list[mpmath.mpf]) -> np.ndarray:
    with mpmath.workdps(DPS):
        return np.array(
            [
                float(abs(mpmath.mpf(float(g)) - r) / abs(r)) if r != 0 else 0.0
                for g, r in zip(got, ref, strict=True)
            ]
        )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("scale", SCALES)
def test_softmax_within_conditioning_bound(scale: float, dtype: type) -> None:
    eps = np.finfo(dtype).eps
    rng = np.random.default_rng(int(scale))
    for _ in range(5):
        x = (rng.uniform(-1, 1, N) * scale).astype(dtype)
        s_ref, ls_ref, lse_ref = mp_reference(x)
        bound = eps * (np.abs(x.astype(np.float64) - x.max()) + N)
        s = sg.softmax(x)
        underflow = np.array([r < np.finfo(dtype).tiny for r in s_ref])  # subnormal or zero outputs
        rel = relative_errors(s, s_ref)
        assert np.all((rel <= 4 * bound) | underflow), (x, rel / bound)
        # log_softmax: absolute error within the same bound (it is an absolute quantity)
        ls = sg.log_softmax(x)
        with mpmath.workdps(DPS):
            abs_err = np.array(
                [float(abs(mpmath.mpf(float(g)) - r)) for g, r in zip(ls, ls_ref, strict=True)]
            )
        assert np.all(abs_err <= 4 * bound * np.maximum(1, np.abs(ls))), (x, abs_err / bound)
        lse = float(sg.logsumexp(x))
        assert abs(lse - float(lse_ref)) <= 4 * eps * (abs(float(lse_ref)) + N)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_log_softmax_keeps_relative_accuracy_for_the_dominant_entry(dtype: type) -> None:
    """pytorch#113708: log S_max = -log1p(Σ others) is tiny, and must be accurate relatively."""
    eps = np.finfo(dtype).eps
    for gap in [20.0, 40.0, 80.0, 300.0]:
        if dtype == np.float32 and gap > 80:
            continue
        x = np.array([0.0, -gap, -gap - 1.5], dtype=dtype)
        _, ls_ref, lse_ref = mp_reference(x)
        got = sg.log_softmax(x)
        assert got[0] != 0.0
        assert relative_errors(got[:1], ls_ref[:1])[0] <= 4 * eps
        assert abs(float(sg.logsumexp(x)) - float(lse_ref)) <= 4 * eps * abs(float(lse_ref))


def test_cross_entropy_of_confident_prediction_is_not_zero() -> None:
    """A loss of 1e-30 stays 1e-30 (log1p split), instead of rounding to exactly 0."""
    z = np.array([[0.0, -70.0, -70.0]])
    loss = float(sg.cross_entropy(z, np.array([0])))
    with mpmath.workdps(50):
        expected = float(mpmath.log1p(2 * mpmath.exp(-70)))
    assert loss == pytest.approx(expected, rel=1e-14)
