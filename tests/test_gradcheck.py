"""Gradients against central finite differences of the loss itself."""

from __future__ import annotations

import numpy as np
import pytest

import fastbce as fb


def _finite_difference(loss, x, h):
    grad = np.empty_like(x)
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += h[i]
        down[i] -= h[i]
        grad[i] = (float(loss(up)) - float(loss(down))) / (up[i] - down[i])
    return grad


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("seed", range(4))
def test_logits_gradient_matches_finite_differences(reduction, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 4, (6, 5))
    y = rng.uniform(0, 1, (6, 5))
    w = rng.uniform(0.1, 2, (5,))
    p = rng.uniform(0.5, 3, (6, 1))

    def loss(v):
        return fb.binary_cross_entropy_with_logits(v, y, w, reduction, p)

    grad = fb.binary_cross_entropy_with_logits_grad(x, y, w, reduction, p, grad_output=0.75)
    fd = 0.75 * _finite_difference(loss, x, 1e-5 * (1 + np.abs(x)))
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("seed", range(4))
def test_probability_gradient_matches_finite_differences(reduction, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.05, 0.95, (4, 7))
    y = rng.uniform(0, 1, (4, 7))
    w = rng.uniform(0.1, 2, (4, 7))

    def loss(v):
        return fb.binary_cross_entropy(v, y, w, reduction)

    grad = fb.binary_cross_entropy_grad(x, y, w, reduction, grad_output=-1.5)
    fd = -1.5 * _finite_difference(loss, x, np.full_like(x, 1e-6))
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-9)


def test_elementwise_gradient_with_grad_output_array():
    rng = np.random.default_rng(7)
    x = rng.normal(0, 3, (3, 4)).astype(np.float64)
    y = (rng.uniform(size=(3, 4)) > 0.5).astype(np.float64)
    go = rng.normal(size=(3, 4))

    def weighted_sum(v):
        return float(np.sum(go * fb.binary_cross_entropy_with_logits(v, y, reduction="none")))

    grad = fb.binary_cross_entropy_with_logits_grad(x, y, reduction="none", grad_output=go)
    fd = _finite_difference(weighted_sum, x, 1e-5 * (1 + np.abs(x)))
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-9)
