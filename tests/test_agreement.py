"""The two routes of a call agree: what the native call runs at once, and
what it declines (Python converts or computes apart, then calls again)
give the same bits, dtypes, shapes and memory (large new outputs come from
the output cache on both routes)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastbce as fb
from fastbce import _core

try:
    from numpy._core.multiarray import get_handler_name
except ImportError:  # NumPy 1.x
    from numpy.core.multiarray import get_handler_name

CACHE_BYTES = _core.OUTPUT_CACHE_MIN_BYTES
FUNCTIONS = {
    "loss": fb.binary_cross_entropy_with_logits,
    "grad": fb.binary_cross_entropy_with_logits_grad,
    "value_and_grad": fb.binary_cross_entropy_with_logits_value_and_grad,
}
DECLINED = ["list", "scalar grad_output", "big-endian", "partial overlap", "empty"]


def _results(result):
    return result if isinstance(result, tuple) else (result,)


def _assert_same(a, b, new_outputs=True):
    for u, v in zip(_results(a), _results(b), strict=True):
        assert type(u) is type(v)
        assert u.dtype == v.dtype and u.shape == v.shape and u.tobytes() == v.tobytes()
        if new_outputs and isinstance(u, np.ndarray) and u.nbytes >= CACHE_BYTES:
            assert get_handler_name(u) == get_handler_name(v) == "fastbce_output_cache"


def _call(name, x, y, reduction, **kwargs):
    fn = FUNCTIONS[name]
    if name == "loss":
        kwargs.pop("grad_output", None)
    return fn(x, y, reduction=reduction, **kwargs)


def _routes(case, name, dtype, n, reduction, seed):
    """(declined call, direct call) of one case, as thunks."""
    rng = np.random.default_rng(seed)
    n = 0 if case == "empty" else n
    x = rng.normal(0, 4, n).astype(dtype)
    y = (rng.random(n) < 0.3).astype(dtype)
    go = 3.0 if reduction != "none" else 1.5
    if case == "list":
        return (lambda: _call(name, x.tolist(), y, reduction, grad_output=go)), (
            lambda: _call(name, x.astype(np.float64), y, reduction, grad_output=go)
        )
    if case == "scalar grad_output":
        return (lambda: _call(name, x, y, reduction, grad_output=np.float32(go))), (
            lambda: _call(name, x, y, reduction, grad_output=float(np.float32(go)))
        )
    if case == "big-endian":
        big = x.astype(x.dtype.newbyteorder(">"))
        return (lambda: _call(name, big, y, reduction, grad_output=go)), (
            lambda: _call(name, x, y, reduction, grad_output=go)
        )
    if case == "partial overlap":
        base = np.empty(n + 1, dtype)
        base[:n] = x

        def overlapping():
            buffer = base.copy()
            out = buffer[1:]  # overlaps the input buffer[:-1] in part
            result = _call(name, buffer[:-1], y, reduction, grad_output=go, out=out)
            return tuple(out if r is out else r for r in _results(result))

        def apart():
            out = np.empty(n, dtype)
            return _results(_call(name, x.copy(), y, reduction, grad_output=go, out=out))

        return overlapping, apart
    assert case == "empty"
    return (lambda: _call(name, x.tolist(), y, reduction, grad_output=go)), (
        lambda: _call(name, x.astype(np.float64), y, reduction, grad_output=go)
    )


@settings(max_examples=60, deadline=None)
@given(
    case=st.sampled_from(DECLINED),
    name=st.sampled_from(sorted(FUNCTIONS)),
    dtype=st.sampled_from([np.float32, np.float64]),
    n=st.sampled_from([1, 7, 300, 70_000]),
    reduction=st.sampled_from(["mean", "sum", "none"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_declined_and_direct_calls_agree(case, name, dtype, n, reduction, seed):
    if case == "partial overlap" and (name == "loss") != (reduction == "none"):
        return  # out receives the loss only with reduction='none', the gradient otherwise
    declined, direct = _routes(case, name, dtype, n, reduction, seed)
    _assert_same(declined(), direct())


@pytest.mark.slow
@pytest.mark.parametrize("case", DECLINED[:-1])
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_outputs_of_8_mib_come_from_the_cache_on_both_routes(case, name):
    n = CACHE_BYTES // 8 + 1000
    reduction = "none" if case == "partial overlap" and name == "loss" else "mean"
    declined, direct = _routes(case, name, np.float64, n, reduction, 5)
    if case != "partial overlap":
        _assert_same(declined(), direct())
        return
    # Both routes write the caller's `out`; computing apart takes its
    # temporary from the cache, which holds it again once it is dropped.
    max_bytes = _core.get_output_cache()[0]
    fb.set_output_cache(0)
    fb.set_output_cache(max_bytes)
    _assert_same(declined(), direct(), new_outputs=False)
    assert _core.get_output_cache()[1] >= 1
