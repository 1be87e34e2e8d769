"""Float64 and exact (mpmath) references of the docs/design.md formulas, for tests."""

from __future__ import annotations

import math
from typing import Any, Optional, Tuple

import mpmath
import numpy as np

import fastbce as fb

LOGITS = "bce_with_logits"
PROBS = "bce"

# The functions under test for each loss: (loss, gradient, both in one pass).
FUNCS = {
    LOGITS: (
        fb.binary_cross_entropy_with_logits,
        fb.binary_cross_entropy_with_logits_grad,
        fb.binary_cross_entropy_with_logits_value_and_grad,
    ),
    PROBS: (fb.binary_cross_entropy, fb.binary_cross_entropy_grad, fb.binary_cross_entropy_value_and_grad),
}


def _softplus(z: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(-np.abs(z))
        return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _times(coef: np.ndarray, value: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.where(coef == 0, 0.0, coef * value)


def elements(
    fn: str, x: Any, y: Any, weight: Any = None, pos_weight: Any = None
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Loss elements, gradient elements and the gradient's term scale.

    The term scale is the larger magnitude of the gradient's two terms: the
    scale docs/design.md measures gradient errors against.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    w = np.ones_like(x) if weight is None else np.broadcast_to(np.asarray(weight, np.float64), x.shape)
    if fn == LOGITS:
        p = np.ones_like(x) if pos_weight is None else np.broadcast_to(np.asarray(pos_weight, np.float64), x.shape)
        a, b = 1.0 - y, p * y
        loss = w * (_times(a, _softplus(x)) + _times(b, _softplus(-x)))
        t1, t2 = _times(a, _sigmoid(x)), _times(b, _sigmoid(-x))
        return loss, w * (t1 - t2), np.abs(w) * np.maximum(np.abs(t1), np.abs(t2))
    with np.errstate(divide="ignore"):
        logp = np.maximum(np.log(x), -100.0)
        log1mp = np.maximum(np.log1p(-x), -100.0)
    loss = -w * (y * logp + (1.0 - y) * log1mp)
    denom = np.maximum(x * (1.0 - x), 1e-12)
    grad = w * (x - y) / denom
    return loss, grad, np.abs(w) * np.maximum(np.abs(x), np.abs(y)) / denom


def reduce(values: np.ndarray, reduction: str) -> Any:
    if reduction == "none":
        return values
    total = math.fsum(values.ravel().tolist())
    if reduction == "sum":
        return total
    return total / values.size if values.size else math.nan


def reference(
    fn: str, x: Any, y: Any, weight: Any = None, pos_weight: Any = None, reduction: str = "mean", grad_output: Any = 1.0
) -> Tuple[Any, np.ndarray, np.ndarray]:
    """(loss, gradient, gradient term scale) of a call, in float64."""
    loss, grad, scale = elements(fn, x, y, weight, pos_weight)
    factor = np.asarray(grad_output, np.float64)
    if reduction == "mean" and grad.size:
        factor = factor / grad.size
    return reduce(loss, reduction), grad * factor, scale * np.abs(factor)


def assert_close(
    got: Any, want: Any, rtol: float, scale: Optional[Any] = None, what: str = "", atol: float = 0.0
) -> None:
    """|got - want| <= rtol * max(|want|, scale) + atol, elementwise; NaN equals NaN."""
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    bound = np.abs(want) if scale is None else np.maximum(np.abs(want), np.asarray(scale, np.float64))
    with np.errstate(invalid="ignore"):
        ok = (got == want) | (np.isnan(got) & np.isnan(want)) | (np.abs(got - want) <= rtol * bound + atol)
    if not np.all(ok):
        bad = np.flatnonzero(~ok)[:5]
        raise AssertionError(
            f"{what}: {np.count_nonzero(~ok)} of {ok.size} elements differ beyond rtol={rtol}; "
            f"first at flat index {bad.tolist()}: got {got.ravel()[bad].tolist()}, "
            f"want {want.ravel()[bad].tolist()}"
        )


# Exact values, for accuracy in ULP.
mpmath.mp.dps = 60


def _mp_softplus(z: mpmath.mpf) -> mpmath.mpf:
    if z > 0:
        return z + mpmath.log1p(mpmath.exp(-z))
    return mpmath.log1p(mpmath.exp(z))


def _mp_sigmoid(z: mpmath.mpf) -> mpmath.mpf:
    return 1 / (1 + mpmath.exp(-z))


def exact_logits(x: float, y: float, w: float = 1.0, p: float = 1.0) -> Tuple[float, float, float]:
    """Exact loss, gradient and gradient term scale of one element, rounded to float64."""
    X, Y, W, P = (mpmath.mpf(v) for v in (x, y, w, p))
    a, b = 1 - Y, P * Y
    if mpmath.isinf(X):
        sp_pos = mpmath.inf if X > 0 else mpmath.mpf(0)
        sp_neg = mpmath.mpf(0) if X > 0 else mpmath.inf
        s_pos = mpmath.mpf(1) if X > 0 else mpmath.mpf(0)
    else:
        sp_pos, sp_neg, s_pos = _mp_softplus(X), _mp_softplus(-X), _mp_sigmoid(X)
    s_neg = 1 - s_pos if mpmath.isinf(X) else _mp_sigmoid(-X)
    loss = W * ((a * sp_pos if a else 0) + (b * sp_neg if b else 0))
    t1, t2 = a * s_pos, b * s_neg
    return float(loss), float(W * (t1 - t2)), float(abs(W) * max(abs(t1), abs(t2)))


def ulp_error(got: float, exact: float, dtype: Any, scale: Optional[float] = None) -> float:
    """|got - exact| in units of the last place of `dtype` at `exact` (or at `scale`)."""
    ref = abs(exact) if scale is None else max(abs(exact), scale)
    if math.isinf(exact) or math.isinf(got):
        return 0.0 if got == exact else math.inf
    ulp = float(np.spacing(np.asarray(ref, dtype)))
    return abs(got - exact) / ulp


def one_call_sum(x, y, weight=None, pos_weight=None, probabilities=False):
    """The loss of one call summed in float64, unrounded to the input's dtype."""
    sums = fb._core.RunningSums()
    request = fb._core.Request(loss="probabilities" if probabilities else "logits", value=True, grad=False)
    fb._core.evaluate(request, x, y, weight=weight, reduction="sum", pos_weight=pos_weight, into=sums)
    return sums.total


# Exact second derivatives, label smoothing and the focal loss. The
# smoothed target is computed exactly from the float target and the Python
# float `ls`, so rounding it is part of the error measured.


def _smoothed(y: float, ls: float) -> Tuple[mpmath.mpf, mpmath.mpf]:
    """(1 - t, t) for the smoothed target t, exactly."""
    Y, LS = mpmath.mpf(y), mpmath.mpf(ls)
    t = Y * (1 - LS) + LS / 2
    return 1 - t, t


def _mp_sigmoids(x: float) -> Tuple[mpmath.mpf, mpmath.mpf]:
    """(sigmoid(x), sigmoid(-x)), exact for finite x, the limits for infinite x."""
    X = mpmath.mpf(x)
    if mpmath.isinf(X):
        return (mpmath.mpf(1), mpmath.mpf(0)) if X > 0 else (mpmath.mpf(0), mpmath.mpf(1))
    return _mp_sigmoid(X), _mp_sigmoid(-X)


def exact_logits_smoothed(
    x: float, y: float, w: float = 1.0, p: float = 1.0, ls: float = 0.0
) -> Tuple[float, float, float, float]:
    """Exact loss, gradient, gradient term scale and second derivative of one
    logit-loss element with the smoothed target."""
    X, W, P = (mpmath.mpf(v) for v in (x, w, p))
    a, t = _smoothed(y, ls)
    b = P * t
    s_pos, s_neg = _mp_sigmoids(x)
    if mpmath.isinf(X):
        sp_pos = mpmath.inf if X > 0 else mpmath.mpf(0)
        sp_neg = mpmath.mpf(0) if X > 0 else mpmath.inf
    else:
        sp_pos, sp_neg = _mp_softplus(X), _mp_softplus(-X)
    loss = W * ((a * sp_pos if a else 0) + (b * sp_neg if b else 0))
    t1, t2 = a * s_pos, b * s_neg
    hess = W * (a + b) * s_pos * s_neg
    return float(loss), float(W * (t1 - t2)), float(abs(W) * max(abs(t1), abs(t2))), float(hess)


def exact_probabilities_hess(x: float, y: float, w: float = 1.0, ls: float = 0.0) -> float:
    """Exact second derivative of one element of the probability loss (where
    PyTorch's clamp does not hold the gradient's denominator)."""
    X, W = mpmath.mpf(x), mpmath.mpf(w)
    a, t = _smoothed(y, ls)
    return float(W * (t / X**2 + a / (1 - X) ** 2))


def exact_focal(
    x: float, y: float, w: float = 1.0, alpha: float = 0.25, gamma: float = 2.0, ls: float = 0.0
) -> Tuple[float, float, float, float, float]:
    """Exact focal loss, gradient, gradient term scale, second derivative
    and its term scale of one element (finite logits)."""
    X, W, A, G = (mpmath.mpf(v) for v in (x, w, alpha, gamma))
    a, t = _smoothed(y, ls)
    s_pos, s_neg = _mp_sigmoids(x)
    ce = (a * _mp_softplus(X) if a else 0) + (t * _mp_softplus(-X) if t else 0)
    m = a * s_pos + t * s_neg
    factor = W * (A * t + (1 - A) * a if alpha >= 0 else 1) * (m**G if G else 1)
    s = s_pos * s_neg
    u = (a - t) * s / m
    g = a * s_pos - t * s_neg
    grad_terms = [a * s_pos, t * s_neg, G * u * ce]
    hess_terms = [G * u * ce * (G - 1) * u, G * u * ce * (s_neg - s_pos), 2 * G * u * g, s]
    return (
        float(factor * ce),
        float(factor * (g + G * u * ce)),
        float(abs(factor) * max(abs(v) for v in grad_terms)),
        float(factor * sum(hess_terms)),
        float(abs(factor) * max(abs(v) for v in hess_terms)),
    )
