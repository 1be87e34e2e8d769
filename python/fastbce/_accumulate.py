"""Streaming loss over batches: totals, means and per-class sums."""

from __future__ import annotations

import math
import threading
from typing import Optional

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _core
from ._functional import as_numeric, sum64

__all__ = ["LossAccumulator"]

#: Elements per reduction chunk of the kernels: batches whose element counts
#: are multiples of it accumulate to the same bits as one call on all data.
CHUNK_ELEMENTS: int = _core.CHUNK


class LossAccumulator:
    """Accumulates binary cross-entropy over a stream of batches.

    Each :meth:`update` scores one batch in a single pass (the loss summed in
    float64 inside the kernel, overall and per class) and adds it to running
    totals, so data larger than memory can be scored batch by batch.

    The class axis is the last axis of 2-D and higher inputs (an ``(N, C)``
    multi-label batch has ``C`` classes); 1-D inputs are a single class.

    Results equal one call over the concatenated batches to about 1e-12
    relative, and exactly (bitwise) when every batch but the last holds a
    multiple of ``fastbce.CHUNK_ELEMENTS`` (8192) elements: the total is
    combined exactly, and the per-class sums continue the same chunk
    sequence. Instances are thread-safe: updates from several threads are
    serialized (each still runs on all of fastbce's threads), and the total
    does not depend on their order.

    Parameters
    ----------
    probabilities : bool, default False
        The inputs are probabilities (:func:`fastbce.binary_cross_entropy`)
        rather than logits (:func:`fastbce.binary_cross_entropy_with_logits`).
    weight, pos_weight : array_like, optional
        Used for every batch that does not pass its own; broadcast to each
        batch's shape. `pos_weight` applies to logits only.

    Examples
    --------
    >>> import numpy as np, fastbce as fb
    >>> acc = fb.LossAccumulator(pos_weight=np.array([1.0, 4.0]))
    >>> acc.update(np.array([[0.5, -1.0], [2.0, 0.1]]), np.array([[1, 1], [0, 1]]))
    >>> acc.update(np.array([[-0.3, 0.8]]), np.array([[0, 1]]))
    >>> acc.count, acc.per_class_sum.shape
    (6, (2,))
    >>> print(f"{acc.mean:.6f}")
    2.078399
    """

    def __init__(
        self,
        probabilities: bool = False,
        *,
        weight: Optional[ArrayLike] = None,
        pos_weight: Optional[ArrayLike] = None,
    ) -> None:
        if probabilities and pos_weight is not None:
            raise ValueError("pos_weight applies to logits only, not to probabilities")
        self.probabilities = bool(probabilities)
        self.weight = None if weight is None else as_numeric("weight", weight)
        self.pos_weight = None if pos_weight is None else as_numeric("pos_weight", pos_weight)
        self._lock = threading.Lock()
        # The total kept exact (rounded only when read) and the per-class
        # sums, both continued by the kernel.
        self._sums = _core.RunningSums()
        self._count = 0
        self._classes: Optional[int] = None

    def update(
        self,
        input: ArrayLike,
        target: ArrayLike,
        weight: Optional[ArrayLike] = None,
        pos_weight: Optional[ArrayLike] = None,
    ) -> None:
        """Add one batch: `input` and `target` of one shape (see the class).

        `weight` and `pos_weight` default to the accumulator's own.
        """
        x = as_numeric("input", input)
        w = self.weight if weight is None else weight
        pw = self.pos_weight if pos_weight is None else pos_weight
        if self.probabilities and pw is not None:
            raise ValueError("pos_weight applies to logits only, not to probabilities")
        classes = x.shape[-1] if x.ndim >= 2 else None
        with self._lock:
            if self._count and classes != self._classes:
                raise ValueError(
                    f"every batch must have the same classes (last axis): this one has "
                    f"{classes or 'none (1-D)'}, earlier ones {self._classes or 'none (1-D)'}"
                )
            sums = self._sums if self._count else _core.RunningSums(classes)
            axis = None if classes is None else tuple(range(x.ndim - 1))
            sum64(self.probabilities, x, target, w, pw, into=sums, axis=axis)
            self._sums = sums
            self._count += x.size
            self._classes = classes

    def reset(self) -> None:
        """Forget every batch."""
        with self._lock:
            self._sums, self._count, self._classes = _core.RunningSums(), 0, None

    @property
    def count(self) -> int:
        """Elements scored so far."""
        return self._count

    @property
    def total(self) -> float:
        """The loss summed over every element so far (exactly rounded)."""
        with self._lock:
            return float(self._sums.total)

    @property
    def mean(self) -> float:
        """The mean loss per element (NaN before any element)."""
        with self._lock:
            return float(self._sums.total) / self._count if self._count else math.nan

    @property
    def per_class_sum(self) -> NDArray[np.float64]:
        """The loss summed per class (the last axis); for 1-D batches, one
        class: the total. Empty before any batch."""
        with self._lock:
            per_class: Optional[NDArray[np.float64]] = self._sums.sums
            if per_class is not None:
                return per_class
            return np.array([self._sums.total]) if self._count else np.zeros(0)

    @property
    def per_class_mean(self) -> NDArray[np.float64]:
        """The mean loss per class: `per_class_sum` over the rows scored."""
        with self._lock:
            count = self._count
        sums = self.per_class_sum
        return sums / (count // sums.size) if count else np.full(sums.shape, math.nan)

    def __repr__(self) -> str:
        kind = "probabilities" if self.probabilities else "logits"
        return f"LossAccumulator({kind}, count={self.count}, mean={self.mean:.6g})"
