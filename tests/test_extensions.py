"""Second derivatives, label smoothing and the focal loss: limits, special
cases, arguments and errors (their accuracy: test_accuracy_extensions.py)."""

from __future__ import annotations

import re

import numpy as np
import pytest

import fastbce as fb

GAMMAS = [0.0, 0.25, 0.5, 1.0, 2.0, 5.0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gamma_zero_is_the_plain_loss_times_alpha_t(dtype, simd_level):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(1000) * 20).astype(dtype)
    y = rng.random(1000).astype(dtype)
    w = rng.random(1000).astype(dtype)
    # (Gradients near their zero: within 4 ULP of the larger term, about 1.)
    atol = 4 * np.finfo(dtype).eps
    for alpha in (0.25, -1.0):
        alpha_t = alpha * y.astype(np.float64) + (1 - alpha) * (1 - y.astype(np.float64)) if alpha >= 0 else 1.0
        loss, grad = fb.sigmoid_focal_loss_value_and_grad(x, y, alpha, 0.0, weight=w)
        hess = fb.sigmoid_focal_loss_hess(x, y, alpha, 0.0, weight=w)
        plain_w = w.astype(np.float64) * alpha_t
        np.testing.assert_allclose(
            loss, fb.binary_cross_entropy_with_logits(x, y, plain_w, "none"), rtol=4e-7, atol=atol
        )
        np.testing.assert_allclose(
            grad, fb.binary_cross_entropy_with_logits_grad(x, y, plain_w, "none"), rtol=4e-7, atol=atol
        )
        np.testing.assert_allclose(
            hess, fb.binary_cross_entropy_with_logits_hess(x, y, plain_w, "none"), rtol=4e-7, atol=atol
        )


def test_infinite_logits_give_the_limits(simd_level):
    x = np.array([np.inf, -np.inf, np.inf, -np.inf])
    y = np.array([1.0, 0.0, 0.0, 1.0])
    for gamma in GAMMAS:
        loss, grad = fb.sigmoid_focal_loss_value_and_grad(x, y, -1.0, gamma)
        hess = fb.sigmoid_focal_loss_hess(x, y, -1.0, gamma)
        np.testing.assert_array_equal(loss, [0, 0, np.inf, np.inf])
        np.testing.assert_array_equal(grad, [0, 0, 1, -1])
        np.testing.assert_array_equal(hess, [0, 0, 0, 0])
    # Soft targets: the loss grows without bound on both sides.
    loss = fb.sigmoid_focal_loss(np.array([np.inf, -np.inf]), np.array([0.5, 0.5]), gamma=0.5)
    np.testing.assert_array_equal(loss, [np.inf, np.inf])
    h = fb.binary_cross_entropy_with_logits_hess(np.array([np.inf, -np.inf, 0.0]), np.ones(3), reduction="none")
    np.testing.assert_array_equal(h, [0.0, 0.0, 0.25])


@pytest.mark.parametrize("gamma", [0.25, 0.5])
def test_small_gamma_stays_finite_where_the_usual_form_gives_nan(gamma):
    # (1 - p_t)**(gamma - 1) is infinite where p_t rounds to 1: the
    # autograd of torchvision's form multiplies it by 0.
    x = np.array([20.0, 40.0, 100.0, -100.0, 800.0], np.float32)
    y = np.array([1.0, 1.0, 1.0, 0.0, 1.0], np.float32)
    grad, hess = fb.sigmoid_focal_loss_grad_and_hess(x, y, gamma=gamma)
    assert np.isfinite(grad).all() and np.isfinite(hess).all()
    assert (grad[:4] * np.sign(-x[:4] * (2 * y[:4] - 1)) >= 0).all()


def test_focal_second_derivative_is_negative_when_confidently_wrong_and_floored_on_request():
    x = np.array([-6.0, 6.0, 3.0])
    y = np.array([1.0, 0.0, 1.0])
    hess = fb.sigmoid_focal_loss_hess(x, y)
    assert hess[0] < 0 and hess[1] < 0 and hess[2] > 0
    floored = fb.sigmoid_focal_loss_hess(x, y, min_hess=1e-6)
    np.testing.assert_array_equal(floored, [1e-6, 1e-6, hess[2]])
    # The floor applies before the mean's division.
    mean = fb.sigmoid_focal_loss_hess(x, y, reduction="mean", min_hess=1e-6)
    np.testing.assert_allclose(mean, floored / 3, rtol=1e-15)


def test_nan_propagates(simd_level):
    x = np.array([np.nan, 1.0], np.float32)
    y = np.array([1.0, np.nan], np.float32)
    for values in (
        fb.sigmoid_focal_loss(x, y),
        fb.sigmoid_focal_loss_grad(x, y),
        fb.sigmoid_focal_loss_hess(x, y, min_hess=0.0),
        fb.binary_cross_entropy_with_logits_hess(x, y, reduction="none"),
    ):
        assert np.isnan(values).all()


