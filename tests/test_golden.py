"""Every golden case (tests/data, made by tools/make_golden.py: an accurate
float64 reference checked against mpmath) for the loss, the gradient and
both in one pass."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastbce as fb

from reference import FUNCS, LOGITS, assert_close, elements, ulp_error

DATA = Path(__file__).parent / "data"
CASES = json.loads((DATA / "golden.json").read_text())["cases"]
ARRAYS = np.load(DATA / "golden.npz")

# Relative tolerances of docs/design.md, by input dtype.
RTOL = {"float64": 1e-12, "float32": 1e-6, "float16": 1e-3}


def test_golden_file_is_complete():
    assert len(CASES) >= 100
    assert {c["fn"] for c in CASES} == set(FUNCS)


def _load(case):
    name = case["name"]

    def get(key):
        full = f"{name}/{key}"
        return ARRAYS[full] if full in ARRAYS.files else None

    kwargs = {"weight": get("weight"), "reduction": case["reduction"]}
    if case["fn"] == LOGITS:
        kwargs["pos_weight"] = get("pos_weight")
    return get("input"), get("target"), kwargs, get("grad_output"), get("expected"), get("expected_grad")


def _grad_scale(case, x, y, kwargs, grad_output):
    """The gradient's term scale, against which gradient errors are measured."""
    _, _, scale = elements(case["fn"], x, y, kwargs["weight"], kwargs.get("pos_weight"))
    factor = np.abs(np.asarray(grad_output, np.float64))
    if case["reduction"] == "mean" and x.size:
        factor = factor / x.size
    return scale * factor


def _check_loss(case, got, expected):
    rtol = RTOL[case["input_dtype"]]
    if case["reduction"] == "none":
        assert isinstance(got, np.ndarray) and got.shape == tuple(case["shape"])
    else:
        assert isinstance(got, np.generic) and got.shape == ()
    assert got.dtype == (np.float64 if case["input_dtype"] not in RTOL else np.dtype(case["input_dtype"]))
    assert_close(got, expected, rtol, what=f"{case['name']} loss")


def _check_grad(case, got, expected, scale):
    assert isinstance(got, np.ndarray) and got.shape == tuple(case["shape"])
    assert got.dtype == np.dtype(case["input_dtype"])
    assert_close(got, expected, RTOL[case["input_dtype"]], scale=scale, what=f"{case['name']} grad")


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_forward(case, simd_level):
    x, y, kwargs, _, expected, _ = _load(case)
    forward, _, _ = FUNCS[case["fn"]]
    _check_loss(case, forward(x, y, **kwargs), expected)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_grad(case, simd_level):
    x, y, kwargs, grad_output, _, expected_grad = _load(case)
    _, grad, _ = FUNCS[case["fn"]]
    got = grad(x, y, **kwargs, grad_output=grad_output)
    _check_grad(case, got, expected_grad, _grad_scale(case, x, y, kwargs, grad_output))


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_value_and_grad(case, simd_level):
    x, y, kwargs, grad_output, expected, expected_grad = _load(case)
    _, _, value_and_grad = FUNCS[case["fn"]]
    loss, grad = value_and_grad(x, y, **kwargs, grad_output=grad_output)
    _check_loss(case, loss, expected)
    _check_grad(case, grad, expected_grad, _grad_scale(case, x, y, kwargs, grad_output))


def test_worked_example_is_0_7193_both_ways():
    x, y, _, _, _, _ = _load(CASES[0])
    assert f"{fb.binary_cross_entropy_with_logits(x, y):.4f}" == "0.7193"
    assert f"{fb.binary_cross_entropy(fb.sigmoid(x), y):.4f}" == "0.7193"


def test_make_golden_reproduces_the_stored_cases(tmp_path):
    # tools/make_golden.py, rerun, writes the same cases and the same bits.
    tool = Path(__file__).resolve().parent.parent / "tools" / "make_golden.py"
    subprocess.run([sys.executable, str(tool), "--out", str(tmp_path)], check=True, capture_output=True)
    assert json.loads((tmp_path / "golden.json").read_text()) == json.loads((DATA / "golden.json").read_text())
    made = np.load(tmp_path / "golden.npz")
    assert made.files == ARRAYS.files
    for key in ARRAYS.files:
        a, b = made[key], ARRAYS[key]
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), key


# The second derivatives, label smoothing and the focal loss: exact values
# from mpmath, held to the ULP bounds of docs/design.md.
EXTENSION_CASES = json.loads((DATA / "golden_extensions.json").read_text())["cases"]
EXTENSION_ARRAYS = np.load(DATA / "golden_extensions.npz")
EXTENSION_ULP = {
    "binary_cross_entropy_with_logits": 4.0,
    "binary_cross_entropy_with_logits_grad": 4.0,
    "binary_cross_entropy_with_logits_hess": 4.0,
    "binary_cross_entropy_hess": 4.0,
    "sigmoid_focal_loss": 8.0,
    "sigmoid_focal_loss_grad": 8.0,
    "sigmoid_focal_loss_hess": 16.0,
}


def test_extension_cases_cover_every_new_function():
    assert {c["function"] for c in EXTENSION_CASES} == set(EXTENSION_ULP)
    focal = [c for c in EXTENSION_CASES if c["function"] == "sigmoid_focal_loss"]
    assert {c["arguments"]["gamma"] for c in focal} == {0.0, 0.25, 0.5, 1.0, 2.0, 5.0}


@pytest.mark.parametrize("case", EXTENSION_CASES, ids=[c["name"] for c in EXTENSION_CASES])
def test_extension_case(case):
    def get(key):
        full = f"{case['name']}/{key}"
        return EXTENSION_ARRAYS[full] if full in EXTENSION_ARRAYS.files else None

    x, y, expected, scale = get("input"), get("target"), get("expected"), get("scale")
    arguments = dict(case["arguments"])
    if get("weight") is not None:
        arguments["weight"] = get("weight")
    if get("pos_weight") is not None:
        arguments["pos_weight"] = get("pos_weight")
    got = getattr(fb, case["function"])(x, y, **arguments)
    assert got.dtype == x.dtype and got.shape == x.shape
    dtype = x.dtype
    tiny = np.finfo(dtype).tiny / np.finfo(dtype).eps  # (subnormal terms: see test_accuracy_extensions)
    for i in range(x.size):
        want = float(expected[i])
        if np.isinf(want) or want == 0.0 and np.isinf(x[i]):
            assert float(got[i]) == want, (i, float(x[i]))
            continue
        at = max(abs(want), float(scale[i]) if scale is not None else 0.0)
        if case["function"].endswith("_hess"):
            at = max(at, tiny)
        error = ulp_error(float(got[i]), want, dtype, scale=at)
        assert error <= EXTENSION_ULP[case["function"]], (i, float(x[i]), float(y[i]), float(got[i]), want, error)


def test_make_golden_reproduces_the_extension_cases(tmp_path):
    tool = Path(__file__).resolve().parent.parent / "tools" / "make_golden.py"
    subprocess.run([sys.executable, str(tool), "--out", str(tmp_path)], check=True, capture_output=True)
    made = json.loads((tmp_path / "golden_extensions.json").read_text())
    assert made == json.loads((DATA / "golden_extensions.json").read_text())
    arrays = np.load(tmp_path / "golden_extensions.npz")
    assert arrays.files == EXTENSION_ARRAYS.files
    for key in arrays.files:
        assert arrays[key].tobytes() == EXTENSION_ARRAYS[key].tobytes(), key
