"""The public API: what it returns, in-place and overlapping `out=`, no
copies, the loss classes, sigmoid, version, stubs and docstring examples."""

from __future__ import annotations

import doctest
import importlib
import os
import re
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

import fastbce as fb

from layouts import in_layout
from reference import LOGITS, assert_close, reference

PUBLIC = {
    "binary_cross_entropy_with_logits",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits_grad",
    "binary_cross_entropy_grad",
    "binary_cross_entropy_with_logits_value_and_grad",
    "binary_cross_entropy_value_and_grad",
    "sigmoid",
    "BCEWithLogitsLoss",
    "BCELoss",
    "get_num_threads",
    "set_num_threads",
    "num_threads",
    "__version__",
}


def test_public_names_and_version():
    assert PUBLIC <= set(fb.__all__)
    assert all(hasattr(fb, name) for name in fb.__all__)
    from importlib.metadata import version

    assert fb.__version__ == version("fastbce")


@pytest.mark.parametrize(
    "dtype, result",
    [
        (np.float16, np.float16),
        (np.float32, np.float32),
        (np.float64, np.float64),
        (np.int32, np.float64),
        (np.uint8, np.float64),
        (bool, np.float64),
    ],
)
def test_result_dtypes(dtype, result):
    x = np.array([[0, 1], [1, 0]], dtype)
    y = np.array([[0, 1], [0, 1]], np.float32)
    mean = fb.binary_cross_entropy_with_logits(x, y)
    assert type(mean) is result
    assert fb.binary_cross_entropy_with_logits(x, y, reduction="none").dtype == result
    assert (
        fb.binary_cross_entropy_grad(
            x.astype(np.float64).clip(0.25, 0.75).astype(dtype) if dtype in (np.float16, np.float32) else x, y
        ).dtype
        == result
    )
    assert fb.sigmoid(x).dtype == result
    want, _, _ = reference(LOGITS, x, y)
    assert_close(mean, want, 1e-3)


class _Wrapped:
    """An array-like that is not an ndarray: the native call declines it,
    and the package converts it and calls again."""

    def __init__(self, arr):
        self.arr = arr

    def __array__(self, dtype=None, copy=None):
        return self.arr


def _through_python(fn, x, y, **kwargs):
    """`fn` with every operand declined by the native call first, so that
    the call takes the converting route."""
    kwargs = {
        k: _Wrapped(np.asarray(v)) if k in ("weight", "pos_weight") and v is not None else v for k, v in kwargs.items()
    }
    return fn(_Wrapped(x), _Wrapped(y), **kwargs)


def _same(a, b):
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b)
        for u, v in zip(a, b, strict=True):
            _same(u, v)
        return
    assert type(a) is type(b)
    assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if isinstance(a, np.ndarray):
        assert a.strides == b.strides


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int8, np.uint16, bool])
@pytest.mark.parametrize("probabilities", [False, True])
def test_the_one_step_call_equals_the_checked_path(dtype, probabilities):
    # A call on NumPy arrays is one native call (checks, outputs, kernel and
    # result in Rust); with it declining, the Python path must give the
    # same bits, types, dtypes and layouts.
    rng = np.random.default_rng(7)
    x = rng.uniform(0.0 if probabilities else -4.0, 1.0 if probabilities else 4.0, (30, 7))
    x = (x > 0.5 if dtype is bool else x).astype(dtype)
    if np.issubdtype(dtype, np.integer) and probabilities:
        x = (x > 0).astype(dtype)
    x = np.asfortranarray(x)
    y = rng.random((30, 7)) < 0.4
    if probabilities:
        fns = [fb.binary_cross_entropy, fb.binary_cross_entropy_grad, fb.binary_cross_entropy_value_and_grad]
    else:
        fns = [
            fb.binary_cross_entropy_with_logits,
            fb.binary_cross_entropy_with_logits_grad,
            fb.binary_cross_entropy_with_logits_value_and_grad,
        ]
    weights = [{}, {"weight": rng.uniform(0.5, 2.0, 7).astype(np.float32)}]
    if not probabilities:
        weights.append({"pos_weight": rng.uniform(0.5, 3.0, (30, 1)), "weight": np.float64(2.0)})
    result = fb.binary_cross_entropy_with_logits(x[:1], y[:1]).dtype
    for kwargs in weights:
        for reduction in ("mean", "sum", "none"):
            for f in fns:
                extra = {} if f is fns[0] else {"grad_output": 3}
                _same(
                    f(x, y, reduction=reduction, **kwargs, **extra),
                    _through_python(f, x, y, reduction=reduction, **kwargs, **extra),
                )
                if f is fns[0] and reduction != "none":
                    continue
                out, want = np.empty(x.shape, result), np.empty(x.shape, result)
                got = f(x, y, reduction=reduction, out=out, **kwargs)
                expected = _through_python(f, x, y, reduction=reduction, out=want, **kwargs)
                _same(out, want)
                _same(
                    got if isinstance(got, tuple) else (got,), expected if isinstance(expected, tuple) else (expected,)
                )


