"""Type checkers know what each call returns: an array for reduction='none'
or with `axis`, a NumPy scalar for the plain mean or sum (mypy, strict)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SNIPPET = textwrap.dedent(
    """
    from typing import Any, Union
    from typing_extensions import assert_type
    import numpy as np
    from numpy.typing import NDArray
    import fastbce as fb

    x = np.zeros(3, np.float32)
    assert_type(fb.binary_cross_entropy_with_logits(x, x), np.floating[Any])
    assert_type(fb.binary_cross_entropy_with_logits(x, x, reduction="sum"), np.floating[Any])
    assert_type(fb.binary_cross_entropy_with_logits(x, x, reduction="none"), NDArray[np.floating[Any]])
    assert_type(fb.binary_cross_entropy_with_logits(x, x, None, "none"), NDArray[np.floating[Any]])
    assert_type(fb.binary_cross_entropy_with_logits(x, x, axis=0), NDArray[np.floating[Any]])
    assert_type(fb.binary_cross_entropy(x, x, reduction="none"), NDArray[np.floating[Any]])
    assert_type(fb.binary_cross_entropy(x, x), np.floating[Any])
    loss, grad = fb.binary_cross_entropy_with_logits_value_and_grad(x, x, reduction="none")
    assert_type(loss, NDArray[np.floating[Any]])
    mean, _ = fb.binary_cross_entropy_value_and_grad(x, x)
    assert_type(mean, np.floating[Any])
    reduction: str = "mean"
    either = Union[np.floating[Any], NDArray[np.floating[Any]]]
    assert_type(fb.binary_cross_entropy_with_logits(x, x, reduction=reduction), either)
    """
)


def test_reduction_none_returns_an_array_to_type_checkers(tmp_path):
    path = tmp_path / "use.py"
    path.write_text(SNIPPET)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
