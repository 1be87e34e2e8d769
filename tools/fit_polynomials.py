"""Near-minimax polynomial coefficients for the kernels' exp and log1p.

Interpolates at Chebyshev nodes (within a small factor of minimax), rounds
the coefficients to the target float type, and reports the worst relative
error of the rounded polynomial on a dense grid, evaluated exactly. The
log1p over all of [0, 1] (float32 and float64) is fitted to its error
in the result instead (see `fit_log1p_unit`). The output is pasted into
src/kernels/math.rs.

    python tools/fit_polynomials.py
"""

import mpmath as mp
import numpy as np

mp.mp.dps = 40
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


def fit_log1p_unit(degree, dtype, points=800, iterations=20):
    """k(e) = (log1p(e) - e) / e^2 on [0, 1], constant term the exact -1/2,
    for log1p(e) = e + e^2 k(e): weighted by e^2 / log1p(e), so that the fit
    minimizes k's error as it reaches log1p (Lawson's iteration of weighted
    least squares towards minimax), and rounded to `dtype` one coefficient
    at a time from the lowest degree up, the higher ones refitted to absorb
    each rounding. Returns the coefficients (lowest degree first) and the
    worst error in log1p relative to the type's 2^-p (half an ULP)."""
    grid = [mp.mpf(i) / points for i in range(1, points + 1)]
    k = [(mp.log1p(v) - v) / v**2 for v in grid]
    weight = [v**2 / mp.log1p(v) for v in grid]

    def residuals(fixed):
        return [(k[i] - sum(c * grid[i] ** j for j, c in enumerate(fixed))) * weight[i] for i in range(points)]

    def refit(fixed):
        target = residuals(fixed)
        basis = [[grid[i] ** j * weight[i] for j in range(len(fixed), degree + 1)] for i in range(points)]
        m = degree + 1 - len(fixed)
        lawson = [mp.mpf(1)] * points
        for _ in range(iterations):
            normal, rhs = mp.matrix(m, m), mp.matrix(m, 1)
            for row, t, w in zip(basis, target, lawson, strict=True):
                for a in range(m):
                    rhs[a] += row[a] * w * t
                    for b in range(m):
                        normal[a, b] += row[a] * w * row[b]
            sol = mp.lu_solve(normal, rhs)
            errors = [
                abs(sum(r * s for r, s in zip(row, sol, strict=True)) - t) for row, t in zip(basis, target, strict=True)
            ]
            lawson = [w * e for w, e in zip(lawson, errors, strict=True)]
            total = sum(lawson)
            lawson = [w / total for w in lawson]
        return sol

    coefs = [mp.mpf(-0.5)]
    while len(coefs) <= degree:
        coefs.append(mp.mpf(float(dtype(refit(coefs)[0]))))
    half_ulp = mp.mpf(2) ** -(np.finfo(dtype).nmant + 1)
    return [float(c) for c in coefs], float(max(abs(r) for r in residuals(coefs)) / half_ulp)


# (A few minutes. The float32 grid is denser: its coefficients are cheap to
# fit, and the exhaustive test measures what they give.)
for dtype, degree, points in [(np.float32, 8, 4000), (np.float64, 19, 800)]:
    coefs, err = fit_log1p_unit(degree, dtype, points)
    print(f"log1p_unit {dtype.__name__} degree {degree}: error in log1p {err:.3f} x 2^-{np.finfo(dtype).nmant + 1}")
    print(f"    [{', '.join(repr(float(dtype(c))) for c in reversed(coefs))}]")

for name, f, a, b, degrees in [
    ("exp", exp_tail, -LN2 / 2, LN2 / 2, {np.float32: [4, 5], np.float64: [8, 9]}),
    ("log", atanh_tail, mp.mpf(0), mp.mpf(1) / 25, {np.float32: [2, 3], np.float64: [6, 7]}),
]:
    for dtype, degree in [(t, d) for t, ds in degrees.items() for d in ds]:
        rounded, err = worst(f, a, b, fit(f, a, b, degree), dtype)
        highest_first = ", ".join(repr(float(dtype(c))) for c in reversed(rounded))
        print(f"{name} {dtype.__name__} degree {degree}: relative error {float(err):.2e}")
        print(f"    [{highest_first}]")
