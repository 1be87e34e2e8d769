"""Accuracy in ULP against mpmath of the second derivatives, label smoothing
and the focal loss (docs/design.md): second derivatives within 4 ULP of the
exact value; with label smoothing every bound of the plain loss, measured
against the exact smoothed target; the focal loss within 8 ULP and its
gradient within 8 ULP of its largest term, for gamma in {0, 0.25, 0.5, 1, 2,
5}, over the whole logit range, at every SIMD level."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest
from test_accuracy import LOGITS, TARGETS

import fastbce as fb

from reference import exact_focal, exact_logits_smoothed, exact_probabilities_hess, ulp_error

MAX_ULP = 4.0
MAX_FOCAL_ULP = 8.0
# The focal loss's second derivative is a sum of terms of both signs; its
# error is measured against the largest, or against the smallest normal
# float where its terms are subnormal (each of them is proportional to
# exp(-|x|), which loses its bits there: x beyond 708 in float64).
MAX_FOCAL_HESS_ULP = 16.0
GAMMAS = [0.0, 0.25, 0.5, 1.0, 2.0, 5.0]
SMOOTHING = [0.0, 0.1, 0.3]
DTYPES = [np.float16, np.float32, np.float64]


def _finite_logits(dtype):
    x = np.array(LOGITS, dtype)
    return sorted(set(x[np.isfinite(x)].tolist()))


def _worst(errors):
    return max(errors, key=lambda e: e[0])


@functools.cache
def _logit_cases(dtype):
    """(x, y, w, p, ls) and the exact (loss, grad, term scale, hess)."""
    cases = list(itertools.product(_finite_logits(dtype), TARGETS, [(1.0, 1.0), (0.7, 2.5), (2.0, 0.3)], SMOOTHING))
    x = np.array([c[0] for c in cases], dtype)
    y = np.array([c[1] for c in cases], dtype)
    w = np.array([c[2][0] for c in cases], dtype)
    p = np.array([c[2][1] for c in cases], dtype)
    ls = np.array([c[3] for c in cases])
    exact = np.array(
        [exact_logits_smoothed(float(x[i]), float(y[i]), float(w[i]), float(p[i]), ls[i]) for i in range(x.size)]
    )
    return x, y, w, p, ls, exact


@pytest.mark.parametrize("dtype", DTYPES)
def test_logit_loss_gradient_and_second_derivative_with_smoothing(dtype, simd_level):
    x, y, w, p, ls, exact = _logit_cases(dtype)
    worst = {"loss": [(0.0, None)], "grad": [(0.0, None)], "hess": [(0.0, None)]}
    for smoothing in SMOOTHING:
        at = ls == smoothing
        args = (x[at], y[at], w[at], "none", p[at])
        loss = fb.binary_cross_entropy_with_logits(*args, label_smoothing=smoothing)
        grad, hess = fb.binary_cross_entropy_with_logits_grad_and_hess(*args, label_smoothing=smoothing)
        np.testing.assert_array_equal(hess, fb.binary_cross_entropy_with_logits_hess(*args, label_smoothing=smoothing))
        for k, i in enumerate(np.flatnonzero(at)):
            case = (float(x[i]), float(y[i]), float(w[i]), float(p[i]), smoothing)
            el, eg, scale, eh = exact[i]
            worst["loss"].append((ulp_error(float(loss[k]), el, dtype), case))
            worst["grad"].append((ulp_error(float(grad[k]), eg, dtype, scale=scale), case))
            worst["hess"].append((ulp_error(float(hess[k]), eh, dtype), case))
    for what, errors in worst.items():
        error, case = _worst(errors)
        print(f"\n{np.dtype(dtype).name} ({simd_level}): max {what} error {error:.2f} ULP at (x, y, w, p, ls) = {case}")
        assert error <= MAX_ULP, (what, error, case)


@functools.cache
def _probability_cases(dtype):
    probs = np.array([1e-6, 1e-3, 0.01, 0.1, 0.25, 0.3, 0.5, 0.7, 0.75, 0.9, 0.99, 0.999, 1 - 1e-6], dtype)
    probs = probs[probs < 1]  # 1 - 1e-6 is 1 in float16: the clamp's case, tested below
    cases = list(itertools.product(probs.tolist(), TARGETS, [1.0, 0.7], SMOOTHING))
    x, y, w = (np.array([c[k] for c in cases], dtype) for k in range(3))
    ls = np.array([c[3] for c in cases])
    exact = np.array([exact_probabilities_hess(float(x[i]), float(y[i]), float(w[i]), ls[i]) for i in range(x.size)])
    return x, y, w, ls, exact


@pytest.mark.parametrize("dtype", DTYPES)
def test_probability_second_derivative(dtype, simd_level):
    x, y, w, ls, exact = _probability_cases(dtype)
    errors = [(0.0, None)]
    for smoothing in SMOOTHING:
        at = ls == smoothing
        hess = fb.binary_cross_entropy_hess(x[at], y[at], w[at], "none", label_smoothing=smoothing)
        for k, i in enumerate(np.flatnonzero(at)):
            if exact[i] > np.finfo(dtype).max:  # beyond float16's range (1 / x**2 at x = 1e-6)
                assert hess[k] == np.inf
                continue
            errors.append((ulp_error(float(hess[k]), exact[i], dtype), (float(x[i]), float(y[i]), smoothing)))
    error, case = _worst(errors)
    print(f"\n{np.dtype(dtype).name} ({simd_level}): max error {error:.2f} ULP at (x, y, ls) = {case}")
    assert error <= MAX_ULP, (error, case)


def test_probability_second_derivative_is_the_clamped_gradients_derivative():
    # Where PyTorch's clamp holds the gradient's denominator at 1e-12, the
    # gradient is (x - y) / 1e-12: its derivative is 1e12 (times the weight).
    x = np.array([0.0, 1.0, 0.0, 1e-14])
    hess = fb.binary_cross_entropy_hess(x, np.array([0.0, 1.0, 1.0, 0.0]), np.full(4, 2.0), "none")
    np.testing.assert_array_equal(hess, np.full(4, 2e12))


@functools.cache
def _focal_cases(dtype):
    """Every logit, target and gamma; alpha, weight and smoothing vary with
    the case number so that each combination appears."""
    cases = list(itertools.product(_finite_logits(dtype), TARGETS, GAMMAS))
    settings = [(0.25, 1.0, 0.0), (-1.0, 1.0, 0.0), (0.6, 2.5, 0.0), (0.25, 0.7, 0.1)]
    rows = []
    for i, (x, y, gamma) in enumerate(cases):
        alpha, w, ls = settings[i % len(settings)]
        rows.append((x, y, gamma, alpha, w, ls))
    table = np.array(rows)
    x, y, w = (table[:, k].astype(dtype) for k in (0, 1, 4))
    gamma, alpha, ls = table[:, 2], table[:, 3], table[:, 5]
    exact = np.array(
        [exact_focal(float(x[i]), float(y[i]), float(w[i]), alpha[i], gamma[i], ls[i]) for i in range(x.size)]
    )
    return x, y, w, gamma, alpha, ls, exact


@pytest.mark.parametrize("dtype", DTYPES)
def test_focal_loss_gradient_and_second_derivative(dtype, simd_level):
    x, y, w, gamma, alpha, ls, exact = _focal_cases(dtype)
    worst = {"loss": [(0.0, None)], "grad": [(0.0, None)], "hess": [(0.0, None)]}
    for key in sorted(set(zip(gamma.tolist(), alpha.tolist(), ls.tolist(), strict=True))):
        at = (gamma == key[0]) & (alpha == key[1]) & (ls == key[2])
        g, a, s = key
        args = (x[at], y[at], a, g, "none")
        loss, grad = fb.sigmoid_focal_loss_value_and_grad(*args, weight=w[at], label_smoothing=s)
        grad2, hess = fb.sigmoid_focal_loss_grad_and_hess(*args, weight=w[at], label_smoothing=s)
        np.testing.assert_array_equal(grad, grad2)
        _check_focal(worst, dtype, x, y, w, at, exact, loss, grad, hess, (a, g, s))
        # Calls whose targets are all 0 or 1 take a shorter path (docs/numerics.md).
        hard = at & ((y == 0) | (y == 1))
        if s == 0 and hard.any():
            loss, grad = fb.sigmoid_focal_loss_value_and_grad(x[hard], y[hard], a, g, "none", weight=w[hard])
            _, hess = fb.sigmoid_focal_loss_grad_and_hess(x[hard], y[hard], a, g, "none", weight=w[hard])
            _check_focal(worst, dtype, x, y, w, hard, exact, loss, grad, hess, (a, g, s))
    bounds = {"loss": MAX_FOCAL_ULP, "grad": MAX_FOCAL_ULP, "hess": MAX_FOCAL_HESS_ULP}
    for what, errors in worst.items():
        error, case = _worst(errors)
        name = f"{np.dtype(dtype).name} ({simd_level})"
        print(f"\n{name}: max focal {what} error {error:.2f} ULP at (x, y, w, alpha, gamma, ls) = {case}")
        assert error <= bounds[what], (what, error, case)


def _check_focal(worst, dtype, x, y, w, at, exact, loss, grad, hess, parameters):
    a, g, s = parameters
    for k, i in enumerate(np.flatnonzero(at)):
        case = (float(x[i]), float(y[i]), float(w[i]), a, g, s)
        el, eg, gscale, eh, hscale = exact[i]
        worst["loss"].append((ulp_error(float(loss[k]), el, dtype), case))
        worst["grad"].append((ulp_error(float(grad[k]), eg, dtype, scale=gscale), case))
        hess_scale = max(hscale, float(np.finfo(dtype).tiny / np.finfo(dtype).eps))
        worst["hess"].append((ulp_error(float(hess[k]), eh, dtype, scale=hess_scale), case))