def test_label_smoothing_is_the_smoothed_target():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((50, 4)) * 5
    y = (rng.random((50, 4)) > 0.5).astype(np.float64)
    for ls in (0.0, 0.1, 1.0):
        t = y * (1 - ls) + 0.5 * ls
        for smoothed, plain in [
            (fb.binary_cross_entropy_with_logits(x, y, label_smoothing=ls), fb.binary_cross_entropy_with_logits(x, t)),
            (
                fb.binary_cross_entropy_with_logits_grad(x, y, label_smoothing=ls),
                fb.binary_cross_entropy_with_logits_grad(x, t),
            ),
            (
                fb.binary_cross_entropy_with_logits_hess(x, y, label_smoothing=ls),
                fb.binary_cross_entropy_with_logits_hess(x, t),
            ),
            (fb.sigmoid_focal_loss(x, y, label_smoothing=ls), fb.sigmoid_focal_loss(x, t)),
            (fb.binary_cross_entropy(fb.sigmoid(x), y, label_smoothing=ls), fb.binary_cross_entropy(fb.sigmoid(x), t)),
        ]:
            np.testing.assert_allclose(smoothed, plain, rtol=1e-14, atol=1e-17)
    loss = fb.BCEWithLogitsLoss(label_smoothing=0.2)
    assert repr(loss) == "BCEWithLogitsLoss(reduction='mean', label_smoothing=0.2)"
    assert loss(x, y) == fb.binary_cross_entropy_with_logits(x, y, label_smoothing=0.2)
    np.testing.assert_array_equal(loss.hess(x, y), fb.binary_cross_entropy_with_logits_hess(x, y, label_smoothing=0.2))


def test_probability_second_derivative_matches_the_gradient_by_differences():
    x = np.linspace(0.01, 0.99, 99)
    y = np.linspace(0, 1, 99)
    h = 1e-7
    want = (
        fb.binary_cross_entropy_grad(x + h, y, reduction="sum")
        - fb.binary_cross_entropy_grad(x - h, y, reduction="sum")
    ) / (2 * h)
    np.testing.assert_allclose(fb.binary_cross_entropy_hess(x, y, reduction="sum"), want, rtol=1e-6)


def test_grad_and_hess_match_the_separate_calls_and_fill_out():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = (rng.random((64, 3)) > 0.5).astype(np.float32)
    pw = np.array([1.0, 2.0, 3.0], np.float32)
    grad, hess = fb.binary_cross_entropy_with_logits_grad_and_hess(x, y, pos_weight=pw)
    np.testing.assert_array_equal(grad, fb.binary_cross_entropy_with_logits_grad(x, y, pos_weight=pw))
    np.testing.assert_array_equal(hess, fb.binary_cross_entropy_with_logits_hess(x, y, pos_weight=pw))
    loss, g2, h2 = fb.binary_cross_entropy_with_logits_grad_and_hess(x, y, pos_weight=pw, return_loss=True)
    assert loss == fb.binary_cross_entropy_with_logits(x, y, pos_weight=pw)
    np.testing.assert_array_equal(g2, grad)
    g_out, h_out = np.empty_like(x), np.empty_like(x)
    result = fb.binary_cross_entropy_with_logits_grad_and_hess(x, y, pos_weight=pw, out=(g_out, h_out))
    assert result[0] is g_out and result[1] is h_out
    np.testing.assert_array_equal(h_out, hess)
    # Into the input itself, and a hessian only, per class with axis=0.
    x2 = x.copy()
    fb.binary_cross_entropy_with_logits_grad_and_hess(x2, y, pos_weight=pw, out=(None, x2))
    np.testing.assert_array_equal(x2, hess)
    per_class = fb.binary_cross_entropy_with_logits_hess(
        x, y, pos_weight=pw, axis=0, grad_output=np.array([1.0, 0.0, 2.0])
    )
    np.testing.assert_allclose(per_class, hess * 192 / 64 * np.array([1.0, 0.0, 2.0]), rtol=1e-6)
    g_in, h_in = fb.sigmoid_focal_loss_grad_and_hess(x, y, reduction="sum")
    np.testing.assert_array_equal(g_in, fb.sigmoid_focal_loss_grad(x, y, reduction="sum"))


