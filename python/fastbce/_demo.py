"""The built-in demonstration: the worked example and a timed 10-million-element batch."""

from __future__ import annotations

import time
from typing import Callable, List, TextIO

import numpy as np

from ._functional import binary_cross_entropy, binary_cross_entropy_with_logits, sigmoid
from ._threads import get_num_threads

WORKED_X = np.array(
    [[-0.4089, -1.2471, 0.5907], [-0.4897, -0.8267, -0.7349], [0.5241, -0.1246, -0.4751]], dtype=np.float32
)
WORKED_Y = np.array([[0, 1, 1], [0, 0, 1], [1, 0, 1]], dtype=np.float32)


def numpy_stable_mean(x: np.ndarray, y: np.ndarray) -> float:
    """The stable formula written in NumPy: max(x, 0) - x*y + log1p(exp(-|x|))."""
    return float(np.mean(np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))))


def _median_seconds(fn: Callable[[], object], repeats: int) -> float:
    times: List[float] = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def run(out: TextIO, n: int = 10_000_000, repeats: int = 5) -> None:
    """Print the worked example and a timed batch of `n` float32 logits."""
    from . import __version__

    out.write(f"fastbce {__version__} on {get_num_threads()} thread(s)\n\n")
    out.write("Worked example (3x3 logits, multi-label targets):\n")
    with_logits = binary_cross_entropy_with_logits(WORKED_X, WORKED_Y)
    on_probs = binary_cross_entropy(sigmoid(WORKED_X), WORKED_Y)
    out.write(f"  binary_cross_entropy_with_logits(x, y)  = {with_logits:.4f}\n")
    out.write(f"  binary_cross_entropy(sigmoid(x), y)     = {on_probs:.4f}\n\n")

    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 3.0, n).astype(np.float32)
    y = (rng.random(n, dtype=np.float32) < 0.3).astype(np.float32)
    ours = float(binary_cross_entropy_with_logits(x, y))
    theirs = numpy_stable_mean(x, y)
    t_ours = _median_seconds(lambda: binary_cross_entropy_with_logits(x, y), repeats)
    t_numpy = _median_seconds(lambda: numpy_stable_mean(x, y), max(1, repeats // 2))
    out.write(f"Batch of {n:,} float32 logits (seeded), mean loss, median of {repeats} runs:\n")
    out.write(f"  fastbce       {ours:.7f}  {t_ours * 1e3:8.2f} ms  ({n / t_ours / 1e9:.2f} Gelem/s)\n")
    out.write(f"  NumPy formula {theirs:.7f}  {t_numpy * 1e3:8.2f} ms  ({n / t_numpy / 1e9:.2f} Gelem/s)\n")
    out.write(
        f"  fastbce is {t_numpy / t_ours:.1f}x faster than the NumPy formula; "
        f"the two means differ by {abs(ours - theirs) / theirs:.1e} relative\n"
    )
