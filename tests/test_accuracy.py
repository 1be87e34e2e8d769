"""Accuracy in ULP against mpmath (docs/design.md: every loss element within 4
ULP of the exact value; every gradient element within 4 ULP of the larger of
its two terms), on a grid that includes the tails."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import fastbce as fb

from reference import exact_logits, ulp_error

MAX_ULP = 4.0

MAGNITUDES = [
    0.0,
    1e-8,
    1e-3,
    0.1,
    0.5,
    1.0,
    2.0,
    5.0,
    10.0,
    14.75,
    15.0,
    16.75,
    20.0,
    30.0,
    50.0,
    87.0,
    88.5,
    100.0,
    300.0,
    700.0,
    745.0,
    1e3,
    3e3,
    1e4,
]
LOGITS = sorted({s * m for m in MAGNITUDES for s in (-1.0, 1.0)} | set(np.linspace(-40.0, 40.0, 161).tolist()))
TARGETS = [0.0, 1.0, 0.5, 0.3, 1e-7, 1e-3, 0.999, 1.0 - 1e-7]
WEIGHTS = [(1.0, 1.0), (0.7, 2.5), (2.0, 0.3)]


def _grid(dtype):
    cases = list(itertools.product(LOGITS, TARGETS, WEIGHTS))
    x = np.array([c[0] for c in cases], dtype)
    y = np.array([c[1] for c in cases], dtype)
    w = np.array([c[2][0] for c in cases], dtype)
    p = np.array([c[2][1] for c in cases], dtype)
    return x, y, w, p


@pytest.mark.parametrize("with_weight", [True, False], ids=["weight", "no-weight"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_loss_and_gradient_within_4_ulp(dtype, with_weight, simd_level):
    x, y, w, p = _grid(dtype)
    if not with_weight:
        w = np.ones_like(w)
    weight = w if with_weight else None
    loss = fb.binary_cross_entropy_with_logits(x, y, weight, "none", p)
    grad = fb.binary_cross_entropy_with_logits_grad(x, y, weight, "none", p)
    worst_loss = worst_grad = (0.0, None)
    for i in range(x.size):
        args = (float(x[i]), float(y[i]), float(w[i]), float(p[i]))
        exact_loss, exact_grad, term = exact_logits(*args)
        e = ulp_error(float(loss[i]), exact_loss, dtype)
        if e > worst_loss[0]:
            worst_loss = (e, args)
        e = ulp_error(float(grad[i]), exact_grad, dtype, scale=term)
        if e > worst_grad[0]:
            worst_grad = (e, args)
    name = f"{np.dtype(dtype).name}, {'weight' if with_weight else 'no weight'} ({simd_level})"
    print(f"\n{name}: max loss error {worst_loss[0]:.2f} ULP at (x, y, w, p) = {worst_loss[1]}")
    print(f"{name}: max gradient error {worst_grad[0]:.2f} ULP of the larger term at {worst_grad[1]}")
    assert worst_loss[0] <= MAX_ULP, worst_loss
    assert worst_grad[0] <= MAX_ULP, worst_grad


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tails_keep_relative_precision_where_pytorch_gives_zero(dtype, simd_level):
    # PyTorch's float32 loss is 0 for x < -14.75 with y = 0, and its
    # gradient 0 for x > 16.75 with y = 1; the true values are ~exp(-|x|).
    x = np.array([-20.0, -50.0, -80.0], dtype)
    loss = fb.binary_cross_entropy_with_logits(x, np.zeros_like(x), reduction="none")
    grad = fb.binary_cross_entropy_with_logits_grad(-x, np.ones_like(x), reduction="none")
    for xi, li, gi in zip(x, loss, grad, strict=True):
        exact_loss, _, _ = exact_logits(float(xi), 0.0)
        _, exact_grad, _ = exact_logits(float(-xi), 1.0)
        assert li > 0 and ulp_error(float(li), exact_loss, dtype) <= MAX_ULP
        assert gi < 0 and ulp_error(float(gi), exact_grad, dtype) <= MAX_ULP


def test_infinite_logits_give_the_limits(simd_level):
    x = np.array([np.inf, -np.inf, np.inf, -np.inf, np.inf, -np.inf])
    y = np.array([1.0, 0.0, 0.0, 1.0, 0.5, 0.5])
    loss, grad = fb.binary_cross_entropy_with_logits_value_and_grad(x, y, reduction="none")
    np.testing.assert_array_equal(loss, [0, 0, np.inf, np.inf, np.inf, np.inf])
    np.testing.assert_array_equal(grad, [0, 0, 1, -1, 0.5, -0.5])


def test_nan_propagates(simd_level):
    x = np.array([np.nan, 1.0, 0.5], np.float32)
    y = np.array([1.0, np.nan, 0.0], np.float32)
    loss = fb.binary_cross_entropy_with_logits(x, y, reduction="none")
    grad = fb.binary_cross_entropy_with_logits_grad(x, y, reduction="none")
    assert np.isnan(loss[:2]).all() and np.isnan(grad[:2]).all()
    assert np.isfinite(loss[2]) and np.isfinite(grad[2])
    assert np.isnan(fb.binary_cross_entropy_with_logits(x, y))
    assert np.isnan(fb.sigmoid(np.array([np.nan]))[0])
