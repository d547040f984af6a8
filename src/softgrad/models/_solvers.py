"""Minimisers of an objective of one flat vector: L-BFGS, Newton-CG, Newton-Cholesky, SGD, Adam.

Each solver sees the objective only through the methods it needs (the
protocols below), never the data, the classes or the estimator, so each can
be run and tested alone on a quadratic with a known minimiser, and an
objective reduced over blocks of a Dask array can be handed to the same code.
Solvers return a :class:`Result` and do not warn: whether an unconverged run
deserves a ``ConvergenceWarning`` is the estimator's call.

``max_iter = 0`` returns the starting point untouched, with its objective as
the only entry of the loss curve (scikit-learn's way to inspect an initial
state).

Each solver's own work per iteration is a few vector operations on
``n_params`` entries: L-BFGS is written here in NumPy (two-loop recursion,
weak-Wolfe bisection line search) rather than scipy's L-BFGS-B, whose
Fortran/BLAS per-iteration overhead (tens of microseconds, milliseconds when
a threaded BLAS competes for busy cores) dominated fits of small data.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypedDict, Unpack

import numpy as np
from numpy.typing import DTypeLike, NDArray

from softgrad._lib._extras import require

__all__ = [
    "EpochSettings",
    "Result",
    "StochasticState",
    "choose_solver",
    "conjugate_gradient",
    "lbfgs",
    "newton_cg",
    "newton_cholesky",
    "stochastic",
    "stochastic_epoch",
]

FloatArray = NDArray[np.floating[Any]]
Callback = Callable[[int, float], Any]
Rule = Literal["sgd", "adam"]

HESSIAN_ROWS = 8192  # newton-cg: rows of a subsampled Hessian on large data
LBFGS_MEMORY = 10  # lbfgs: (s, y) pairs kept, as scipy's and scikit-learn's default
# lbfgs on data whose evaluation is costly: the two-loop recursion's 4 x memory x P
# flops stay negligible next to a pass over X, and more pairs mean fewer passes
# (48,000 x 784 float32, 10 classes: 80 iterations with 30 pairs, 92 with 10; fit 0.85x)
LBFGS_MEMORY_LARGE = 30
MAX_LINE_SEARCH = 50  # trial points per line search (scikit-learn's maxls)
WOLFE = (1e-4, 0.9)  # sufficient decrease and curvature constants
FTOL = 64 * float(np.finfo(np.float64).eps)  # lbfgs: stop at this relative decrease
N_ITER_NO_CHANGE = 10  # stochastic solvers: epochs without a tol improvement before stopping
MOMENTUM = 0.9
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


class Smooth(Protocol):
    """What L-BFGS needs: the value and the gradient at a float64 vector."""

    def loss(self, w: FloatArray, /) -> float: ...
    def loss_and_grad(self, w: FloatArray, /) -> tuple[float, FloatArray]: ...


class SecondOrder(Smooth, Protocol):
    """What Newton-CG needs besides: Hessian-vector products, possibly on a row subset."""

    n_samples: int
    dtype: np.dtype[Any]  # the data's precision: decreases below its rounding are invisible

    def hessp(
        self, w: FloatArray, rows: NDArray[np.intp] | None = None, /
    ) -> Callable[[FloatArray], FloatArray]: ...


class Curvature(Smooth, Protocol):
    """What Newton-Cholesky needs besides: the whole Hessian and the flat directions."""

    dtype: np.dtype[Any]

    def hessian(self, w: FloatArray, /) -> FloatArray: ...
    def flat_directions(self) -> FloatArray: ...


class MiniBatch(Protocol):
    """What SGD and Adam need: an unbiased mini-batch gradient and the exact penalty."""

    n_samples: int

    def batch_loss_and_grad(
        self, rows: NDArray[np.intp], w: FloatArray, /
    ) -> tuple[float, FloatArray]: ...
    def penalty(self, w: FloatArray, /) -> float: ...


NEWTON_CHOLESKY_MAX_PARAMS = 256  # choose_solver: the largest model for newton-cholesky
NEWTON_CG_ROWS_PER_PARAM = 64  # choose_solver: newton-cg needs this many rows per parameter


def choose_solver(n_samples: int, n_params: int, *, whole_hessian: bool = True) -> str:
    """The solver ``solver="auto"`` runs, by the data's shape.

    * ``newton-cg`` when ``n_samples >= 4 * HESSIAN_ROWS`` (32,768 rows) and
      ``n_samples >= NEWTON_CG_ROWS_PER_PARAM * n_params`` (64 rows per
      parameter): its Hessian-vector products then run on a subsample of
      ``n / 8`` rows, still 8 per parameter, so the subsampled Hessian is a
      good one and a fit costs about 25 passes over the data where ``lbfgs``
      needs 60-200. Measured (``softgrad bench classifier``, one BLAS thread,
      correlated synthetic data): 500,000 × 54, 7 classes (P = 385): newton-cg
      2.7× faster than ``LogisticRegression``, lbfgs as fast; 48,000 × 784,
      10 classes (P = 7,850, 6 rows per parameter): newton-cg 3× *slower*
      (a subsample of 8,192 rows for 7,850 parameters: 96 evaluations with
      backtracking, up to 200 CG steps each), lbfgs 1.7× faster. It comes
      first: with that many rows the whole Hessian of ``newton-cholesky``
      costs more than newton-cg's whole fit (750,000 × 20, 4 classes, P = 84,
      one BLAS thread: newton-cholesky 4.81 s, newton-cg 1.03 s, lbfgs 1.74 s;
      at 100,000 rows 0.88 / 0.13 / 0.21 s).
    * ``newton-cholesky`` when ``n_params <= NEWTON_CHOLESKY_MAX_PARAMS``: an
      iteration forms the ``P × P`` Hessian (about :math:`n P^2`
      multiply-adds, in large matrix products) and factors it
      (:math:`P^3/3`), and a handful of iterations suffice. Measured: iris
      (P = 15) and wine (P = 42) fit 1.5-2× faster than with ``lbfgs``; at
      digits' P = 650 it is several times slower.
    * ``lbfgs`` otherwise (digits: 1797 × 64, 10 classes; 48,000 × 784).

    ``whole_hessian=False`` (Dask input: no ``P × P`` Hessian on a cluster)
    leaves out ``newton-cholesky``.

    Examples
    --------
    >>> choose_solver(150, 15), choose_solver(1797, 650), choose_solver(500000, 385)
    ('newton-cholesky', 'lbfgs', 'newton-cg')
    >>> choose_solver(48000, 7850)
    'lbfgs'
    """
    if n_samples >= max(4 * HESSIAN_ROWS, NEWTON_CG_ROWS_PER_PARAM * n_params):
        return "newton-cg"
    if whole_hessian and n_params <= NEWTON_CHOLESKY_MAX_PARAMS:
        return "newton-cholesky"
    return "lbfgs"


@dataclass
class Result:
    """A solver's end point ``w``, its iteration count and the objective after each one."""

    w: FloatArray
    n_iter: int
    converged: bool
    loss_curve: list[float]
    message: str = ""


