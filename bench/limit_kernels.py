"""Minimal hand-written numba kernels of the trajectory benchmark's workloads: the machine's limit.

Each kernel runs one optimizer on one 2-D landscape for every start, the way a person would write it
for speed in a few minutes: blocks of :data:`BLOCK` starts held as separate arrays per coordinate and
per state variable (structure of arrays), the step loop outside and the loop over the block's starts
inside (so that it vectorises), blocks spread over numba's threads (``prange``), float64, no stopping
rules and no record: only the final positions. The update is PyTorch's (the same operations as
gdlab's rules, written out); the per-step factors are computed in the step loop.

Not part of gdlab: the benchmark times gdlab's fused trajectories against these, in the same process,
on the same starts and threads (``bench_trajectories.py``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

BLOCK = 512
JIT = {"parallel": True, "error_model": "numpy", "fastmath": False, "cache": True}


@njit(**JIT)
def adam_rosenbrock(x0, y0, steps, lr, beta1, beta2, eps):
    """Adam on ``(1 − x)² + 100(y − x²)²``."""
    n = x0.size
    ox = np.empty(n)
    oy = np.empty(n)
    for blk in prange((n + BLOCK - 1) // BLOCK):
        lo = blk * BLOCK
        hi = min(n, lo + BLOCK)
        x = x0[lo:hi].copy()
        y = y0[lo:hi].copy()
        mx = np.zeros(hi - lo)
        my = np.zeros(hi - lo)
        vx = np.zeros(hi - lo)
        vy = np.zeros(hi - lo)
        for t in range(1, steps + 1):
            step_size = lr / (1.0 - beta1**t)
            root = math.sqrt(1.0 - beta2**t)
            for i in range(hi - lo):
                a = x[i]
                b = y[i]
                h = b - a * a
                gx = -400.0 * a * h - 2.0 * (1.0 - a)
                gy = 200.0 * h
                mx[i] = beta1 * mx[i] + (1.0 - beta1) * gx
                my[i] = beta1 * my[i] + (1.0 - beta1) * gy
                vx[i] = beta2 * vx[i] + (1.0 - beta2) * gx * gx
                vy[i] = beta2 * vy[i] + (1.0 - beta2) * gy * gy
                x[i] = a - step_size * mx[i] / (math.sqrt(vx[i]) / root + eps)
                y[i] = b - step_size * my[i] / (math.sqrt(vy[i]) / root + eps)
        ox[lo:hi] = x
        oy[lo:hi] = y
    return ox, oy


@njit(**JIT)
def heavy_ball_elliptic(x0, y0, steps, lr, momentum):
    """SGD with momentum (``b = μb + g``, ``θ −= ηb``) on the elliptic bowl ``x² + 10y²``."""
    n = x0.size
    ox = np.empty(n)
    oy = np.empty(n)
    for blk in prange((n + BLOCK - 1) // BLOCK):
        lo = blk * BLOCK
        hi = min(n, lo + BLOCK)
        x = x0[lo:hi].copy()
        y = y0[lo:hi].copy()
        bx = np.zeros(hi - lo)
        by = np.zeros(hi - lo)
        for _ in range(steps):
            for i in range(hi - lo):
                bx[i] = momentum * bx[i] + 2.0 * x[i]
                by[i] = momentum * by[i] + 20.0 * y[i]
                x[i] = x[i] - lr * bx[i]
                y[i] = y[i] - lr * by[i]
        ox[lo:hi] = x
        oy[lo:hi] = y
    return ox, oy


@njit(**JIT)
def heavy_ball_elliptic_checked(x0, y0, steps, lr, momentum, bound_squared, limit):
    """:func:`heavy_ball_elliptic` doing, in addition, what any exact stopping rule needs at every
    step: the loss at the point, and a test of it, of the gradient and of the point (non-finite, out
    of the box, blown up). A flagged block stops early; what gdlab then does exactly is left out.
    Not a limit for the goal's figure: it shows the price of the rules on a landscape this cheap."""
    n = x0.size
    ox = np.empty(n)
    oy = np.empty(n)
    for blk in prange((n + BLOCK - 1) // BLOCK):
        lo = blk * BLOCK
        hi = min(n, lo + BLOCK)
        x = x0[lo:hi].copy()
        y = y0[lo:hi].copy()
        bx = np.zeros(hi - lo)
        by = np.zeros(hi - lo)
        for _ in range(steps):
            flag = 0
            for i in range(hi - lo):
                xi, yi = x[i], y[i]
                loss = xi * xi + 10.0 * yi * yi
                gx, gy = 2.0 * xi, 20.0 * yi
                total = bx[i] + by[i] + (gx * gx + gy * gy + loss)
                outside = not (xi * xi + yi * yi < bound_squared)
                flag |= 1 if (total - total != 0) | outside | (loss > limit) else 0
                bx[i] = momentum * bx[i] + gx
                by[i] = momentum * by[i] + gy
                x[i] = xi - lr * bx[i]
                y[i] = yi - lr * by[i]
            if flag:
                break
        ox[lo:hi] = x
        oy[lo:hi] = y
    return ox, oy


@njit(**JIT)
def rmsprop_rastrigin(x0, y0, steps, lr, alpha, eps):
    """RMSprop on Rastrigin ``20 + Σ x_i² − 10 cos(2πx_i)`` (gradient ``2x + 20π sin(2πx)``)."""
    n = x0.size
    ox = np.empty(n)
    oy = np.empty(n)
    two_pi = 2.0 * math.pi
    for blk in prange((n + BLOCK - 1) // BLOCK):
        lo = blk * BLOCK
        hi = min(n, lo + BLOCK)
        x = x0[lo:hi].copy()
        y = y0[lo:hi].copy()
        vx = np.zeros(hi - lo)
        vy = np.zeros(hi - lo)
        for _ in range(steps):
            for i in range(hi - lo):
                gx = 2.0 * x[i] + 10.0 * two_pi * math.sin(two_pi * x[i])
                gy = 2.0 * y[i] + 10.0 * two_pi * math.sin(two_pi * y[i])
                vx[i] = alpha * vx[i] + (1.0 - alpha) * gx * gx
                vy[i] = alpha * vy[i] + (1.0 - alpha) * gy * gy
                x[i] = x[i] - lr * gx / (math.sqrt(vx[i]) + eps)
                y[i] = y[i] - lr * gy / (math.sqrt(vy[i]) + eps)
        ox[lo:hi] = x
        oy[lo:hi] = y
    return ox, oy


@njit(**JIT)
def nadam_himmelblau(x0, y0, steps, lr, beta1, beta2, eps, momentum_decay):
    """NAdam (PyTorch's, with its momentum schedule) on ``(x² + y − 11)² + (x + y² − 7)²``."""
    n = x0.size
    ox = np.empty(n)
    oy = np.empty(n)
    for blk in prange((n + BLOCK - 1) // BLOCK):
        lo = blk * BLOCK
        hi = min(n, lo + BLOCK)
        x = x0[lo:hi].copy()
        y = y0[lo:hi].copy()
        mx = np.zeros(hi - lo)
        my = np.zeros(hi - lo)
        vx = np.zeros(hi - lo)
        vy = np.zeros(hi - lo)
        mu_product = 1.0
        for t in range(1, steps + 1):
            mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * momentum_decay))
            mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
            mu_product *= mu
            bias2 = 1.0 - beta2**t
            c_grad = lr * (1.0 - mu) / (1.0 - mu_product)
            c_mom = lr * mu_next / (1.0 - mu_product * mu_next)
            for i in range(hi - lo):
                a = x[i]
                b = y[i]
                p = a * a + b - 11.0
                q = a + b * b - 7.0
                gx = 4.0 * a * p + 2.0 * q
                gy = 2.0 * p + 4.0 * b * q
                mx[i] = beta1 * mx[i] + (1.0 - beta1) * gx
                my[i] = beta1 * my[i] + (1.0 - beta1) * gy
                vx[i] = beta2 * vx[i] + (1.0 - beta2) * gx * gx
                vy[i] = beta2 * vy[i] + (1.0 - beta2) * gy * gy
                dx = math.sqrt(vx[i] / bias2) + eps
                dy = math.sqrt(vy[i] / bias2) + eps
                x[i] = a - c_grad * gx / dx - c_mom * mx[i] / dx
                y[i] = b - c_grad * gy / dy - c_mom * my[i] / dy
        ox[lo:hi] = x
        oy[lo:hi] = y
    return ox, oy
