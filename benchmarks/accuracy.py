"""Accuracy of softmax / log_softmax against mpmath, as ratios of the conditioning bound.

Run: ``python -m benchmarks.accuracy``. For random rows of n = 8 logits scaled
by 1 … 1e4, prints the worst softmax relative error and the worst log_softmax
absolute error, each divided by the bound eps·(|z_i − max z| + n) of
Blanchard, Higham & Higham (2021); below 1 means within the bound. The
reference is mpmath at 700 significant digits on the exact binary inputs.
"""

from __future__ import annotations

import mpmath
import numpy as np

import softgrad as sg

N = 8
SCALES = (1.0, 10.0, 100.0, 1e3, 1e4)


def worst_ratios(dtype: type, rows_per_scale: int = 50) -> tuple[float, float, float]:
    """(softmax rel err / bound, log_softmax abs err / (bound·max(1,|log S|)), max rel err at scale 1)."""
    eps = float(np.finfo(dtype).eps)
    worst_s = worst_ls = worst_unit = 0.0
    for scale in SCALES:
        rng = np.random.default_rng(int(scale) + 1)
        for _ in range(rows_per_scale):
            x = (rng.uniform(-1, 1, N) * scale).astype(dtype)
            s, ls = sg.softmax(x), sg.log_softmax(x)
            bound = eps * (np.abs(x.astype(np.float64) - float(x.max())) + N)
            with mpmath.workdps(700):
                xs = [mpmath.mpf(float(v)) for v in x]
                total = mpmath.fsum(mpmath.exp(v) for v in xs)
                for i, v in enumerate(xs):
                    ref = mpmath.exp(v) / total
                    if ref > np.finfo(dtype).tiny:
                        rel = float(abs(mpmath.mpf(float(s[i])) - ref) / ref)
                        worst_s = max(worst_s, rel / bound[i])
                        if scale == 1.0:
                            worst_unit = max(worst_unit, rel)
                    err = float(abs(mpmath.mpf(float(ls[i])) - (v - mpmath.log(total))))
                    worst_ls = max(worst_ls, err / (bound[i] * max(1.0, abs(float(ls[i])))))
    return worst_s, worst_ls, worst_unit


def main() -> None:
    print("dtype    softmax err/bound  log_softmax err/bound  max rel err (logits ~1)")
    for dtype in (np.float64, np.float32):
        s, ls, unit = worst_ratios(dtype)
        print(f"{np.dtype(dtype).name:<8} {s:>17.3f}  {ls:>21.3f}  {unit:>23.2e}")


if __name__ == "__main__":
    main()