def test_the_native_call_declines_what_python_must_do():
    from fastbce import _core

    x = np.zeros(3, np.float32)

    def call(input, target, weight=None, pos_weight=None, reduction="mean", value=True, grad=False, **kw):
        request = _core.Request(loss="logits", value=value, grad=grad)
        return _core.evaluate(request, input, target, weight=weight, reduction=reduction, pos_weight=pos_weight, **kw)

    declined = [
        (([0.0, 1.0, 2.0], x), {}, "input"),
        ((x, x.astype(">f4")), {}, "target"),
        ((x, x), {"pos_weight": 2.0}, "pos_weight"),
        ((x, x), {"weight": [1.0, 2.0, 3.0]}, "weight"),
        ((x, x), {"value": False, "grad": True, "grad_output": np.float32(1.0)}, "grad_output"),
    ]
    for args, kwargs, argument in declined:
        result = call(*args, **kwargs)
        assert type(result) is _core.Declined, (args, kwargs)
        assert (result.reason, result.argument) == (_core.Decline.Convert, argument)
    # A NumPy float64 is a Python float, and a 0-d array a scalar: no decline.
    for go in (np.float64(2.0), np.array(2.0), 2):
        _, grad, _ = call(x, x, value=False, grad=True, grad_output=go)
        np.testing.assert_array_equal(grad, np.full(3, np.float32(0.5) * 2 / 3, np.float32))
    buffer = np.zeros(4, np.float32)
    overlapping = call(buffer[1:], x, reduction="none", out=buffer[:3])  # computed apart by Python
    assert (overlapping.reason, overlapping.argument) == (_core.Decline.Overlap, "out")
    errors = [
        ((x, x.reshape(3, 1)), {}, ValueError, "target must have the same shape"),
        ((x, x), {"weight": np.ones(2)}, ValueError, "weight of shape (2,) does not broadcast"),
        ((x, x), {"reduction": "all"}, ValueError, "reduction must be"),
        ((x, x), {"reduction": b"mean"}, ValueError, "reduction must be"),
        ((x, x.astype(np.complex64)), {}, TypeError, "target has dtype complex64"),
        ((x, x), {"reduction": "none", "out": np.zeros(3)}, ValueError, "out has dtype float64"),
        ((x, x), {"reduction": "none", "out": np.zeros(4, np.float32)}, ValueError, "out has shape (4,)"),
        ((x, x), {"reduction": "none", "out": [0.0, 0.0, 0.0]}, TypeError, "out must be a numpy.ndarray"),
        ((x, x), {"out": np.zeros(3, np.float32)}, ValueError, "out receives the elementwise loss"),
    ]
    for args, kwargs, exc, message in errors:
        with pytest.raises(exc, match="^" + re.escape(message)):
            call(*args, **kwargs)
    read_only = np.zeros(3, np.float32)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="^out is read-only"):
        call(x, x, reduction="none", out=read_only)
    loss, grad, hess = call(x, x, reduction="sum")
    assert grad is None and hess is None and loss == np.float32(3 * np.float64(np.float32(np.log(2))))
    with pytest.raises(ValueError, match="input should be between 0 and 1"):
        _core.evaluate(_core.Request(loss="probabilities", value=True, grad=False), x - 1, x, None, "mean")