def lbfgs(
    obj: Smooth,
    w0: FloatArray,
    *,
    max_iter: int,
    tol: float,
    callback: Callback | None = None,
    memory: int = LBFGS_MEMORY,
) -> Result:
    r"""Limited-memory BFGS with scikit-learn's stopping rules.

    The direction is :math:`-H_k g` from the two-loop recursion over the last
    ``memory`` pairs :math:`s = w_{k+1} - w_k`, :math:`y = g_{k+1} - g_k`
    (initial scaling :math:`s^\top y / y^\top y`); the step satisfies the weak
    Wolfe conditions (bisection, at most ``MAX_LINE_SEARCH`` evaluations, each
    one fused loss and gradient). Stops when the largest gradient entry is at
    most ``tol`` (``gtol``) or the relative decrease falls to 64 machine
    epsilons (``ftol``), as scipy's L-BFGS-B with scikit-learn's settings.

    Examples
    --------
    >>> import numpy as np
    >>> class Bowl:  # f(w) = ||w - 1||² / 2, minimised at w = 1
    ...     def loss(self, w): return 0.5 * float((w - 1) @ (w - 1))
    ...     def loss_and_grad(self, w): return self.loss(w), w - 1
    >>> lbfgs(Bowl(), np.zeros(3), max_iter=50, tol=1e-8).w
    array([1., 1., 1.])
    """
    if max_iter == 0:
        return _initial(obj, w0, tol)
    w: FloatArray = np.asarray(w0, dtype=np.float64).copy()
    f, g = obj.loss_and_grad(w)
    pairs: list[tuple[FloatArray, FloatArray, float]] = []  # (s, y, 1 / sᵀy)
    curve: list[float] = []
    for it in range(1, max_iter + 1):
        if _gmax(g) <= tol:
            return Result(w, it - 1, True, curve or [f])
        p = _two_loop(g, pairs)
        first = 1.0 if pairs else min(1.0, 1.0 / max(float(np.linalg.norm(g)), 1e-300))
        found = _wolfe(obj, w, f, g, p, first)
        if found is None:
            return Result(w, it - 1, _gmax(g) <= tol, curve or [f], "line search failed")
        w_new, f_new, g_new = found
        s, yv = w_new - w, g_new - g
        sy = float(s @ yv)
        if sy > 1e-10 * float(yv @ yv):  # keep only pairs with positive curvature
            pairs.append((s, yv, 1.0 / sy))
            if len(pairs) > memory:
                pairs.pop(0)
        decrease = (f - f_new) / max(abs(f), abs(f_new), 1.0)
        w, f, g = w_new, f_new, g_new
        curve.append(f)
        if callback is not None:
            callback(it, f)
        if decrease <= FTOL:
            return Result(w, it, True, curve, "relative reduction of f <= ftol")
    return Result(w, max_iter, _gmax(g) <= tol, curve)


