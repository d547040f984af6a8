"""Minimisers of an objective of one flat vector: L-BFGS, Newton-CG, momentum SGD, Adam.

Each solver sees the objective only through the methods it needs (the
protocols below), never the data, the classes or the estimator, so each can
be run and tested alone on a quadratic with a known minimiser, and an
objective reduced over blocks of a Dask array can be handed to the same code.
Solvers return a :class:`Result` and do not warn: whether an unconverged run
deserves a ``ConvergenceWarning`` is the estimator's call.

``max_iter = 0`` returns the starting point untouched, with its objective as
the only entry of the loss curve (scikit-learn's way to inspect an initial
state).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import DTypeLike, NDArray

from softgrad._lib._extras import require

__all__ = [
    "Result",
    "StochasticState",
    "conjugate_gradient",
    "lbfgs",
    "newton_cg",
    "stochastic",
    "stochastic_epoch",
]

FloatArray = NDArray[np.floating[Any]]
Callback = Callable[[int, float], Any]
Rule = Literal["sgd", "adam"]

HESSIAN_ROWS = 8192  # newton-cg: rows of a subsampled Hessian on large data
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


class MiniBatch(Protocol):
    """What SGD and Adam need: an unbiased mini-batch gradient and the exact penalty."""

    n_samples: int

    def batch_loss_and_grad(
        self, rows: NDArray[np.intp], w: FloatArray, /
    ) -> tuple[float, FloatArray]: ...
    def penalty(self, w: FloatArray, /) -> float: ...


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
) -> Result:
    """scipy's L-BFGS-B fed the fused loss and gradient, with scikit-learn's stopping rules.

    Stops when the largest gradient entry is at most ``tol`` (``gtol``) or the
    relative decrease falls to 64 machine epsilons (``ftol``).

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
    minimize = require("scipy.optimize", "models", feature="the lbfgs solver").minimize

    curve: list[float] = []

    def record(intermediate_result: Any) -> None:
        curve.append(float(intermediate_result.fun))
        if callback is not None:
            callback(len(curve), curve[-1])

    res = minimize(
        obj.loss_and_grad,
        w0,
        method="L-BFGS-B",
        jac=True,
        callback=record,
        # scikit-learn's settings, so that both stop at the same point
        options={"maxiter": max_iter, "maxls": 50, "gtol": tol, "ftol": 64 * np.finfo(float).eps},
    )
    if not curve:
        curve.append(float(res.fun))
    return Result(
        np.asarray(res.x, dtype=np.float64),
        int(res.nit),
        bool(res.success),
        curve,
        str(res.message),
    )


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
    rng = rng if rng is not None else np.random.default_rng()
    w = w0.copy()
    f, g = obj.loss_and_grad(w)
    curve: list[float] = []
    for it in range(1, max_iter + 1):
        if float(np.max(np.abs(g))) <= tol:
            return Result(w, it - 1, True, curve or [f])
        g_norm1 = float(np.sum(np.abs(g)))
        # forcing term: a loose solve far away, a tight one near the optimum (superlinear)
        eta = min(0.5, math.sqrt(g_norm1))
        rows = None if m == n else np.sort(rng.choice(n, size=m, replace=False))
        p = conjugate_gradient(obj.hessp(w, rows), g, max_cg, eta)
        slope = float(g @ p)
        if slope >= 0:  # not a descent direction (rounding): fall back to the gradient
            p, slope = -g, -float(g @ g)
        # the loss is only known to the data dtype's rounding: a decrease smaller than
        # that cannot be seen, so a Newton step predicting one is judged by its gradient
        noise = 16 * float(np.finfo(obj.dtype).eps) * max(abs(f), 1.0)
        step, accepted, blind = 1.0, False, False
        for _ in range(30):
            w_new = w + step * p
            f_new = obj.loss(w_new)  # one product with X per trial
            if f_new <= f + 1e-4 * step * slope:
                accepted = True
                break
            if step == 1.0 and -slope <= noise and f_new <= f + noise:
                accepted = blind = True
                break
            step *= 0.5
        if not accepted:
            return Result(w, it, False, curve or [f], "line search failed")
        g_max = float(np.max(np.abs(g)))
        f_new, g_new = obj.loss_and_grad(w_new)  # reuses the trial's logits: one product
        if blind and float(np.max(np.abs(g_new))) >= g_max:
            # no visible progress at the rounding level of the data's dtype: stop here
            return Result(w, it, g_max <= tol, curve or [f], "no progress at the data's precision")
        w, f, g = w_new, f_new, g_new
        curve.append(f)
        if callback is not None:
            callback(it, f)
    converged = float(np.max(np.abs(g), initial=0.0)) <= tol
    return Result(w, max_iter, converged, curve or [f])


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
            self.m *= MOMENTUM
            self.m -= learning_rate * grad
            return self.m
        b1, b2 = ADAM_BETAS
        self.m *= b1
        self.m += (1 - b1) * grad
        self.v *= b2
        self.v += (1 - b2) * grad * grad
        m_hat = self.m / (1 - b1**self.t)
        v_hat = self.v / (1 - b2**self.t)
        step: FloatArray = -learning_rate * m_hat / (np.sqrt(v_hat) + ADAM_EPS)
        return step


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


def stochastic(
    obj: MiniBatch,
    w: FloatArray,
    state: StochasticState,
    *,
    rule: Rule,
    learning_rate: float,
    batch_size: int,
    max_iter: int,
    tol: float,
    rng: np.random.Generator,
    callback: Callback | None = None,
) -> Result:
    """Epochs of :func:`stochastic_epoch` (``w`` updated in place) until the loss stalls.

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
    for epoch in range(1, max_iter + 1):
        loss = stochastic_epoch(
            obj, w, state, rule=rule, learning_rate=learning_rate, batch_size=batch_size, rng=rng
        )
        if not math.isfinite(loss):
            msg = (
                f"{rule} diverged (objective {loss}) at epoch {epoch}: "
                f"lower learning_rate (now {learning_rate})"
            )
            raise FloatingPointError(msg)
        curve.append(loss)
        if callback is not None:
            callback(epoch, loss)
        no_change = no_change + 1 if loss > best - tol else 0
        best = min(best, loss)
        if no_change >= N_ITER_NO_CHANGE:
            return Result(w, epoch, True, curve)
    return Result(w, max_iter, False, curve)
