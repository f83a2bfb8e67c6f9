"""L-BFGS (Liu & Nocedal 1989) in PyTorch's form, one quasi-Newton iteration per step, with a
strong-Wolfe line search (Nocedal & Wright, *Numerical Optimization*, 2nd ed., Alg. 3.5 and 3.6)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from gdlab.core.batching import as_params, check_like
from gdlab.core.hyper import Hyper
from gdlab.core.objective import Objective
from gdlab.core.optimizer import LR_OVERRIDE, Optimizer, State, StepResult
from gdlab.core.statespec import DIM, Array, Count, Maybe, Real, StateSpec

#: Curvature pairs with yᵀs at or below this are skipped (PyTorch's threshold), keeping H positive.
CURVATURE_EPS = 1e-10


class LBFGS(Optimizer):
    r"""Limited-memory BFGS: one iteration of torch.optim.LBFGS per step, optional strong Wolfe search.

    With gradient :math:`g_k` at :math:`\theta_k` and the stored pairs
    :math:`s_i = \theta_{i+1} - \theta_i`, :math:`y_i = g_{i+1} - g_i` (the last ``history_size``
    ones with :math:`y_i^\top s_i > 10^{-10}`):

    .. math::
        d_k &= -H_k g_k \quad\text{(two-loop recursion; } d_1 = -g_1)\\
        H_k^0 &= \gamma_k I,\qquad \gamma_k = \frac{s_{k-1}^\top y_{k-1}}{y_{k-1}^\top y_{k-1}}\\
        \theta_{k+1} &= \theta_k + t_k d_k

    The two-loop recursion, with :math:`\rho_i = 1/y_i^\top s_i`: :math:`q = g_k`; for i from newest
    to oldest :math:`a_i = \rho_i s_i^\top q,\ q \leftarrow q - a_i y_i`; then
    :math:`r = \gamma_k q`; for i from oldest to newest :math:`b_i = \rho_i y_i^\top r,\
    r \leftarrow r + (a_i - b_i) s_i`; and :math:`d_k = -r`.

    Step length: the first iteration tries :math:`t = \min(1, 1/\lVert g_1\rVert_1)\,\eta`, later ones
    :math:`t = \eta` (``lr``). With ``line_search_fn=None`` that t is used as is; with
    ``"strong_wolfe"`` it starts :func:`strong_wolfe`, which returns a t satisfying

    .. math::
        L(\theta + t d) \le L(\theta) + c_1 t\, g^\top d, \qquad
        \lvert \nabla L(\theta + t d)^\top d\rvert \le c_2 \lvert g^\top d\rvert .

    No move (a converged step) when :math:`\max_i |g_i| \le` ``tolerance_grad`` or
    :math:`g^\top d > -`\ ``tolerance_change``. ``tolerance_change`` also ends the line search when
    the bracket is shorter than it (times :math:`\max|d|`).

    This matches ``torch.optim.LBFGS(max_iter=1)`` called once per step (with
    ``line_search_fn=None``); PyTorch's own strong-Wolfe search differs in its bracketing and
    interpolation safeguards, so with a line search the iterates differ but reach the same minimizer.

    The history is kept as fixed-size arrays in the state (``s_hist`` and ``y_hist`` of shape
    ``(history_size, d)``, oldest first, ``hist_len`` of them valid), so a state can be saved:
    memory is 2·history_size·d floats. One problem at a time: params must have shape ``(d,)``.
    The loss and gradient where a line search ended are kept (``last_point``, ``last_loss``,
    ``last_grad``), so the next step does not evaluate them again: one evaluation per trial point,
    as in PyTorch. L-BFGS needs the objective: it is an :class:`~gdlab.core.optimizer.Optimizer`
    with :meth:`step` and no ``update``.
    """

    #: One problem at a time: the history and the line search belong to a single run.
    batched = False
    name = "lbfgs"
    family = "second-order"
    needs = "value"
    hyperparams = (
        Hyper("lr", 1.0, low=0.0, batchable=False, doc="step length η tried first (the line search starts there)"),
        Hyper("history_size", 100, kind="int", low=1, doc="number of curvature pairs (s, y) kept"),
        Hyper("tolerance_grad", 1e-7, low=0.0, batchable=False,
              doc="converged (no move) when max |g| ≤ tolerance_grad"),
        Hyper("tolerance_change", 1e-9, low=0.0, batchable=False,
              doc="no move when gᵀd > −tolerance_change; also the line search's bracket tolerance"),
        Hyper("line_search_fn", None, kind="choice", choices=("strong_wolfe",), optional=True,
              doc="None: fixed step t; 'strong_wolfe': Nocedal–Wright strong-Wolfe line search"),
        Hyper("c1", 1e-4, low=0.0, high=1.0, low_open=True, high_open=True, batchable=False,
              doc="sufficient-decrease constant c₁ of the Wolfe conditions"),
        Hyper("c2", 0.9, low=0.0, high=1.0, low_open=True, high_open=True, batchable=False,
              doc="curvature constant c₂ of the strong Wolfe conditions (c₁ < c₂ < 1)"),
        Hyper("max_ls", 25, kind="int", low=1, doc="most function evaluations of one line search"),
    )

    def _check_combination(self) -> None:
        if not self.c1 < self.c2:
            raise ValueError(f"lbfgs: the Wolfe constants need c1 < c2, got c1={self.c1:g}, c2={self.c2:g}")

    # -- the public API ----------------------------------------------------------------------
    def _init_buffers(self, params: np.ndarray) -> State:
        self._check_single(params)
        d, m = params.shape[0], self.history_size
        return {
            "n_iter": 0,
            "func_evals": 0,
            "direction": np.zeros(d),
            "step_length": 0.0,
            "s_hist": np.zeros((m, d)),
            "y_hist": np.zeros((m, d)),
            "rho_hist": np.zeros(m),
            "hist_len": 0,
            "h_diag": 1.0,
            "prev_grad": np.zeros(d),
            "prev_loss": 0.0,
            "last_point": None,
            "last_loss": 0.0,
            "last_grad": None,
        }

    def state_spec(self) -> StateSpec:
        """What the state holds (see :meth:`_init_buffers`): counters, one run's vectors of ``d``
        entries, the history of ``history_size`` pairs, and the point a line search ended at."""
        m = self.history_size
        vector = Array((DIM,))
        return StateSpec({
            "step": Count(), "n_iter": Count(), "func_evals": Count(), "direction": vector, "step_length": Real(),
            "s_hist": Array((m, DIM)), "y_hist": Array((m, DIM)), "rho_hist": Array((m,)), "hist_len": Count(m),
            "h_diag": Real(), "prev_grad": vector, "prev_loss": Real(), "last_point": Maybe(vector),
            "last_loss": Real(), "last_grad": Maybe(vector),
        })

    def step(
        self, objective: Objective, params: Any, state: State, lr: Any = None, grad: Any = None
    ) -> StepResult:
        """One L-BFGS iteration on ``objective`` (see the class docstring for the math)."""
        p = as_params(params)
        self._check_single(p)
        _check_objective(objective)
        lr_now = self._step_lr(lr)
        evals = 0
        known = state.get("last_point")
        if known is not None and np.array_equal(known, p):  # the line search ended here: reuse it
            f, g = state["last_loss"], state["last_grad"] if grad is None else grad
        elif grad is None:
            f, g = objective.value_and_grad(p)
            evals = 1
        else:
            g, f = grad, objective.value(p)
            evals = 1
        f = float(np.asarray(f))
        g = check_like(g, p)
        new: State = {**state, "step": state["step"] + 1, "func_evals": state["func_evals"] + evals,
                      "last_point": None, "last_grad": None}
        if not (math.isfinite(f) and np.all(np.isfinite(g))):
            return StepResult(p, {**state, "step": state["step"] + 1}, np.True_)
        if np.max(np.abs(g)) <= self.tolerance_grad:
            return StepResult(p, new, np.False_)

        n_iter = state["n_iter"] + 1
        new["n_iter"] = n_iter
        if n_iter == 1:
            d = -g
            m = self.history_size
            new.update(s_hist=np.zeros((m, p.size)), y_hist=np.zeros((m, p.size)), rho_hist=np.zeros(m),
                       hist_len=0, h_diag=1.0)
        else:
            self._remember(new, g - state["prev_grad"], state["direction"] * state["step_length"])
            d = two_loop(g, new["s_hist"], new["y_hist"], new["rho_hist"], new["hist_len"], new["h_diag"])
        new["prev_grad"] = g.copy()
        new["prev_loss"] = f
        t = min(1.0, 1.0 / np.abs(g).sum()) * lr_now if n_iter == 1 else lr_now
        new["direction"] = d
        new["step_length"] = t

        gtd = g @ d
        if gtd > -self.tolerance_change:
            return StepResult(p, new, np.False_)
        if self.line_search_fn == "strong_wolfe":

            def phi(alpha: float) -> tuple[float, np.ndarray]:
                value, gradient = objective.value_and_grad(p + alpha * d)
                return float(np.asarray(value)), np.asarray(gradient, dtype=p.dtype)

            found = strong_wolfe(
                phi, f, g, d, t, c1=self.c1, c2=self.c2, max_evals=self.max_ls, xtol=self.tolerance_change
            )
            t = found.alpha
            new["step_length"] = t
            new["func_evals"] += found.evals
            if t != 0.0:  # φ(t) was evaluated at exactly p + t·d: the next step starts from it
                new.update(last_point=p + t * d, last_loss=found.value, last_grad=found.grad)
        new_params = p + t * d
        if not np.all(np.isfinite(new_params)):  # keep the whole old state, as guard_nonfinite does per run
            return StepResult(p, {**state, "step": state["step"] + 1}, np.True_)
        return StepResult(new_params, new, np.False_)

    # -- pieces -------------------------------------------------------------------------------
    def _remember(self, state: State, y: np.ndarray, s: np.ndarray) -> None:
        """Store the pair (s, y) if its curvature yᵀs exceeds 1e-10 (dropping the oldest if full)."""
        ys = y @ s
        if not ys > CURVATURE_EPS:
            return
        n, m = state["hist_len"], self.history_size
        s_hist, y_hist, rho_hist = state["s_hist"], state["y_hist"], state["rho_hist"]
        if n == m:
            s_hist = np.concatenate([s_hist[1:], s[np.newaxis]])
            y_hist = np.concatenate([y_hist[1:], y[np.newaxis]])
            rho_hist = np.concatenate([rho_hist[1:], [1.0 / ys]])
        else:
            s_hist, y_hist, rho_hist = s_hist.copy(), y_hist.copy(), rho_hist.copy()
            s_hist[n], y_hist[n], rho_hist[n] = s, y, 1.0 / ys
            n += 1
        state.update(s_hist=s_hist, y_hist=y_hist, rho_hist=rho_hist, hist_len=n, h_diag=ys / (y @ y))

    def _check_single(self, params: np.ndarray) -> None:
        if params.ndim != 1:
            raise ValueError(
                f"lbfgs handles one problem at a time: params must have shape (d,), got {params.shape}; "
                "run each problem of a batch with its own state"
            )

    def _step_lr(self, lr: Any) -> float:
        if lr is None:
            return self.lr
        if np.ndim(lr) != 0:
            raise ValueError(f"lbfgs: the lr override must be a single number, got shape {np.shape(lr)}")
        return float(LR_OVERRIDE.validate(lr, self.name))


def _check_objective(objective: Objective) -> None:
    if not getattr(objective, "has_value", True):
        raise TypeError(
            f"lbfgs needs the loss value, but the objective {type(objective).__name__} provides none "
            "(has_value is False)"
        )


def two_loop(
    g: np.ndarray, s_hist: np.ndarray, y_hist: np.ndarray, rho_hist: np.ndarray, n: int, h_diag: float
) -> np.ndarray:
    """The L-BFGS direction −H g by the two-loop recursion over the first ``n`` stored pairs."""
    q = -g
    a = np.zeros(n)
    for i in range(n - 1, -1, -1):
        a[i] = (s_hist[i] @ q) * rho_hist[i]
        q = q - a[i] * y_hist[i]
    r = q * h_diag
    for i in range(n):
        b = (y_hist[i] @ r) * rho_hist[i]
        r = r + (a[i] - b) * s_hist[i]
    return r


# -- the strong-Wolfe line search ----------------------------------------------------------------
class LineSearchResult(NamedTuple):
    """Outcome of :func:`strong_wolfe`."""

    #: The step length t (0 when no trial lowered the loss).
    alpha: float
    #: L(θ + t d) and ∇L(θ + t d).
    value: float
    grad: np.ndarray
    #: Function evaluations used.
    evals: int
    #: Whether both strong Wolfe conditions hold at ``alpha``.
    wolfe: bool


class _Trial(NamedTuple):
    alpha: float
    value: float
    grad: np.ndarray
    slope: float  # φ'(α) = ∇L(θ + αd)ᵀd


def strong_wolfe(
    phi: Callable[[float], tuple[float, np.ndarray]],
    f0: float,
    g0: np.ndarray,
    d: np.ndarray,
    alpha1: float,
    c1: float = 1e-4,
    c2: float = 0.9,
    max_evals: int = 25,
    xtol: float = 1e-9,
) -> LineSearchResult:
    r"""A step length t satisfying the strong Wolfe conditions along a descent direction ``d``.

    ``phi(t)`` returns :math:`(L(\theta + t d), \nabla L(\theta + t d))`; ``f0`` and ``g0`` are the
    loss and gradient at t = 0. With :math:`\varphi(t) = L(\theta + t d)` the conditions are

    .. math::
        \varphi(t) \le \varphi(0) + c_1 t \varphi'(0),\qquad |\varphi'(t)| \le c_2 |\varphi'(0)| .

    Bracketing (Nocedal & Wright Alg. 3.5) from :math:`t_1` = ``alpha1``: a trial that breaks
    sufficient decrease or does not improve on the previous trial brackets a solution in
    [previous, trial]; one with :math:`|\varphi'| \le c_2|\varphi'(0)|` is accepted; one with
    :math:`\varphi' \ge 0` brackets [trial, previous]; otherwise the next trial is the minimizer of
    the cubic through the last two trials, kept in [t + 0.1Δ, t + 10Δ] (Δ = t − t_prev).
    Zoom (Alg. 3.6) then tries the minimizer of the cubic interpolating φ and φ' at both ends of the
    bracket (bisection when it is not finite or outside the bracket; kept ≥ 10 % of the bracket
    away from its ends), keeping the end with the lower φ as :math:`t_{lo}`.

    Stops after ``max_evals`` evaluations or when the bracket is shorter than ``xtol / max|d|``;
    then it returns the best point that satisfies sufficient decrease (``wolfe=False``), which is
    t = 0 when there is none. Non-finite trials count as too long.
    """
    slope0 = float(g0 @ d)
    if not slope0 < 0:
        raise ValueError(f"strong_wolfe: d is not a descent direction (gᵀd = {slope0:g} ≥ 0)")
    d_max = float(np.max(np.abs(d)))
    evals = 0

    def trial(alpha: float) -> _Trial:
        nonlocal evals
        evals += 1
        value, grad = phi(alpha)
        return _Trial(alpha, float(value), grad, float(grad @ d))

    def armijo_fails(t: _Trial) -> bool:
        return not (math.isfinite(t.value) and math.isfinite(t.slope)) or t.value > f0 + c1 * t.alpha * slope0

    def curvature_holds(t: _Trial) -> bool:
        return abs(t.slope) <= -c2 * slope0

    def zoom(lo: _Trial, hi: _Trial) -> LineSearchResult:
        while evals < max_evals and abs(hi.alpha - lo.alpha) * d_max >= xtol:
            new = trial(_interpolate(lo, hi))
            if armijo_fails(new) or new.value >= lo.value:
                hi = new
                continue
            if curvature_holds(new):
                return LineSearchResult(new.alpha, new.value, new.grad, evals, True)
            if new.slope * (hi.alpha - lo.alpha) >= 0:
                hi = lo
            lo = new
        return LineSearchResult(lo.alpha, lo.value, lo.grad, evals, False)

    prev = _Trial(0.0, float(f0), g0, slope0)
    alpha = float(alpha1)
    while evals < max_evals:
        cur = trial(alpha)
        if armijo_fails(cur) or (prev.alpha > 0 and cur.value >= prev.value):
            return zoom(prev, cur)
        if curvature_holds(cur):
            return LineSearchResult(cur.alpha, cur.value, cur.grad, evals, True)
        if cur.slope >= 0:
            return zoom(cur, prev)
        alpha = _extrapolate(prev, cur)
        prev = cur
    return LineSearchResult(prev.alpha, prev.value, prev.grad, evals, False)


def cubic_minimizer(a: float, fa: float, da: float, b: float, fb: float, db: float) -> float:
    r"""Minimizer of the cubic with values ``fa``, ``fb`` and slopes ``da``, ``db`` at ``a`` and ``b``.

    Nocedal & Wright (3.59):

    .. math::
        d_1 = \varphi'_a + \varphi'_b - 3\frac{\varphi_a - \varphi_b}{a - b},\quad
        d_2 = \operatorname{sign}(b - a)\sqrt{d_1^2 - \varphi'_a\varphi'_b},\quad
        x = b - (b - a)\frac{\varphi'_b + d_2 - d_1}{\varphi'_b - \varphi'_a + 2 d_2}.

    Returns NaN when the cubic has no local minimizer (negative discriminant) or the formula breaks
    down (a zero denominator); exact for a quadratic φ.
    """
    with np.errstate(all="ignore"):
        d1 = da + db - 3.0 * (fa - fb) / (a - b)
        disc = d1 * d1 - da * db
        if not (math.isfinite(disc) and disc >= 0):
            return math.nan
        d2 = math.copysign(math.sqrt(disc), b - a)
        denom = db - da + 2.0 * d2
        if denom == 0 or not math.isfinite(denom):
            return math.nan
        return b - (b - a) * (db + d2 - d1) / denom


def _interpolate(lo: _Trial, hi: _Trial) -> float:
    left, right = min(lo.alpha, hi.alpha), max(lo.alpha, hi.alpha)
    width = right - left
    x = cubic_minimizer(lo.alpha, lo.value, lo.slope, hi.alpha, hi.value, hi.slope)
    if not (math.isfinite(x) and left < x < right):
        return left + 0.5 * width
    return min(max(x, left + 0.1 * width), right - 0.1 * width)


def _extrapolate(prev: _Trial, cur: _Trial) -> float:
    delta = cur.alpha - prev.alpha
    low, high = cur.alpha + 0.1 * delta, cur.alpha + 10.0 * delta
    x = cubic_minimizer(prev.alpha, prev.value, prev.slope, cur.alpha, cur.value, cur.slope)
    if not math.isfinite(x):
        return high
    return min(max(x, low), high)
