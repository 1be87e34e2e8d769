"""Near-minimax polynomial coefficients for the kernels' exp and log1p.

Interpolates at Chebyshev nodes (within a small factor of minimax), rounds
the coefficients to the target float type, and reports the worst relative
error of the rounded polynomial on a dense grid, evaluated exactly. The
float32 log1p over all of [0, 1] is fitted to its error in the result
instead (see `fit_log1p_unit`). The output is pasted into
src/kernels/math.rs.

    python tools/fit_polynomials.py
"""

import mpmath as mp
import numpy as np

mp.mp.dps = 60
LN2 = mp.log(2)


def exp_tail(r):
    """(exp(r) - 1 - r) / r^2, the part of exp the polynomial carries."""
    return mp.hyp1f1(1, 3, r) / 2


def atanh_tail(z):
    """(2 atanh(s) / s - 2) / z with z = s^2: R(z) / z in fdlibm's log."""
    # 2 atanh(s) / s = 2 * 2F1(1/2, 1; 3/2; z), so the tail is a series too.
    return 2 * (mp.hyp2f1(mp.mpf(1) / 2, 1, mp.mpf(3) / 2, z) - 1) / z if z else mp.mpf(2) / 3


def fit(f, a, b, degree):
    nodes = [(a + b) / 2 + (b - a) / 2 * mp.cos(mp.pi * (2 * k + 1) / (2 * (degree + 1))) for k in range(degree + 1)]
    matrix = mp.matrix([[x**j for j in range(degree + 1)] for x in nodes])
    coefs = mp.lu_solve(matrix, mp.matrix([f(x) for x in nodes]))
    return [coefs[j] for j in range(degree + 1)]


def worst(f, a, b, coefs, dtype):
    rounded = [mp.mpf(float(dtype(c))) for c in coefs]
    err = 0
    for x in mp.linspace(a, b, 2001):
        p = mp.mpf(0)
        for c in reversed(rounded):
            p = p * x + c
        err = max(err, abs(p / f(x) - 1))
    return rounded, err


def fit_log1p_unit(degree):
    """k(e) = (log1p(e) - e) / e^2 on [0, 1], constant term the exact -1/2,
    for log1p(e) = e + e^2 k(e) in float32: weighted by e^2 / log1p(e), so
    that the fit minimizes k's error as it reaches log1p (Lawson's
    iteration of weighted least squares towards minimax), and rounded one
    coefficient at a time from the lowest degree up, the higher ones refitted
    to absorb each rounding. Returns the coefficients (lowest degree first)
    and the worst error in log1p relative to 2^-24."""
    grid = mp.linspace(0, 1, 4001)[1:]
    e = np.array([float(v) for v in grid])
    k = np.array([float((mp.log1p(v) - v) / v**2) for v in grid])
    weight = e**2 / np.array([float(mp.log1p(v)) for v in grid])

    def refit(fixed):
        residual = (k - sum(c * e**i for i, c in enumerate(fixed))) * weight
        basis = np.stack([e**i for i in range(len(fixed), degree + 1)], 1) * weight[:, None]
        lawson = np.ones_like(e)
        for _ in range(60):
            sol = np.linalg.lstsq(basis * np.sqrt(lawson)[:, None], residual * np.sqrt(lawson), rcond=None)[0]
            lawson = lawson * np.abs(basis @ sol - residual)
            lawson /= lawson.sum()
        return sol

    coefs = [-0.5]
    while len(coefs) <= degree:
        coefs.append(float(np.float32(refit(coefs)[0])))
    err = np.max(np.abs(sum(c * e**i for i, c in enumerate(coefs)) - k) * weight)
    return coefs, err / 2.0**-24


for degree in [8, 9]:
    coefs, err = fit_log1p_unit(degree)
    print(f"log1p_unit float32 degree {degree}: error in log1p {err:.3f} x 2^-24")
    print(f"    [{', '.join(repr(c) for c in reversed(coefs))}]")

for name, f, a, b, degrees in [
    ("exp", exp_tail, -LN2 / 2, LN2 / 2, {np.float32: [4, 5], np.float64: [8, 9]}),
    ("log", atanh_tail, mp.mpf(0), mp.mpf(1) / 25, {np.float32: [2, 3], np.float64: [6, 7]}),
]:
    for dtype, degree in [(t, d) for t, ds in degrees.items() for d in ds]:
        rounded, err = worst(f, a, b, fit(f, a, b, degree), dtype)
        highest_first = ", ".join(repr(float(dtype(c))) for c in reversed(rounded))
        print(f"{name} {dtype.__name__} degree {degree}: relative error {float(err):.2e}")
        print(f"    [{highest_first}]")
