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

from reference import FUNCS, LOGITS, assert_close, elements

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