def test_lists_and_scalars_are_accepted():
    assert_close(
        fb.binary_cross_entropy_with_logits([1.0, -2.0], [1, 0]), reference(LOGITS, [1.0, -2.0], [1, 0])[0], 1e-15
    )
    loss = fb.binary_cross_entropy_with_logits(1.5, 1.0, reduction="none")
    assert isinstance(loss, np.ndarray) and loss.shape == ()
    assert_close(loss, reference(LOGITS, 1.5, 1.0, reduction="none")[0], 1e-15)


def test_empty_inputs():
    x = np.zeros((0, 3), np.float32)
    assert np.isnan(fb.binary_cross_entropy_with_logits(x, x))
    assert fb.binary_cross_entropy_with_logits(x, x, reduction="sum") == 0
    assert fb.binary_cross_entropy_with_logits_grad(x, x).shape == (0, 3)
    loss, grad = fb.binary_cross_entropy_value_and_grad(x, x, reduction="none")
    assert loss.shape == grad.shape == (0, 3)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_out_may_be_the_input_itself(dtype):
    rng = np.random.default_rng(1)
    for n in (37, 200_003):
        x = rng.normal(0, 3, n).astype(dtype)
        y = (rng.uniform(size=n) > 0.5).astype(dtype)
        probs = fb.sigmoid(x)
        want_loss = fb.binary_cross_entropy_with_logits(x, y, reduction="none")
        want_grad = fb.binary_cross_entropy_with_logits_grad(x, y)
        want_sig = fb.sigmoid(x)
        want_bce = fb.binary_cross_entropy(probs, y, reduction="none")

        a = x.copy()
        assert fb.binary_cross_entropy_with_logits(a, y, reduction="none", out=a) is a
        np.testing.assert_array_equal(a, want_loss)
        a = x.copy()
        assert fb.binary_cross_entropy_with_logits_grad(a, y, out=a) is a
        np.testing.assert_array_equal(a, want_grad)
        a = x.copy()
        assert fb.sigmoid(a, out=a) is a
        np.testing.assert_array_equal(a, want_sig)
        p = probs.copy()
        assert fb.binary_cross_entropy(p, y, reduction="none", out=p) is p
        np.testing.assert_array_equal(p, want_bce)
        t = y.copy()
        fb.binary_cross_entropy_with_logits_grad(x, t, out=t)
        np.testing.assert_array_equal(t, want_grad)


def test_out_overlapping_an_input_partially_is_computed_as_if_apart():
    base = np.linspace(-5, 5, 101)
    x = base[:-1]
    out = base[1:]
    y = np.full(100, 0.25)
    want = fb.binary_cross_entropy_with_logits_grad(x.copy(), y, reduction="none")
    assert fb.binary_cross_entropy_with_logits_grad(x, y, reduction="none", out=out) is out
    np.testing.assert_array_equal(out, want)


def test_out_in_any_layout():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(30, 40))
    y = rng.uniform(size=(30, 40))
    want = fb.binary_cross_entropy_with_logits(x, y, reduction="none")
    for layout in ("fortran", "transposed", "strided", "reversed"):
        out = in_layout(np.zeros_like(x), layout)
        fb.binary_cross_entropy_with_logits(x, y, reduction="none", out=out)
        np.testing.assert_array_equal(out, want)


def test_new_results_follow_the_input_layout():
    x = np.asfortranarray(np.ones((300, 200), np.float32))
    assert fb.binary_cross_entropy_with_logits_grad(x, x).flags.f_contiguous
    assert fb.sigmoid(x).flags.f_contiguous


def _peak_bytes(fn):
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        fn()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def test_no_copy_of_any_operand_in_any_layout():
    rng = np.random.default_rng(3)
    rows, cols = 2000, 1000  # 2e6 elements: a copy of x alone is 8 MB
    x = np.asfortranarray(rng.normal(size=(rows, cols)))[::-1]
    y = (rng.uniform(size=(cols, rows)) > 0.5).astype(np.uint8).T
    w = rng.uniform(size=cols).astype(np.float32)
    pw = np.float64(2.0)
    # The measurement sees copies: a contiguous copy of x shows up in full.
    assert _peak_bytes(lambda: np.ascontiguousarray(x)) >= x.nbytes
    for reduction in ("mean", "sum"):
        peak = _peak_bytes(lambda r=reduction: fb.binary_cross_entropy_with_logits(x, y, w, r, pw))
        assert peak < 256 * 1024, f"{reduction}: {peak} bytes allocated"
    out = np.empty_like(x)
    peak = _peak_bytes(lambda: fb.binary_cross_entropy_with_logits_grad(x, y, w, "none", pw, out=out))
    assert peak < 256 * 1024


