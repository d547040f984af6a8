"""The accuracy suite, and the mpmath reference for softmax and log_softmax.

``softgrad bench accuracy``: for random rows of n = 8 logits scaled by
1 … 1e4, prints the worst softmax relative error and the worst log_softmax
absolute error, each divided by the conditioning bound
eps·(|z_i − max z| + n) of Blanchard, Higham & Higham (2021); below 1 means
within the bound.

:func:`mp_reference` is the one high-precision reference of the project:
mpmath at 700 significant digits on the exact binary values of the inputs
(enough that 1 + e^-1000 is not rounded to 1), so it is correct far beyond
float64. Tests import it from here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from softgrad._lib._extras import require

__all__ = ["SCALES", "N", "main", "mp_reference", "run", "worst_ratios"]

N = 8
SCALES = (1.0, 10.0, 100.0, 1e3, 1e4)
DPS = 700
"""Significant digits of the reference."""


def mp_reference(
    x: Sequence[float] | np.ndarray, dps: int = DPS
) -> tuple[list[Any], list[Any], Any]:
    r"""Softmax, log_softmax and logsumexp of one row, in mpmath at ``dps`` digits.

    .. math::

        \operatorname{lse}(x) = \log \sum_j e^{x_j}, \qquad
        s_i = e^{x_i} / \sum_j e^{x_j}, \qquad \log s_i = x_i - \operatorname{lse}(x)

    Each float of ``x`` is taken at its exact binary value.

    Returns
    -------
    softmax, log_softmax : list of mpmath.mpf
    logsumexp : mpmath.mpf

    Examples
    --------
    >>> s, ls, lse = mp_reference([0.0, 0.0])
    >>> float(s[0]), float(ls[1]), float(lse)
    (0.5, -0.6931471805599453, 0.6931471805599453)
    """
    mpmath = require("mpmath", "explain", feature="the mpmath accuracy reference")
    with mpmath.workdps(dps):
        xs = [mpmath.mpf(float(v)) for v in np.asarray(x).ravel()]
        total = mpmath.fsum(mpmath.exp(v) for v in xs)
        lse = mpmath.log(total)
        return [mpmath.exp(v) / total for v in xs], [v - lse for v in xs], lse


def worst_ratios(dtype: type, rows_per_scale: int = 50) -> tuple[float, float, float]:
    """(softmax rel err / bound, log_softmax abs err / (bound·max(1,|log S|)), max rel err at scale 1)."""
    import softgrad as sg

    mpmath = require("mpmath", "explain", feature="the accuracy benchmark")
    eps = float(np.finfo(dtype).eps)
    worst_s = worst_ls = worst_unit = 0.0
    for scale in SCALES:
        rng = np.random.default_rng(int(scale) + 1)
        for _ in range(rows_per_scale):
            x: np.ndarray = (rng.uniform(-1, 1, N) * scale).astype(dtype)
            s, ls = sg.softmax(x), sg.log_softmax(x)
            bound = eps * (np.abs(x.astype(np.float64) - float(x.max())) + N)
            s_ref, ls_ref, _ = mp_reference(x)
            with mpmath.workdps(DPS):
                for i in range(N):
                    ref = s_ref[i]
                    if ref > np.finfo(dtype).tiny:
                        rel = float(abs(mpmath.mpf(float(s[i])) - ref) / ref)
                        worst_s = max(worst_s, rel / bound[i])
                        if scale == 1.0:
                            worst_unit = max(worst_unit, rel)
                    err = float(abs(mpmath.mpf(float(ls[i])) - ls_ref[i]))
                    worst_ls = max(worst_ls, err / (bound[i] * max(1.0, abs(float(ls[i])))))
    return worst_s, worst_ls, worst_unit


def run(*, rows_per_scale: int = 50, out: Callable[[str], Any] = print) -> dict[str, Any]:
    """The worst ratios for float64 and float32; printed through ``out``."""
    out("dtype    softmax err/bound  log_softmax err/bound  max rel err (logits ~1)")
    result = {}
    for dtype in (np.float64, np.float32):
        s, ls, unit = worst_ratios(dtype, rows_per_scale)
        name = np.dtype(dtype).name
        result[name] = {"softmax": s, "log_softmax": ls, "max_rel_err_unit": unit}
        out(f"{name:<8} {s:>17.3f}  {ls:>21.3f}  {unit:>23.2e}")
    return result


def main(argv: list[str] | None = None) -> int:
    """``softgrad bench accuracy [--json PATH]``."""
    from softgrad.bench._main import run_cli

    return run_cli("accuracy", argv)
