"""The built-in demonstration (`python -m fastbce`), the README's first command."""

from __future__ import annotations

import io
import re
import subprocess
import sys

import numpy as np

from fastbce._demo import numpy_stable_mean, run


def test_demo_prints_the_worked_example_and_a_timed_batch():
    out = io.StringIO()
    run(out, n=200_000, repeats=2)
    text = out.getvalue()
    assert "binary_cross_entropy_with_logits(x, y)  = 0.7193" in text
    assert "binary_cross_entropy(sigmoid(x), y)     = 0.7193" in text
    ours, theirs = (float(v) for v in re.findall(r"^  (?:fastbce|NumPy formula) +([0-9.]+)", text, re.M))
    assert abs(ours - theirs) <= 1e-5 * theirs
    assert re.search(r"fastbce is [0-9.]+x faster than the NumPy formula", text)


def test_numpy_formula_is_the_loss():
    x = np.array([-30.0, 0.0, 2.0])
    y = np.array([0.0, 1.0, 0.0])
    want = np.mean([np.exp(-30.0), np.log(2.0), 2.0 + np.log1p(np.exp(-2.0))])
    assert abs(numpy_stable_mean(x, y) - want) <= 1e-15


def test_python_dash_m_fastbce_runs():
    done = subprocess.run([sys.executable, "-m", "fastbce"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("= 0.7193") == 2
    assert "Batch of 10,000,000 float32 logits" in done.stdout