def test_memory_mapped_inputs_are_read_in_place(tmp_path):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(5000, 40)).astype(np.float32)
    y = (rng.uniform(size=(5000, 40)) > 0.7).astype(np.uint8)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    mx = np.load(tmp_path / "x.npy", mmap_mode="r")
    my = np.load(tmp_path / "y.npy", mmap_mode="r")
    assert isinstance(mx, np.memmap)
    peak = _peak_bytes(lambda: fb.binary_cross_entropy_with_logits(mx, my))
    assert peak < 64 * 1024
    assert fb.binary_cross_entropy_with_logits(mx, my) == fb.binary_cross_entropy_with_logits(x, y)
    grad = fb.binary_cross_entropy_with_logits_grad(mx, my)
    assert type(grad) is np.ndarray


def test_non_native_byte_order_is_converted():
    x = np.array([0.5, -1.0, 3.0], ">f8")
    y = np.array([1, 0, 1], ">i4")
    want = fb.binary_cross_entropy_with_logits(x.astype("<f8"), y.astype("<i4"), reduction="none")
    got = fb.binary_cross_entropy_with_logits(x, y, reduction="none")
    assert got.dtype == np.float64 and got.dtype.isnative
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("code", ["f2", "f4", "f8"])
def test_the_result_dtype_is_the_inputs_whatever_its_byte_order(code):
    rng = np.random.default_rng(4)
    native = rng.normal(0, 2, (300, 7)).astype("=" + code)
    labels = (rng.uniform(size=native.shape) < 0.4).astype(np.float32)
    swapped = native.astype((">" if sys.byteorder == "little" else "<") + code)
    want = np.dtype("=" + code)
    out = np.empty(native.shape, want)
    fns = {
        "loss": lambda x, **kw: fb.binary_cross_entropy_with_logits(x, labels, **kw),
        "grad": lambda x, **kw: fb.binary_cross_entropy_with_logits_grad(x, labels, **kw),
        "probabilities": lambda x, **kw: fb.binary_cross_entropy(fb.sigmoid(x), labels, **kw),
    }
    for name, fn in fns.items():
        for kwargs in ({}, {"reduction": "sum"}, {"reduction": "none"}, {"reduction": "mean", "axis": 1}):
            got, expected = fn(swapped, **kwargs), fn(native, **kwargs)
            assert got.dtype == want, (name, kwargs)
            np.testing.assert_array_equal(got, expected)
        # A native out= of the result dtype is accepted.
        kwargs = {"out": out} if name == "grad" else {"reduction": "none", "out": out}
        assert fn(swapped, **kwargs) is out
        np.testing.assert_array_equal(out, fn(native, reduction="none") if name != "grad" else fn(native))
    loss, grad = fb.binary_cross_entropy_with_logits_value_and_grad(swapped, labels)
    assert (loss.dtype, grad.dtype) == (want, want)
    assert fb.sigmoid(swapped).dtype == want


def test_sigmoid():
    x = np.array([-800.0, -40.0, -1.0, 0.0, 1.0, 40.0, 800.0, np.inf, -np.inf])
    with np.errstate(over="ignore"):
        naive = 1.0 / (1.0 + np.exp(-x))
    got = fb.sigmoid(x)
    np.testing.assert_allclose(got[1:-2], naive[1:-2], rtol=1e-15)
    assert got[0] == 0.0 and got[-2] == 1.0 and got[-1] == 0.0
    assert got[1] > 0  # keeps its relative precision
    assert fb.sigmoid(np.float32(2.0)).dtype == np.float32