def _gmax(g: FloatArray) -> float:
    return float(np.max(np.abs(g), initial=0.0))


def _two_loop(g: FloatArray, pairs: list[tuple[FloatArray, FloatArray, float]]) -> FloatArray:
    """L-BFGS's ``-H g`` from the stored pairs (Nocedal & Wright, algorithm 7.4)."""
    q = -g
    alphas = []
    for s, y, rho in reversed(pairs):
        a = rho * float(s @ q)
        q -= a * y
        alphas.append(a)
    if pairs:
        s, y, rho = pairs[-1]
        q *= 1.0 / (rho * float(y @ y))  # γ = sᵀy / yᵀy
    for (s, y, rho), a in zip(pairs, reversed(alphas), strict=True):
        q += (a - rho * float(y @ q)) * s
    return q


def _wolfe(
    obj: Smooth, w: FloatArray, f: float, g: FloatArray, p: FloatArray, step: float
) -> tuple[FloatArray, float, FloatArray] | None:
    """A step along ``p`` meeting the weak Wolfe conditions, by bracketing and bisection."""
    c1, c2 = WOLFE
    slope = float(g @ p)
    if slope >= 0:  # not a descent direction (a stale pair): fall back to the gradient
        p, slope = -g, -float(g @ g)
    low, high = 0.0, math.inf
    for _ in range(MAX_LINE_SEARCH):
        w_new = w + step * p
        f_new, g_new = obj.loss_and_grad(w_new)
        if not f_new <= f + c1 * step * slope:  # too long (or not finite)
            high = step
        elif float(g_new @ p) < c2 * slope:  # too short: still steeply downhill
            low = step
        else:
            return w_new, f_new, g_new
        step = 0.5 * (low + high) if high < math.inf else 2.0 * step
    return None


def _initial(obj: Smooth, w0: FloatArray, tol: float) -> Result:
    f, g = obj.loss_and_grad(w0)
    return Result(w0.copy(), 0, float(np.max(np.abs(g), initial=0.0)) <= tol, [f])


def conjugate_gradient(
    hvp: Callable[[FloatArray], FloatArray], g: FloatArray, max_iter: int, rtol: float
) -> FloatArray:
    """Approximately solve ``H p = -g`` by (truncated) conjugate gradients.

    Stops when the residual has shrunk by ``rtol`` or at a direction of flat or
    negative curvature (then the last iterate, or ``-g`` if there is none).

    Examples
    --------
    >>> import numpy as np
    >>> H = np.array([[4.0, 1.0], [1.0, 3.0]])
    >>> p = conjugate_gradient(lambda v: H @ v, np.array([1.0, 2.0]), 10, 1e-12)
    >>> np.allclose(H @ p, [-1.0, -2.0])
    True
    """
    p = np.zeros_like(g)
    r = -g.copy()
    d = r.copy()
    rr = float(r @ r)
    stop = rtol * math.sqrt(rr)
    for _ in range(max_iter):
        if math.sqrt(rr) <= stop:
            break
        hd = hvp(d)
        curvature = float(d @ hd)
        if curvature <= 1e-12 * float(d @ d):
            # flat or negative curvature (the intercepts' common shift): stop here
            if not p.any():
                p = -g.copy()
            break
        alpha = rr / curvature
        p += alpha * d
        r -= alpha * hd
        rr_new = float(r @ r)
        d = r + (rr_new / rr) * d
        rr = rr_new
    return p