def test_focal_module():
    loss = fb.SigmoidFocalLoss(alpha=-1, gamma=0.5, reduction="sum", label_smoothing=0.1)
    assert repr(loss) == "SigmoidFocalLoss(alpha=-1.0, gamma=0.5, reduction='sum', label_smoothing=0.1)"
    x, y = np.array([0.5, -3.0]), np.array([1.0, 0.0])
    args = dict(label_smoothing=0.1)
    assert loss(x, y) == fb.sigmoid_focal_loss(x, y, -1, 0.5, "sum", **args)
    np.testing.assert_array_equal(loss.grad(x, y), fb.sigmoid_focal_loss_grad(x, y, -1, 0.5, "sum", **args))
    np.testing.assert_array_equal(loss.hess(x, y), fb.sigmoid_focal_loss_hess(x, y, -1, 0.5, "sum", **args))
    with pytest.raises(ValueError, match="gamma must be a finite number >= 0, got -1.0"):
        fb.SigmoidFocalLoss(gamma=-1.0)


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda x: fb.binary_cross_entropy_with_logits(x, x, label_smoothing=1.5),
            "label_smoothing must be between 0 and 1, got 1.5",
        ),
        (
            lambda x: fb.binary_cross_entropy(x, x, label_smoothing=-0.1),
            "label_smoothing must be between 0 and 1, got -0.1",
        ),
        (
            lambda x: fb.sigmoid_focal_loss(x, x, label_smoothing=float("nan")),
            "label_smoothing must be between 0 and 1, got nan",
        ),
        (
            lambda x: fb.sigmoid_focal_loss(x, x, alpha=1.5),
            "alpha must be between 0 and 1 (or negative to turn the class weighting off), got 1.5",
        ),
        (lambda x: fb.sigmoid_focal_loss(x, x, gamma=-0.5), "gamma must be a finite number >= 0, got -0.5"),
        (lambda x: fb.sigmoid_focal_loss(x, x, gamma=float("inf")), "gamma must be a finite number >= 0, got inf"),
        (
            lambda x: fb.binary_cross_entropy_with_logits_hess(x, x, min_hess=float("nan")),
            "min_hess must be a number or None, got nan",
        ),
        (lambda x: fb.BCELoss(label_smoothing=2), "label_smoothing must be between 0 and 1, got 2"),
    ],
)
def test_bad_parameters_raise(call, message):
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        call(np.zeros(3))


def test_bad_out_pairs_raise():
    x = np.zeros(4)
    with pytest.raises(TypeError, match=r"^out must be a pair \(grad, hess\) of arrays"):
        fb.binary_cross_entropy_with_logits_grad_and_hess(x, x, out=np.zeros(4))
    same = np.zeros(4)
    with pytest.raises(ValueError, match="^out: the gradient and second-derivative arrays share memory"):
        fb.binary_cross_entropy_with_logits_grad_and_hess(x, x, out=(same, same))
    with pytest.raises(ValueError, match=r"^out has shape \(3,\)"):
        fb.binary_cross_entropy_with_logits_hess(x, x, out=np.zeros(3))


def test_declined_calls_give_the_same_bits():
    # Lists and big-endian arrays are converted by Python, then computed by
    # the same native call: the same results as native arrays.
    x = np.array([-3.0, -0.5, 0.0, 2.0, 40.0])
    y = np.array([1.0, 0.0, 0.3, 1.0, 0.0])
    big_endian = x.astype(">f8")
    for fn, kwargs in [
        (fb.binary_cross_entropy_with_logits_hess, {"pos_weight": 2.0, "label_smoothing": 0.1}),
        (fb.sigmoid_focal_loss, {"gamma": 0.5}),
        (fb.sigmoid_focal_loss_hess, {"min_hess": 0.0}),
    ]:
        want = fn(x, y, **kwargs)
        np.testing.assert_array_equal(fn(x.tolist(), y.tolist(), **kwargs), want)
        np.testing.assert_array_equal(fn(big_endian, y, **kwargs), want)
    want_g, want_h = fb.sigmoid_focal_loss_grad_and_hess(x, y)
    got_g, got_h = fb.sigmoid_focal_loss_grad_and_hess(x.tolist(), y)
    np.testing.assert_array_equal(got_g, want_g)
    np.testing.assert_array_equal(got_h, want_h)


def test_outputs_overlapping_the_input_in_part_are_computed_apart():
    y = np.ones(10)
    want_g, want_h = fb.binary_cross_entropy_with_logits_grad_and_hess(np.linspace(-3, 3, 11)[:-1], y)
    buf = np.linspace(-3, 3, 11)
    h = np.empty(10)
    g, h2 = fb.binary_cross_entropy_with_logits_grad_and_hess(buf[:-1], y, out=(buf[1:], h))
    assert h2 is h and np.shares_memory(g, buf)
    np.testing.assert_array_equal(buf[1:], want_g)
    np.testing.assert_array_equal(h, want_h)
    buf = np.linspace(-3, 3, 11)
    fb.sigmoid_focal_loss_hess(buf[:-1], y, out=buf[1:])
    np.testing.assert_array_equal(buf[1:], fb.sigmoid_focal_loss_hess(np.linspace(-3, 3, 11)[:-1], y))