def test_loss_classes():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(8, 3))
    y = (rng.uniform(size=(8, 3)) > 0.5).astype(np.float64)
    w, pw = np.array([1.0, 0.5, 2.0]), np.array([3.0, 1.0, 0.5])
    loss = fb.BCEWithLogitsLoss(weight=w, reduction="sum", pos_weight=pw)
    assert repr(loss) == "BCEWithLogitsLoss(reduction='sum', weight=[1. , 0.5, 2. ], pos_weight=[3. , 1. , 0.5])"
    assert loss(x, y) == fb.binary_cross_entropy_with_logits(x, y, w, "sum", pw)
    np.testing.assert_array_equal(
        loss.grad(x, y, grad_output=2.0), fb.binary_cross_entropy_with_logits_grad(x, y, w, "sum", pw, grad_output=2.0)
    )
    value, grad = loss.value_and_grad(x, y)
    assert value == loss(x, y)
    np.testing.assert_array_equal(grad, loss.grad(x, y))

    p = fb.sigmoid(x)
    bce = fb.BCELoss(weight=np.ones((8, 3)), reduction="none")
    assert repr(bce) == "BCELoss(reduction='none', weight=<float64 array of shape (8, 3)>)"
    out = np.empty_like(p)
    assert bce(p, y, out=out) is out
    np.testing.assert_array_equal(out, fb.binary_cross_entropy(p, y, reduction="none"))
    value, grad = bce.value_and_grad(p, y)
    np.testing.assert_array_equal(value, out)
    np.testing.assert_array_equal(grad, bce.grad(p, y))
    assert repr(fb.BCEWithLogitsLoss()) == "BCEWithLogitsLoss(reduction='mean')"


def test_value_and_grad_equals_separate_calls():
    rng = np.random.default_rng(8)
    x = rng.normal(size=50_000).astype(np.float32)
    y = rng.uniform(size=50_000).astype(np.float32)
    for fn, vg, g in (
        (
            fb.binary_cross_entropy_with_logits,
            fb.binary_cross_entropy_with_logits_value_and_grad,
            fb.binary_cross_entropy_with_logits_grad,
        ),
        (fb.binary_cross_entropy, fb.binary_cross_entropy_value_and_grad, fb.binary_cross_entropy_grad),
    ):
        inp = x if fn is fb.binary_cross_entropy_with_logits else fb.sigmoid(x)
        for reduction in ("mean", "sum", "none"):
            value, grad = vg(inp, y, reduction=reduction, grad_output=0.5)
            np.testing.assert_array_equal(value, fn(inp, y, reduction=reduction))
            np.testing.assert_array_equal(grad, g(inp, y, reduction=reduction, grad_output=0.5))


@pytest.mark.parametrize(
    "module", ["fastbce._functional", "fastbce._modules", "fastbce._threads", "fastbce._accumulate", "fastbce._config"]
)
def test_docstring_examples(module):
    failed, attempted = doctest.testmod(importlib.import_module(module), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert attempted > 0 and failed == 0


def test_every_public_function_has_an_example():
    for name in PUBLIC - {"__version__"}:
        assert ">>> " in (getattr(fb, name).__doc__ or ""), name


def test_stub_matches_the_native_module():
    done = subprocess.run([sys.executable, "-m", "mypy.stubtest", "fastbce._core"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_show_config(capsys):
    assert fb.show_config() is None
    text = capsys.readouterr().out
    info = fb.show_config("dicts")
    assert info["version"] == fb.__version__
    assert info["simd"]["level"] in info["simd"]["available"]
    assert f"SIMD level:   {info['simd']['level']}" in text
    assert f"threads:      {fb.get_num_threads()}" in text
    with pytest.raises(ValueError, match="^mode must be 'stdout' or 'dicts', got 'json'$"):
        fb.show_config("json")


def _simd_in_fresh_process(value):
    env = dict(os.environ, FASTBCE_SIMD=value)
    code = "import warnings; warnings.simplefilter('always')\nimport fastbce; print(fastbce._core.get_simd_level())"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip(), done.stderr


def test_simd_environment_variable_forces_a_lower_level():
    from fastbce import _core

    for level in _core.available_simd_levels():
        assert _simd_in_fresh_process(level) == (level, "")
    level, err = _simd_in_fresh_process("avx9000")
    assert level == _core.available_simd_levels()[-1]
    assert "RuntimeWarning: ignoring FASTBCE_SIMD='avx9000': unknown SIMD level" in err
    with pytest.raises(ValueError, match='^unknown SIMD level "mmx"; this CPU supports'):
        _core.set_simd_level("mmx")
