"""Reductions over some axes (`axis=`): per-sample and per-class losses and
their gradients, against the float64 reference, deterministic for any
thread count."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastbce as fb

from layouts import LAYOUTS, in_layout
from reference import FUNCS, LOGITS, PROBS, assert_close, elements


@st.composite
def problems(draw):
    fn = draw(st.sampled_from([LOGITS, PROBS]))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=9))
    low, high = (-20.0, 20.0) if fn == LOGITS else (1 / 64, 63 / 64)
    x = draw(hnp.arrays(dtype, shape, elements=st.floats(low, high, width=32)))
    y = draw(hnp.arrays(np.uint8, shape, elements=st.integers(0, 1)))
    x = in_layout(x, draw(st.sampled_from(LAYOUTS)))
    axes = draw(st.lists(st.integers(0, len(shape) - 1), unique=True, min_size=1, max_size=len(shape)))
    negative = draw(st.booleans())
    axis = tuple(a - len(shape) if negative else a for a in axes)
    if len(axis) == 1 and draw(st.booleans()):
        axis = axis[0]
    weight = draw(st.none() | hnp.arrays(dtype, shape[-1:], elements=st.floats(0, 2, width=32)))
    reduction = draw(st.sampled_from(["mean", "sum"]))
    return fn, x, y, weight, axis, tuple(sorted(a % len(shape) for a in axes)), reduction


@settings(max_examples=400, deadline=None)
@given(problems())
def test_axis_reductions_match_the_reference(problem):
    fn, x, y, weight, axis, axes, reduction = problem
    forward, grad_fn, value_and_grad = FUNCS[fn]
    rtol = 2e-6 if x.dtype == np.float32 else 1e-13
    atol = 32 * float(np.finfo(x.dtype).smallest_subnormal)  # results that underflow
    loss_el, grad_el, scale_el = elements(fn, x, y, weight)
    count = int(np.prod([x.shape[a] for a in axes]))
    want = loss_el.sum(axis=axes)
    if reduction == "mean":
        with np.errstate(invalid="ignore"):
            want = want / count
    got = forward(x, y, weight, reduction=reduction, axis=axis)
    assert np.asarray(got).dtype == x.dtype
    assert_close(got, want, rtol, scale=np.abs(loss_el).sum(axis=axes) / max(count, 1), what="loss", atol=atol)

    kept = tuple(n for d, n in enumerate(x.shape) if d not in axes)
    go = np.linspace(-1.0, 2.0, int(np.prod(kept))).reshape(kept) if kept else 1.5
    factor = np.expand_dims(np.asarray(go, np.float64), axes) / (count if reduction == "mean" and count else 1)
    value, grad = value_and_grad(x, y, weight, reduction=reduction, grad_output=go, axis=axis)
    assert_close(value, want, rtol, scale=np.abs(loss_el).sum(axis=axes) / max(count, 1), what="value", atol=atol)
    assert_close(grad, grad_el * factor, rtol, scale=scale_el * np.abs(factor), what="grad", atol=atol)
    np.testing.assert_array_equal(grad, grad_fn(x, y, weight, reduction=reduction, grad_output=go, axis=axis))


@pytest.mark.parametrize("axis", [0, -1, (0, 2), 1])
def test_axis_reductions_are_bitwise_equal_for_any_thread_count(axis):
    rng = np.random.default_rng(11)
    x = rng.normal(0, 3, (500, 60, 100)).astype(np.float32)
    y = (rng.uniform(size=x.shape) < 0.2).astype(np.uint8)
    pw = rng.uniform(0.5, 3, 100).astype(np.float32)
    results = []
    for n in (1, 2, 3, 8):
        with fb.num_threads(n):
            results.append(fb.binary_cross_entropy_with_logits(x, y, pos_weight=pw, axis=axis).tobytes())
    assert len(set(results)) == 1


def test_per_sample_and_per_class_of_a_multilabel_batch():
    rng = np.random.default_rng(12)
    x = rng.normal(0, 2, (20_000, 20))
    y = (rng.uniform(size=x.shape) < 0.1).astype(bool)
    pw = np.linspace(1, 9, 20)
    elements_ = fb.binary_cross_entropy_with_logits(x, y, pos_weight=pw, reduction="none")
    per_sample = fb.binary_cross_entropy_with_logits(x, y, pos_weight=pw, axis=-1)
    per_class = fb.binary_cross_entropy_with_logits(x, y, pos_weight=pw, axis=0, reduction="sum")
    assert per_sample.shape == (20_000,) and per_class.shape == (20,)
    np.testing.assert_allclose(per_sample, elements_.mean(axis=-1), rtol=1e-13)
    np.testing.assert_allclose(per_class, elements_.sum(axis=0), rtol=1e-12)


def test_axis_over_everything_is_the_plain_reduction():
    x = np.random.default_rng(13).normal(size=(30, 4))
    y = np.zeros_like(x)
    assert fb.binary_cross_entropy_with_logits(x, y, axis=(0, 1)) == fb.binary_cross_entropy_with_logits(x, y)
    assert fb.binary_cross_entropy_with_logits(x, y, axis=(), reduction="sum").shape == (30, 4)


def test_out_receives_the_reduced_loss():
    x = np.random.default_rng(14).normal(size=(7, 5)).astype(np.float32)
    y = np.ones_like(x)
    out = np.empty(5, np.float32)
    assert fb.binary_cross_entropy_with_logits(x, y, axis=0, out=out) is out
    np.testing.assert_array_equal(out, fb.binary_cross_entropy_with_logits(x, y, axis=0))


def test_empty_reduced_axes_give_nan_means_and_zero_sums():
    x = np.zeros((0, 3))
    np.testing.assert_array_equal(fb.binary_cross_entropy_with_logits(x, x, axis=0, reduction="sum"), [0, 0, 0])
    assert np.isnan(fb.binary_cross_entropy_with_logits(x, x, axis=0)).all()


def test_axis_errors():
    x = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"^axis needs reduction='mean' or 'sum', got reduction='none'$"):
        fb.binary_cross_entropy_with_logits(x, x, reduction="none", axis=0)
    with pytest.raises(ValueError, match="^axis 2 is out of bounds for an input of 2 dimensions$"):
        fb.binary_cross_entropy_with_logits(x, x, axis=2)
    with pytest.raises(ValueError, match=r"^axis \(0, -2\) repeats an axis$"):
        fb.binary_cross_entropy_with_logits(x, x, axis=(0, -2))
    with pytest.raises(TypeError, match=r"^axis must be None, an int or a tuple of ints, got 'rows'$"):
        fb.binary_cross_entropy_with_logits(x, x, axis="rows")
    with pytest.raises(
        ValueError, match=r"^grad_output of shape \(4,\) does not broadcast to the reduced shape \(3,\)"
    ):
        fb.binary_cross_entropy_with_logits_grad(x, x, axis=0, grad_output=np.ones(4))
