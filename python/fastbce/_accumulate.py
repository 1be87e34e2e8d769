"""Streaming loss over batches: totals, means and per-class sums."""

from __future__ import annotations

import math
import threading
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _core
from ._functional import as_numeric, sum64
from ._io import Source

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
    metrics : str or list of str, optional
        Also tally these evaluation metrics (``"logloss"``, ``"brier"``,
        ``"ece"``, ``"auc"``; as :func:`fastbce.score` computes them, with
        the weight as scikit-learn's `sample_weight`) for :meth:`result`.
    bins, strategy : int, {"uniform", "quantile"}
        The reliability bins of ``"ece"``.

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
        metrics: Optional[Union[str, Iterable[str]]] = None,
        bins: int = 10,
        strategy: str = "uniform",
    ) -> None:
        if probabilities and pos_weight is not None:
            raise ValueError("pos_weight applies to logits only, not to probabilities")
        self._settings: Optional[Dict[str, Any]] = None
        if metrics is not None:
            from ._metrics import Tally, parse_metrics

            self._settings = dict(metrics=parse_metrics(metrics), bins=bins, strategy=strategy)
            Tally(1, **self._settings)  # checks them now
        self._tally: Any = None
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
            if self._settings is not None:
                self._tally_batch(x, target, w, pw, classes)
            self._sums = sums
            self._count += x.size
            self._classes = classes

    def _tally_batch(self, x: NDArray[Any], target: ArrayLike, w: Any, pw: Any, classes: Optional[int]) -> None:
        """Adds the batch to the metrics' tally, as (rows, classes)."""
        from ._metrics import Tally

        assert self._settings is not None
        if self._tally is None or not self._count:
            self._tally = Tally(classes or 1, probabilities=self.probabilities,
                                pos_weight=None if pw is None else np.asarray(pw), **self._settings)  # fmt: skip
        rows = (-1, classes) if classes else (-1,)
        y = as_numeric("target", target)
        weight = None if w is None else np.broadcast_to(as_numeric("weight", w), x.shape).reshape(rows)
        self._tally.update(x.reshape(rows), np.broadcast_to(y, x.shape).reshape(rows), weight)

    def result(self, class_names: Optional[Sequence[str]] = None) -> Any:
        """The metrics asked for at construction, as a `fastbce.ScoreResult`
        (the same numbers `fastbce.score` gives for the same rows)."""
        if self._settings is None:
            raise ValueError("no metrics were asked for: LossAccumulator(metrics='logloss,brier,ece,auc')")
        from dataclasses import replace

        from ._scoring import ScoreOptions, Weights, result_of

        with self._lock:
            if self._tally is None:
                raise ValueError("no batch was added yet")
            classes = self._tally.classes
            names = list(class_names) if class_names is not None else [str(c) for c in range(classes)]
            source = _Described(names)
            options = replace(ScoreOptions(probabilities=self.probabilities), class_names=tuple(names))
            return result_of(options, source, self._tally, Weights(pos_weight=self.pos_weight), 0)

    def reset(self) -> None:
        """Forget every batch."""
        with self._lock:
            self._sums, self._count, self._classes, self._tally = _core.RunningSums(), 0, None, None

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


class _Described(Source):
    """What a `ScoreResult` needs to know of a source the caller fed by hand."""

    def __init__(self, names: List[str]) -> None:
        self.rows = None
        self.class_names = self.label_names = names
        self.description = "LossAccumulator"
