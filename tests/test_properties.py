"""Property tests against the float64 reference: every dtype, shape, layout,
weight and pos_weight broadcast, loss, reduction and `out=`."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastbce as fb

from layouts import LAYOUTS, broadcastable_shape, in_layout
from reference import FUNCS, LOGITS, PROBS, assert_close, reference

# Relative tolerance by input dtype: results are rounded to it.
RTOL = {np.float16: 2e-3, np.float32: 2e-6, np.float64: 1e-13}
TARGET_KINDS = ("same", "float32", "float64", "bool", "uint8", "int64", "soft")


@st.composite
def problems(draw):
    fn = draw(st.sampled_from([LOGITS, PROBS]))
    dtype = draw(st.sampled_from([np.float16, np.float32, np.float64]))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=7))
    if fn == LOGITS:
        elements = st.floats(-30, 30, width=16)
    else:
        elements = st.floats(2.0**-10, 1 - 2.0**-10, width=16)
    x = draw(hnp.arrays(dtype, shape, elements=elements))
    kind = draw(st.sampled_from(TARGET_KINDS))
    hard = draw(hnp.arrays(np.uint8, shape, elements=st.integers(0, 1)))
    if kind == "soft":
        y = draw(hnp.arrays(dtype, shape, elements=st.floats(0, 1, width=16)))
    else:
        y = hard.astype(
            {
                "same": dtype,
                "float32": np.float32,
                "float64": np.float64,
                "bool": bool,
                "uint8": np.uint8,
                "int64": np.int64,
            }[kind]
        )
    x = in_layout(x, draw(st.sampled_from(LAYOUTS)))
    y = in_layout(y, draw(st.sampled_from(LAYOUTS)))

    def weights(low, high):
        if not draw(st.booleans()):
            return None
        keep = [draw(st.booleans()) for _ in shape]
        wshape = broadcastable_shape(shape, keep, draw(st.integers(0, len(shape))))
        wdtype = draw(st.sampled_from([np.float32, np.float64, dtype]))
        w = draw(hnp.arrays(wdtype, wshape, elements=st.floats(low, high, width=16)))
        return in_layout(w, draw(st.sampled_from(LAYOUTS)))

    weight = weights(0.0, 3.0)
    pos_weight = weights(0.25, 4.0) if fn == LOGITS else None
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    factors = st.one_of(st.just(0.0), st.floats(1 / 64, 2), st.floats(-2, -1 / 64))
    if reduction == "none" and draw(st.booleans()):
        grad_output = draw(hnp.arrays(np.float64, shape, elements=factors))
    else:
        grad_output = draw(factors)
    mode = draw(st.sampled_from(["loss", "grad", "value_and_grad"]))
    out = draw(st.sampled_from(["new", "out", "in_place"]))
    return fn, x, y, weight, pos_weight, reduction, grad_output, mode, out


def _kwargs(fn, weight, pos_weight, reduction):
    kw = {"weight": weight, "reduction": reduction}
    if fn == LOGITS:
        kw["pos_weight"] = pos_weight
    return kw


@settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(problems())
def test_matches_float64_reference(simd_level, problem):
    fn, x, y, weight, pos_weight, reduction, grad_output, mode, out_kind = problem
    forward, grad_fn, value_and_grad = FUNCS[fn]
    rtol = RTOL[x.dtype.type]
    # Results that underflow lose relative precision (grad_output may be tiny).
    atol = 32 * float(np.finfo(x.dtype).smallest_subnormal)
    ref_loss, ref_grad, grad_scale = reference(fn, x, y, weight, pos_weight, reduction, grad_output)
    kw = _kwargs(fn, weight, pos_weight, reduction)
    x_before = np.array(x)

    out = None
    writes_array = mode != "loss" or reduction == "none"
    if writes_array and out_kind == "out":
        out = np.full(x.shape, -7.0, x.dtype)
    elif writes_array and out_kind == "in_place" and x.flags.writeable:
        out = x

    if mode == "loss":
        loss, grad = forward(x, y, **kw, out=out), None
    elif mode == "grad":
        loss, grad = None, grad_fn(x, y, **kw, grad_output=grad_output, out=out)
    else:
        loss, grad = value_and_grad(x, y, **kw, grad_output=grad_output, out=out)

    if loss is not None:
        assert loss.dtype == x.dtype
        if reduction == "none":
            assert loss.shape == x.shape
        assert_close(loss, ref_loss, rtol, what="loss", atol=atol)
    if grad is not None:
        assert grad.dtype == x.dtype and grad.shape == x.shape
        assert_close(grad, ref_grad, rtol, scale=grad_scale, what="grad", atol=atol)
    written = grad if grad is not None else loss
    if out is not None:
        assert written is out
    elif writes_array or out is None:
        np.testing.assert_array_equal(x, x_before)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_short_call_reads_zeros_past_its_end_not_an_earlier_calls_data(dtype):
    # Strided operands are gathered into per-thread block buffers, and a
    # short call computes over whole vectors past its last element. Logits
    # of 5 left in those buffers would be probabilities out of range there.
    logits = np.full(1024, 5.0, dtype)[::2]
    assert fb.binary_cross_entropy_with_logits(logits, np.ones(1024, dtype)[::2]) > 0
    p = np.full(200, 0.25, dtype)[::2]
    loss = fb.binary_cross_entropy(p, np.zeros(200, dtype)[::2])
    np.testing.assert_allclose(loss, np.log(4 / 3), rtol=RTOL[dtype])


@st.composite
def large_problems(draw):
    """Problems large enough to reach the parallel path (over 2^15 float32
    or 2^14 float64 elements), many reduction chunks, prefetching (over 16
    MiB of contiguous float32 input) and the output cache (outputs of 8 MiB
    or more): shapes and layouts drawn, values from a seeded generator."""
    fn = draw(st.sampled_from([LOGITS, PROBS]))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rows = draw(st.sampled_from([1, 3, 20, 1000]))
    cols = draw(st.integers(20_000, 3_000_000)) // rows
    shape = (rows, cols) if rows > 1 else (cols,)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.normal(0, 6, shape) if fn == LOGITS else rng.uniform(2.0**-10, 1 - 2.0**-10, shape)
    x = in_layout(x.astype(dtype), draw(st.sampled_from(["c", "fortran", "strided", "reversed"])))
    y = (rng.random(shape) < 0.3).astype(draw(st.sampled_from([dtype, np.uint8, bool])))
    weight = rng.uniform(0, 2, shape[-1:]).astype(dtype) if draw(st.booleans()) else None
    pos_weight = rng.uniform(0.5, 4, shape[-1:]).astype(dtype) if fn == LOGITS and draw(st.booleans()) else None
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    return fn, x, y, weight, pos_weight, reduction


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(large_problems())
def test_large_calls_match_the_reference_on_any_thread_count(problem):
    fn, x, y, weight, pos_weight, reduction = problem
    _, _, value_and_grad = FUNCS[fn]
    kw = _kwargs(fn, weight, pos_weight, reduction)
    ref_loss, ref_grad, grad_scale = reference(fn, x, y, weight, pos_weight, reduction, 1.0)
    results = []
    for threads in (1, 2, 3):
        with fb.num_threads(threads):
            results.append(value_and_grad(x, y, **kw))
    loss, grad = results[0]
    rtol = RTOL[x.dtype.type]
    assert_close(loss, ref_loss, rtol, what="loss")
    assert_close(grad, ref_grad, rtol, scale=grad_scale, what="grad")
    for other_loss, other_grad in results[1:]:
        assert np.asarray(other_loss).tobytes() == np.asarray(loss).tobytes()
        assert other_grad.tobytes() == grad.tobytes()