def newton_cg(
    obj: SecondOrder,
    w0: FloatArray,
    *,
    max_iter: int,
    tol: float,
    callback: Callback | None = None,
    max_cg: int = 20,
    rng: np.random.Generator | None = None,
) -> Result:
    """Newton's method, each step solved by CG on Hessian-vector products, Armijo backtracking.

    Stops when the largest gradient entry is at most ``tol``. On large data
    (``n >= 4 * HESSIAN_ROWS``) each Newton step's HVPs use a fresh random
    subset of ``max(HESSIAN_ROWS, n // 8)`` rows (Byrd et al. 2011); the
    gradient, the line search and the stopping test stay exact, so the optimum
    is the same, and each CG step costs a fraction of a pass over the data.
    The subsets are drawn from ``rng``; without one, from a generator seeded by
    the problem's shape ``(n, subset rows, parameters)``, so that the same fit
    run twice takes the same steps and returns the same coefficients.

    Examples
    --------
    >>> import numpy as np
    >>> H, c = np.array([[4.0, 1.0], [1.0, 3.0]]), np.array([1.0, 2.0])
    >>> class Quadratic:  # f(w) = wᵀHw/2 - cᵀw, minimised at H⁻¹c
    ...     n_samples, dtype = 1, np.dtype(np.float64)
    ...     def loss(self, w): return 0.5 * float(w @ H @ w) - float(c @ w)
    ...     def loss_and_grad(self, w): return self.loss(w), H @ w - c
    ...     def hessp(self, w, rows=None): return lambda v: H @ v
    >>> res = newton_cg(Quadratic(), np.zeros(2), max_iter=10, tol=1e-10)
    >>> np.allclose(res.w, np.linalg.solve(H, c)), res.converged
    (True, True)
    """
    n = obj.n_samples
    m = max(HESSIAN_ROWS, n // 8) if n >= 4 * HESSIAN_ROWS else n
    rng = rng if rng is not None else np.random.default_rng((n, m, np.size(w0)))

    def direction(w: FloatArray, g: FloatArray) -> FloatArray:
        # forcing term: a loose solve far away, a tight one near the optimum (superlinear)
        eta = min(0.5, math.sqrt(float(np.sum(np.abs(g)))))
        rows = None if m == n else np.sort(rng.choice(n, size=m, replace=False))
        return conjugate_gradient(obj.hessp(w, rows), g, max_cg, eta)

    return _newton(obj, w0, direction, max_iter=max_iter, tol=tol, callback=callback)


def newton_cholesky(
    obj: Curvature,
    w0: FloatArray,
    *,
    max_iter: int,
    tol: float,
    callback: Callback | None = None,
) -> Result:
    r"""Newton's method on the whole Hessian, each step solved by a Cholesky factorisation.

    For objectives with few parameters (a ``(P, P)`` Hessian costs
    :math:`n P^2` to form and :math:`P^3/3` to factor): a handful of
    iterations, each exact. The Hessian is singular along the objective's
    flat directions :math:`U` (softmax's common shift; the gradient is
    orthogonal to them), so the step solves
    :math:`(H + \bar h\,U U^\top)\,p = -g` (:math:`\bar h` the mean diagonal
    entry), whose solution is the minimum-norm Newton step. If that matrix is
    still not positive definite (features that are exact linear combinations
    of others with ``C = inf``), the step falls back to the least-squares
    solution of :math:`H p = -g` and the iteration goes on. Armijo
    backtracking as :func:`newton_cg`; stops when the largest gradient entry
    is at most ``tol``.

    Examples
    --------
    >>> import numpy as np
    >>> H, c = np.array([[4.0, 1.0], [1.0, 3.0]]), np.array([1.0, 2.0])
    >>> class Quadratic:  # f(w) = wᵀHw/2 - cᵀw, minimised at H⁻¹c
    ...     dtype = np.dtype(np.float64)
    ...     def loss(self, w): return 0.5 * float(w @ H @ w) - float(c @ w)
    ...     def loss_and_grad(self, w): return self.loss(w), H @ w - c
    ...     def hessian(self, w): return H
    ...     def flat_directions(self): return np.zeros((2, 0))
    >>> res = newton_cholesky(Quadratic(), np.zeros(2), max_iter=10, tol=1e-10)
    >>> np.allclose(res.w, np.linalg.solve(H, c)), res.n_iter
    (True, 1)
    """
    linalg = require("scipy.linalg", "models", feature="the newton-cholesky solver")
    flat = obj.flat_directions()

    def direction(w: FloatArray, g: FloatArray) -> FloatArray:
        H = obj.hessian(w)
        if flat.shape[1]:
            H += float(np.mean(np.diag(H))) * (flat @ flat.T)
        try:
            factor = linalg.cho_factor(H, check_finite=False)
        except linalg.LinAlgError:  # not positive definite: the least-squares step
            p: FloatArray = linalg.lstsq(H, -g, check_finite=False)[0]
            return p
        p = linalg.cho_solve(factor, -g, check_finite=False)
        return p

    return _newton(obj, w0, direction, max_iter=max_iter, tol=tol, callback=callback)


def _newton(
    obj: Smooth,
    w0: FloatArray,
    direction: Callable[[FloatArray, FloatArray], FloatArray],
    *,
    max_iter: int,
    tol: float,
    callback: Callback | None,
) -> Result:
    """Steps along ``direction(w, g)`` with :func:`_newton_step` until ``max|g| <= tol``."""
    w: FloatArray = np.asarray(w0, dtype=np.float64).copy()
    f, g = obj.loss_and_grad(w)
    curve: list[float] = []
    for it in range(1, max_iter + 1):
        if _gmax(g) <= tol:
            return Result(w, it - 1, True, curve or [f])
        step = _newton_step(obj, w, f, g, direction(w, g))
        if isinstance(step, str):
            return Result(w, it, False, curve or [f], step)
        w, f, g = step
        curve.append(f)
        if callback is not None:
            callback(it, f)
    return Result(w, max_iter, _gmax(g) <= tol, curve or [f])


def _newton_step(
    obj: Smooth, w: FloatArray, f: float, g: FloatArray, p: FloatArray
) -> tuple[FloatArray, float, FloatArray] | str:
    """Armijo backtracking from the full step along ``p``: the new point, or why there is none."""
    slope = float(g @ p)
    if not slope < 0:  # not a descent direction (rounding): fall back to the gradient
        p, slope = -g, -float(g @ g)
    # the loss is only known to the data dtype's rounding: a decrease smaller than
    # that cannot be seen, so a Newton step predicting one is judged by its gradient
    dtype = getattr(obj, "dtype", np.dtype(np.float64))
    noise = 16 * float(np.finfo(dtype).eps) * max(abs(f), 1.0)
    step = 1.0
    for _ in range(30):
        w_new = w + step * p
        f_new = obj.loss(w_new)  # one product with X per trial
        if f_new <= f + 1e-4 * step * slope:
            return (w_new, *obj.loss_and_grad(w_new))  # reuses the trial's logits
        if step == 1.0 and -slope <= noise and f_new <= f + noise:
            f_new, g_new = obj.loss_and_grad(w_new)
            if _gmax(g_new) >= _gmax(g):
                # no visible progress at the rounding level of the data's dtype: stop here
                return "no progress at the data's precision"
            return w_new, f_new, g_new
        step *= 0.5
    return "line search failed"


@dataclass
class StochasticState:
    """Momentum (``m``) or Adam's moments (``m``, ``v``) and step count ``t``.

    Kept by the estimator between ``partial_fit`` calls.
    """

    size: int
    dtype: DTypeLike
    m: FloatArray = field(init=False)
    v: FloatArray = field(init=False)
    t: int = 0

    def __post_init__(self) -> None:
        self.m = np.zeros(self.size, dtype=self.dtype)
        self.v = np.zeros(self.size, dtype=self.dtype)

    def step(self, grad: FloatArray, rule: Rule, learning_rate: float) -> FloatArray:
        r"""The update to add to ``w`` for gradient ``grad``, in place on the state.

        ``sgd``: :math:`m \leftarrow 0.9\,m - \eta g`, step :math:`m`.
        ``adam``: :math:`m \leftarrow \beta_1 m + (1-\beta_1) g`,
        :math:`v \leftarrow \beta_2 v + (1-\beta_2) g^2`, step
        :math:`-\eta\,\hat m / (\sqrt{\hat v} + \epsilon)` with the bias-corrected
        moments :math:`\hat m = m / (1 - \beta_1^t)`, :math:`\hat v = v / (1 - \beta_2^t)`.
        """
        self.t += 1
        if rule == "sgd":
            return _decay_add(self.m, MOMENTUM, -learning_rate * grad)
        b1, b2 = ADAM_BETAS
        _decay_add(self.m, b1, (1 - b1) * grad)
        _decay_add(self.v, b2, (1 - b2) * grad * grad)
        m_hat = self.m / (1 - b1**self.t)
        v_hat = self.v / (1 - b2**self.t)
        step: FloatArray = -learning_rate * m_hat / (np.sqrt(v_hat) + ADAM_EPS)
        return step


def _decay_add(acc: FloatArray, decay: float, update: FloatArray) -> FloatArray:
    """``acc ← decay · acc + update``, in place; returns ``acc``."""
    acc *= decay
    acc += update
    return acc


def stochastic_epoch(
    obj: MiniBatch,
    w: FloatArray,
    state: StochasticState,
    *,
    rule: Rule,
    learning_rate: float,
    batch_size: int,
    rng: np.random.Generator,
) -> float:
    """One pass of mini-batch updates of ``w`` (in place) over shuffled rows.

    Returns the epoch's objective: the mean data loss seen plus the penalty at
    the end point.
    """
    n = obj.n_samples
    order = rng.permutation(n)
    total = 0.0
    for start in range(0, n, batch_size):
        rows = order[start : start + batch_size]
        data_loss, grad = obj.batch_loss_and_grad(rows, w)
        total += data_loss * len(rows)
        w += state.step(grad, rule, learning_rate)
    return float(total / n + obj.penalty(w))


class EpochSettings(TypedDict):
    """The settings of :func:`stochastic_epoch`, passed through by :func:`stochastic`."""

    rule: Rule
    learning_rate: float
    batch_size: int
    rng: np.random.Generator


def stochastic(
    obj: MiniBatch,
    w: FloatArray,
    state: StochasticState,
    *,
    max_iter: int,
    tol: float,
    callback: Callback | None = None,
    **epoch: Unpack[EpochSettings],
) -> Result:
    """Epochs of :func:`stochastic_epoch` (``w`` updated in place) until the loss stalls.

    ``epoch`` holds :func:`stochastic_epoch`'s keyword arguments (``rule``,
    ``learning_rate``, ``batch_size``, ``rng``).

    Converged when the epoch objective has not improved by ``tol`` for
    ``N_ITER_NO_CHANGE`` epochs in a row.

    Raises
    ------
    FloatingPointError
        If an epoch's objective is not finite (the step size is too large).

    Examples
    --------
    >>> import numpy as np
    >>> class Bowl:  # f(w) = mean over 4 rows of ||w - a_i||² / 2, minimised at mean(a) = 1
    ...     n_samples, a = 4, np.array([0.0, 1.0, 1.0, 2.0])
    ...     def batch_loss_and_grad(self, rows, w):
    ...         d = w[0] - self.a[rows]
    ...         return float(np.mean(d * d) / 2), np.array([np.mean(d)])
    ...     def penalty(self, w): return 0.0
    >>> w, rng = np.zeros(1), np.random.default_rng(0)
    >>> res = stochastic(Bowl(), w, StochasticState(1, np.float64), rule="adam",
    ...                  learning_rate=0.01, batch_size=4, max_iter=2000, tol=1e-12, rng=rng)
    >>> abs(float(w[0]) - 1.0) < 1e-3, res.converged
    (True, True)
    """
    if max_iter == 0:
        data_loss, _ = obj.batch_loss_and_grad(np.arange(obj.n_samples), w)
        return Result(w, 0, False, [data_loss + obj.penalty(w)])
    curve: list[float] = []
    best, no_change = math.inf, 0
    for n_epoch in range(1, max_iter + 1):
        loss = stochastic_epoch(obj, w, state, **epoch)
        if not math.isfinite(loss):
            msg = (
                f"{epoch['rule']} diverged (objective {loss}) at epoch {n_epoch}: "
                f"lower learning_rate (now {epoch['learning_rate']})"
            )
            raise FloatingPointError(msg)
        curve.append(loss)
        if callback is not None:
            callback(n_epoch, loss)
        no_change = no_change + 1 if loss > best - tol else 0
        best = min(best, loss)
        if no_change >= N_ITER_NO_CHANGE:
            return Result(w, n_epoch, True, curve)
    return Result(w, max_iter, False, curve)
